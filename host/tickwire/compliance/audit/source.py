"""Audit records from the journal: the one place that knows the WAL's request contexts.

:func:`journal_records` replays the write-ahead log through the sequencer's own recovery
(:meth:`~tickwire.sequencer.sequencer.Sequencer.recover`: a fresh exchange and reference
model, each logged command checked byte for byte) and turns each request and the exchange
reports it produced into audit records, in log order. The same journal and vault give the
same records. When the journal's request format changes, this module is what adapts.

Per request: ``ORDER_RECEIVED`` / ``CANCEL_RECEIVED`` / ``REPLACE_RECEIVED``; the risk
decision (``RISK_ACCEPTED`` for entries and replaces that went ahead, ``RISK_REJECTED`` with the
reason for a logged refusal, whose context holds only account, token and reason);
``ORDER_SEQUENCED`` when the request became an engine command (its sequence number); then one
record per report: ``ORDER_ACCEPTED``, ``ORDER_EXECUTED``, ``ORDER_CANCELLED``,
``ORDER_REPLACED``, ``ORDER_REJECTED``, ``CANCEL_REJECTED``.

Times: the journal holds ns since midnight (the sequencer's clock at submission); the trade
date comes from the caller until the journal records it.
"""

from importlib.metadata import PackageNotFoundError, version

from tickwire.compliance.audit.record import CLOCK_SOURCE, AuditRecord, iso_utc, price_text
from tickwire.engine.model import ModelEngine
from tickwire.protocol.link import Tif
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.wal import WriteAheadLog
from tickwire.sequencer.sequencer import Sequencer

__all__ = ["journal_records", "read_journal", "software_version"]

_SIDE = {"B": "BUY", "S": "SELL"}
_TIF = {int(m): m.name for m in Tif}
_RECEIVED = {"new": "ORDER_RECEIVED", "cancel": "CANCEL_RECEIVED",
             "replace": "REPLACE_RECEIVED"}
_REPORT = {"accepted": "ORDER_ACCEPTED", "executed": "ORDER_EXECUTED",
           "canceled": "ORDER_CANCELLED", "replaced": "ORDER_REPLACED",
           "rejected": "ORDER_REJECTED", "cancel_rejected": "CANCEL_REJECTED"}


def software_version():
    try:
        return version("tickwire")
    except PackageNotFoundError:
        return "unknown"


def read_journal(wal_path):
    """The WAL's decoded records (the file is opened, scanned and closed; an intact log is not
    modified)."""
    wal = WriteAheadLog(wal_path, fsync="none")
    try:
        return list(wal.replay_records())
    finally:
        wal.close_sync()


class _Journal:
    """Records already read, in the shape :meth:`Sequencer.recover` reads a WAL."""

    def __init__(self, records):
        self.records = records
        self.durable_index = len(records)

    def replay_records(self):
        return iter(self.records)

    def add_durable_listener(self, callback):
        pass

    def append(self, record):       # the "recovered" marker of a recovery: not ours to write
        self.durable_index += 1
        return self.durable_index - 1


class _Tap(Sequencer):
    """The sequencer, handing each replayed request and its exchange reports to a callback."""

    def __init__(self, records, config, on_request, engine):
        super().__init__(engine, _Journal(records), config, RiskManager(config))
        self._on_request = on_request
        self._reports = None

    def _apply(self, ctx):
        self._reports = []
        outputs = super()._apply(ctx)
        self._on_request(ctx, self._reports)
        return outputs

    def _route(self, reports, acct, kill=False):
        self._reports.extend(reports)
        return super()._route(reports, acct, kill)


