"""The broker's audit trail: each step of a retail order, in the compliance audit trail.

Records are the compliance work's :class:`~tickwire.compliance.audit.record.AuditRecord`
(the seed's schema, section 5): ``event_id`` a UUID v7 computed from the record, so an edit
shows, ``client_id_hash`` SHA-256 of the user and a salt drawn for the day, and what only
some steps have — the buying-power check, the risk check, the ``routing_decision``, the
execution — under ``details``. They go into a :class:`~tickwire.compliance.audit.trail.
TrailWriter` (an RFC 9162 Merkle tree with Ed25519-signed tree heads, ``tickwire audit
verify`` checks it), and each order keeps its own, which the API shows at
``GET /v2/orders/{id}/audit``.
"""

import datetime
import hashlib
import os
import secrets
import socket
import time

from tickwire.compliance.audit.keys import load_or_create_signing_key
from tickwire.compliance.audit.record import AuditRecord
from tickwire.compliance.audit.trail import TrailWriter
from tickwire.core.money import format_dollars
from tickwire.util.clock import iso_time

__all__ = ["AuditTrail", "BROKER_FIRM", "SIGNING_KEY"]

VERSION = "0.1.0"
BROKER_FIRM = "BRK"
SIGNING_KEY = "signing.key"
"""The trail's Ed25519 key, in the audit directory (made on first use)."""


class AuditTrail:
    """Parameters
    ----------
    directory : str, optional
        Where the trail (``trail.jsonl``, ``public.pem``, the signing key) goes; without
        one the records are only kept with their orders.
    server_id : str
    """

    def __init__(self, directory=None, server_id=None):
        self.salt = secrets.token_hex(16)
        self.server_id = server_id or f"broker-{socket.gethostname()}"
        self.writer = None
        if directory:
            os.makedirs(directory, exist_ok=True)
            key = load_or_create_signing_key(os.path.join(directory, SIGNING_KEY))
            self.writer = TrailWriter(directory, key)
        self.records = 0

    def record(self, event_type, order, received_ns=None, trace_id=None, **details):
        """Append one record about ``order``; returns it (as the trail holds it)."""
        now = time.time_ns()
        record = AuditRecord(
            event_type=event_type, timestamp_received=iso_time(received_ns or now),
            timestamp_processed=iso_time(now), order_id=order.id,
            client_id_hash=hashlib.sha256((order.user + self.salt).encode()).hexdigest(),
            firm=BROKER_FIRM, symbol=order.symbol, side=order.side.upper(),
            quantity=order.qty,
            price=None if order.limit_price is None else format_dollars(order.limit_price),
            order_type=order.type.upper(), time_in_force=order.time_in_force.upper(),
            details=details, system_metadata={"server_id": self.server_id, "version": VERSION,
                                              "request_trace_id": trace_id or order.id})
        sealed = record.sealed_json()
        order.audit.append(sealed)
        if self.writer is not None:
            self.writer.append(sealed)
        self.records += 1
        return sealed

    def close(self):
        """Close the day's trail (a ``TRAIL_CLOSED`` record and a last signed tree head)."""
        if self.writer is not None:
            self.writer.close(trade_date=datetime.datetime.now(datetime.timezone.utc).date())
            self.writer = None
