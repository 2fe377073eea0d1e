"""The broker's audit trail: each step of a retail order, in the compliance audit trail.

Records are the compliance work's :class:`~tickwire.compliance.audit.record.AuditRecord`
(the seed's schema, section 5): ``event_id`` a UUID v7 computed from the record, so an edit
shows, ``client_id_hash`` sha256(user + that day's salt) from the compliance PII vault
(``AUDIT_DIR/vault.sqlite``: ``tickwire audit query`` finds a user's records, ``audit
forget`` erases them), the seed's ``routing_decision`` on ``ORDER_ROUTED``, and what only
some steps have — the buying-power check, the risk check, the execution — under
``details``. They go into a
:class:`~tickwire.compliance.audit.trail.TrailWriter` (an RFC 9162 Merkle tree with
Ed25519-signed tree heads, ``tickwire audit verify`` checks it), and each order keeps its
own, which the API shows at ``GET /v2/orders/{id}/audit``. Once the venues have cleared and
settled the day, :func:`append_settlements` adds each execution's settlement.
"""

import datetime
import os
import socket
import time

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from tickwire.compliance.audit.day import SIGNING_KEY_FILE, regulator_public
from tickwire.compliance.audit.keys import load_or_create_signing_key
from tickwire.compliance.audit.record import AuditRecord
from tickwire.compliance.audit.settlement import SETTLEMENT_EVENTS, SettlementCycle
from tickwire.compliance.audit.tiers import AuditStore
from tickwire.compliance.audit.trail import TrailWriter, read_records, trail_date
from tickwire.compliance.audit.vault import VAULT_FILE, PiiVault
from tickwire.core.money import format_dollars
from tickwire.util.clock import iso_time

__all__ = ["AuditTrail", "BROKER_FIRM", "append_settlements"]

VERSION = "0.1.0"
BROKER_FIRM = "BRK"


def _keys_beside(audit_dir):
    """The default keys directory: ``keys`` beside the audit directory, never inside it."""
    return os.path.join(os.path.dirname(os.path.abspath(audit_dir)), "keys")


class AuditTrail:
    """Parameters
    ----------
    directory : str, optional
        The audit directory (``trail.jsonl``, ``public.pem``, the vault ``vault.sqlite``);
        without one the records are only kept with their orders (and the client hashes come
        from a vault in memory).
    keys_dir : str, optional
        The trail's signing key (``audit-signing.pem``) and the regulator's public key the
        vault escrows to (a demonstration pair is made if missing); default: ``keys`` beside
        the audit directory, never inside it.
    server_id : str
    trade_date : datetime.date, optional
        The day the records' client hashes are salted for (default: today, UTC; the market
        sets its session's).
    """

    def __init__(self, directory=None, server_id=None, keys_dir=None, trade_date=None):
        self.server_id = server_id or f"broker-{socket.gethostname()}"
        self.trade_date = trade_date or datetime.datetime.now(datetime.timezone.utc).date()
        self.writer = None
        self._hashes = {}
        if directory:
            keys_dir = keys_dir or _keys_beside(directory)
            os.makedirs(directory, exist_ok=True)
            key = load_or_create_signing_key(os.path.join(keys_dir, SIGNING_KEY_FILE))
            self.vault = PiiVault(os.path.join(directory, VAULT_FILE),
                                  regulator_public(keys_dir))
            self.writer = TrailWriter(directory, key)
        else:
            self.vault = PiiVault(":memory:", X25519PrivateKey.generate().public_key())
        self.records = 0

    def client_hash(self, user):
        """The user's ``client_id_hash`` on the trade date (None once erased)."""
        cached = (user, self.trade_date)
        if cached not in self._hashes:
            if self.vault.erased(user):
                self._hashes[cached] = None
            else:
                self.vault.add(user, {"user": user})
                self._hashes[cached] = self.vault.hash_for(user, self.trade_date)
        return self._hashes[cached]

    def record(self, event_type, order, received_ns=None, trace_id=None,
               routing_decision=None, **details):
        """Append one record about ``order`` (``routing_decision``: the seed's, on
        ``ORDER_ROUTED``); returns it (as the trail holds it)."""
        sealed = self._append(event_type, order.id, order.user, order, order.limit_price,
                              received_ns, trace_id or order.id, routing_decision, details)
        order.audit.append(sealed)
        return sealed

    def refusal(self, user, request, error, received_ns=None, trace_id=None):
        """Append the ``ORDER_REJECTED`` record of a new order refused before the broker took
        it (``request`` an OrderRequest, ``error`` the RetailError): no order id; the client's
        order id, the reason and the message in ``details``; returns it."""
        return self._append("ORDER_REJECTED", None, user, request, request.limit_price,
                            received_ns, trace_id, None,
                            {"client_order_id": request.client_order_id,
                             "reason": str(error.code), "message": error.message})

    def _append(self, event_type, order_id, user, order, limit_price, received_ns, trace_id,
                routing_decision, details):
        now = time.time_ns()
        record = AuditRecord(
            event_type=event_type, timestamp_received=iso_time(received_ns or now),
            timestamp_processed=iso_time(now), order_id=order_id,
            client_id_hash=self.client_hash(user), firm=BROKER_FIRM, symbol=order.symbol,
            side=str(order.side).upper(), quantity=order.qty,
            price=None if limit_price is None else format_dollars(limit_price),
            order_type=str(order.type).upper(), time_in_force=str(order.time_in_force).upper(),
            details=details, routing_decision=routing_decision,
            system_metadata={"server_id": self.server_id, "version": VERSION,
                             "request_trace_id": trace_id})
        sealed = record.sealed_json()
        if self.writer is not None:
            self.writer.append(sealed)
        self.records += 1
        return sealed

    def close(self):
        """Close the day's trail (a ``TRAIL_CLOSED`` record and a last signed tree head)."""
        if self.writer is not None:
            self.writer.close(trade_date=self.trade_date)
            self.writer = None
        self.vault.close()