class _Builder:
    def __init__(self, config, trade_date, client_hash, server_id, index_of):
        self.config, self.date, self.client_hash = config, trade_date, client_hash
        self.meta = {"server_id": server_id, "version": software_version(),
                     "clock_source": CLOCK_SOURCE}
        self.index_of = index_of
        self.orders = {}            # (firm, token) -> (order type, time in force)
        self.out = []
        self.tap = None
        self._when = (None, None)

    def _client(self, acct):
        return None if acct is None else self.client_hash(acct)

    def _record(self, event_type, ts, index, **fields):
        meta = dict(self.meta, request_trace_id=f"wal-{index}", journal_index=index)
        if self._when[0] != ts:           # a request's records share its time
            self._when = (ts, iso_utc(self.date, ts))
        when = self._when[1]
        self.out.append(AuditRecord(event_type, when, when, system_metadata=meta, **fields))

    def on_request(self, ctx, reports):
        index, command = self.index_of[id(ctx)]
        op, ts, acct = ctx["op"], ctx["ts"], ctx.get("acct")
        account = self.config.accounts.get(acct)
        firm = account.firm if account else None
        if op in _RECEIVED or op == "reject":
            self._request(op, ctx, index, firm, command)
        for report in reports:
            self._report(report, ts, index)

    def _request(self, op, ctx, index, firm, command):
        acct, ts = ctx.get("acct"), ctx["ts"]
        of = ctx["of"] if op == "reject" else op
        token = ctx.get("token")
        common = {"client_id_hash": self._client(acct), "firm": firm,
                  "order_id": f"{firm}/{token}" if firm else None}
        if op == "new":
            kind = ("MARKET" if ctx["price"] is None else "LIMIT", _TIF.get(ctx["tif"]))
            self.orders[firm, token] = kind
            fields = dict(symbol=ctx["symbol"], side=_SIDE[ctx["side"]], quantity=ctx["qty"],
                          price=price_text(ctx["price"]), order_type=kind[0],
                          time_in_force=kind[1])
        elif op == "replace":
            kind = self.orders.get((firm, token), (None, None))
            self.orders[firm, ctx["new_token"]] = kind
            common["order_id"] = f"{firm}/{ctx['new_token']}"
            fields = dict(quantity=ctx["qty"], price=price_text(ctx["price"]),
                          order_type=kind[0], time_in_force=kind[1],
                          details={"previous_order_id": f"{firm}/{token}"})
        elif op == "cancel":
            fields = dict(quantity=ctx["qty"], details={"leave": ctx["qty"]} if not
                          ctx.get("by") else {"leave": ctx["qty"], "by": ctx["by"]})
        else:
            fields = {}
        self._record(_RECEIVED[of], ts, index, **common, **fields)
        if op == "reject":
            self._record("RISK_REJECTED", ts, index, **common, details={
                "reason": ctx["reason"], "text": ctx.get("text")})
            return
        if op in ("new", "replace"):
            self._record("RISK_ACCEPTED", ts, index, **common)
        if command is not None:
            self._record("ORDER_SEQUENCED", ts, index, **common,
                         details={"command_seq": command.seq})

    def _report(self, r, ts, index):
        acct = self.tap.owner.get((r.firm, r.token)) if r.firm else None
        kind = self.orders.get((r.firm, r.token), (None, None))
        details = {}
        for name, value in (("execution_id", r.match), ("liquidity", r.liquidity),
                            ("leaves", r.leaves), ("reason", r.reason),
                            ("exchange_order_id", r.order_id),
                            ("text", r.extra.get("text")),
                            ("previous_order_id", r.extra.get("previous_token"))):
            if value is not None:
                details[name] = f"{r.firm}/{value}" if name == "previous_order_id" else value
        self._record(_REPORT[r.type], r.timestamp or ts, index, client_id_hash=self._client(acct),
                     firm=r.firm or None, order_id=f"{r.firm}/{r.token}" if r.firm else None,
                     symbol=r.symbol, side=_SIDE.get(r.side), quantity=r.qty,
                     price=price_text(r.price), order_type=kind[0], time_in_force=kind[1],
                     details=details)


def journal_records(records, config, trade_date, client_hash, server_id="tickwire-host",
                    engine=None):
    """The audit records of a journal, in log order.

    Parameters
    ----------
    records : list of LogRecord
        The WAL's records (:func:`read_journal`).
    config : Config
        The venue's accounts (account → firm).
    trade_date : datetime.date
        The session's date (the journal's times are ns since midnight UTC).
    client_hash : callable
        Account name → ``client_id_hash`` for that date (the vault's).
    server_id : str
    engine : object, optional
        A fresh engine to replay into (default: the reference model).

    Returns
    -------
    list of AuditRecord
        Not yet sealed (no ``event_id``).
    """
    index_of = {id(r.context): (i, r.command) for i, r in enumerate(records)}
    builder = _Builder(config, trade_date, client_hash, server_id, index_of)
    builder.tap = _Tap(records, config, builder.on_request, engine or ModelEngine())
    builder.tap.recover()
    return builder.out