def _execution(obj):
    """An ``ORDER_EXECUTED`` record object of the broker as the execution itself: its
    quantity and price are the venue's fill's (``details.execution``)."""
    fill = obj["details"]["execution"]
    return AuditRecord("ORDER_EXECUTED", obj["timestamp_received"], obj["timestamp_processed"],
                       order_id=obj["order_id"], client_id_hash=obj["client_id_hash"],
                       firm=obj["firm"], symbol=obj["symbol"], side=obj["side"],
                       quantity=fill["qty"], price=fill["price"], order_type=obj["order_type"],
                       time_in_force=obj["time_in_force"],
                       system_metadata=obj["system_metadata"])


def append_settlements(audit_dir, clearing_dirs, keys_dir=None):
    """Append the settlement of each of the trail's executions not settled yet
    (``ORDER_SETTLED`` or ``SETTLEMENT_FAILED``: the broker's instruction for the symbol at
    the fill's venue, :class:`~tickwire.compliance.audit.settlement.SettlementCycle`), sign a
    tree head, and load the day into the hot tier (``tickwire audit query``).

    Parameters
    ----------
    audit_dir : str
        The broker's audit directory (its trail closed).
    clearing_dirs : dict of str to str
        Venue → that venue's clearing directory, its cycle run.
    keys_dir : str, optional
        Where the signing key is (default: ``keys`` beside the audit directory).

    Returns
    -------
    dict
        ``ORDER_SETTLED`` and ``SETTLEMENT_FAILED`` → records appended.
    """
    keys_dir = keys_dir or _keys_beside(audit_dir)
    records = read_records(audit_dir)
    done = {r["details"].get("execution_event_id") for r in records
            if r["event_type"] in SETTLEMENT_EVENTS}
    cycles = {venue: SettlementCycle.load(d) for venue, d in clearing_dirs.items()}
    added = []
    for obj in records:
        if obj["event_type"] != "ORDER_EXECUTED" or obj["event_id"] in done:
            continue
        venue = obj["details"]["execution"]["venue"]
        cycle = cycles.get(venue)
        if cycle is None:
            continue
        record = cycle.record(_execution(obj), obj["details"]["execution"]["match_number"],
                              venue=venue, execution_event_id=obj["event_id"])
        if record is not None:
            added.append(record)
    if added:
        key_path = os.path.join(keys_dir, SIGNING_KEY_FILE)
        if not os.path.exists(key_path):
            raise FileNotFoundError(f"{key_path}: the trail's signing key is missing (it "
                                    "cannot be extended without it)")
        writer = TrailWriter(audit_dir, load_or_create_signing_key(key_path), append=True)
        writer.extend(added)
        writer.close()
        records = read_records(audit_dir)
    store = AuditStore(audit_dir)
    try:
        store.load_day(trail_date(records), records)
    finally:
        store.close()
    return {kind: sum(1 for r in added if r.event_type == kind) for kind in SETTLEMENT_EVENTS}
