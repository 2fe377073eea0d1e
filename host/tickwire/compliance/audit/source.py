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

Times: the journal holds ns since midnight UTC and, at the open, the session's trade date
(:func:`journal_date`). ``timestamp_processed`` is the sequencer's clock when it took the
request (an execution report's own time for its record); ``timestamp_received`` is when the
gateway read the request's bytes from its socket (the request's ``received``), the same for
every record the request caused. A request no gateway received (the operator's, a command
file's, a journal older than the field) has only the sequencer's time: both are equal.
A refusal's records name the refused order's symbol, side, quantity and price.
"""

from importlib.metadata import PackageNotFoundError, version

from tickwire.compliance.audit.record import CLOCK_SOURCE, AuditRecord, iso_utc, price_text
from tickwire.core.requests import CancelOrder, NewOrder, Reject, ReplaceOrder
from tickwire.engine.model import ModelEngine
from tickwire.protocol.link import Side
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.reader import read_journal
from tickwire.sequencer.journal.reader import trade_date as journal_trade_date
from tickwire.sequencer.sequencer import Sequencer

__all__ = ["journal_records", "journal_reports", "read_entries", "journal_date",
           "software_version"]

_SIDE = {Side.BUY: "BUY", Side.SELL: "SELL", "B": "BUY", "S": "SELL"}
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


def read_entries(wal_path):
    """The journal's entries (read only: the file is not modified)."""
    return list(read_journal(wal_path))


def journal_date(wal_path):
    """The trade date the journal opened its day with (None for a journal without one)."""
    return journal_trade_date(wal_path)


class _Journal:
    """Entries already read, in the shape :meth:`Sequencer.recover` reads a journal."""

    def __init__(self, entries):
        self.entries = entries
        self.records = self.durable_index = len(entries)

    def replay_records(self):
        return iter(self.entries)

    def add_durable_listener(self, callback):
        pass

    def append(self, record):       # the Recovered marker of a recovery: not ours to write
        self.records += 1
        return self.records - 1


class _Tap(Sequencer):
    """The sequencer, handing each replayed request and its reports to a callback."""

    def __init__(self, entries, config, on_request, engine):
        super().__init__(engine, _Journal(entries), config, RiskManager(config))
        self._on_request = on_request

    def _apply(self, request):
        outputs = super()._apply(request)
        self._on_request(request, outputs)
        return outputs


class _Builder:
    def __init__(self, config, trade_date, client_hash, server_id, index_of):
        self.config, self.date, self.client_hash = config, trade_date, client_hash
        self.meta = {"server_id": server_id, "version": software_version(),
                     "clock_source": CLOCK_SOURCE}
        self.index_of = index_of
        self.orders = {}            # (firm, token) -> (order type, time in force)
        self.out = []
        self._when = {}                 # ns -> its ISO text, for the request being played
        self._received = None
        self._refused = {}              # what the request being played refused, if it did

    def _client(self, acct):
        return None if acct is None else self.client_hash(acct)

    def _iso(self, ns):
        when = self._when.get(ns)
        if when is None:
            when = self._when[ns] = iso_utc(self.date, ns)
        return when

    def _record(self, event_type, ts, index, **fields):
        meta = dict(self.meta, request_trace_id=f"wal-{index}", journal_index=index)
        self.out.append(AuditRecord(event_type, self._iso(self._received), self._iso(ts),
                                    system_metadata=meta, **fields))

    def on_request(self, request, outputs):
        index, command = self.index_of[id(request)]
        cls = request.__class__
        self._when.clear()              # a request's records share its times
        received = getattr(request, "received", None)
        self._received = request.ts if received is None else received
        self._refused = {}
        if cls in (NewOrder, CancelOrder, ReplaceOrder, Reject):
            self._request(request, index, command)
        for acct, report in outputs:
            if report.type in _REPORT:
                self._report(acct, report, request.ts, index)

    def _request(self, req, index, command):
        cls = req.__class__
        account = self.config.accounts.get(req.account)
        firm = account.firm if account else None
        token = req.new_token if cls is ReplaceOrder else req.token
        common = {"client_id_hash": self._client(req.account), "firm": firm,
                  "order_id": f"{firm}/{token}" if firm and token else None}
        if cls is NewOrder:
            kind = ("MARKET" if req.price is None else "LIMIT", req.tif.name)
            self.orders[firm, token] = kind
            fields = dict(symbol=req.symbol, side=_SIDE[req.side], quantity=req.qty,
                          price=price_text(req.price), order_type=kind[0],
                          time_in_force=kind[1])
        elif cls is ReplaceOrder:
            kind = self.orders.get((firm, req.token), (None, None))
            self.orders[firm, token] = kind
            fields = dict(quantity=req.qty, price=price_text(req.price), order_type=kind[0],
                          time_in_force=kind[1],
                          details={"previous_order_id": f"{firm}/{req.token}"})
        elif cls is CancelOrder:
            details = {"leave": req.qty}
            if req.by_kill:
                details["by"] = "kill_switch"
            fields = dict(quantity=req.qty, details=details)
        else:
            fields = self._refused = dict(symbol=req.symbol, side=_SIDE.get(req.side),
                                          quantity=req.qty, price=price_text(req.price))
        received = _RECEIVED.get(req.of, "ORDER_RECEIVED") if cls is Reject else \
            _RECEIVED[_OP[cls]]
        self._record(received, req.ts, index, **common, **fields)
        if cls is Reject:
            self._record("RISK_REJECTED", req.ts, index, **common, **fields, details={
                "reason": req.reason.name, "text": req.text or req.reason.text})
            return
        if cls is not CancelOrder:
            self._record("RISK_ACCEPTED", req.ts, index, **common)
        if command is not None:
            self._record("ORDER_SEQUENCED", req.ts, index, **common,
                         details={"command_seq": command.seq})

    def _report(self, acct, r, ts, index):
        kind = self.orders.get((r.firm, r.token), (None, None))
        details = {}
        for name, value in (("execution_id", r.match), ("liquidity", r.liquidity),
                            ("leaves", r.leaves), ("exchange_order_id", r.order_id)):
            if value is not None:
                details[name] = value
        if r.reason is not None:
            details["reason"], details["text"] = r.reason.name, r.reason.text
        if r.previous_token is not None:
            details["previous_order_id"] = f"{r.firm}/{r.previous_token}"
        fields = dict(symbol=r.symbol, side=_SIDE.get(r.side), quantity=r.qty,
                      price=price_text(r.price))
        for name, value in self._refused.items():   # a refusal's report names little
            if fields[name] is None:
                fields[name] = value
        self._record(_REPORT[r.type], r.timestamp or ts, index,
                     client_id_hash=self._client(acct), firm=r.firm or None,
                     order_id=f"{r.firm}/{r.token}" if r.firm else None, order_type=kind[0],
                     time_in_force=kind[1], details=details, **fields)


_OP = {NewOrder: "new", CancelOrder: "cancel", ReplaceOrder: "replace"}


def journal_records(entries, config, trade_date, client_hash, server_id="tickwire-host",
                    engine=None):
    """The audit records of a journal, in log order.

    Parameters
    ----------
    entries : list of JournalEntry
        The journal (:func:`read_entries`).
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
    index_of = {id(e.request): (e.index, e.command) for e in entries}
    builder = _Builder(config, trade_date, client_hash, server_id, index_of)
    _Tap(entries, config, builder.on_request, engine or ModelEngine()).recover()
    return builder.out


def journal_reports(entries, config, engine=None):
    """The day's execution reports (``tickwire replay --reports`` dicts), in the venue's
    order, rebuilt from the journal."""
    out = []

    def collect(request, outputs):
        out.extend(report.to_json() for _, report in outputs if report.type in _REPORT)

    _Tap(entries, config, collect, engine or ModelEngine()).recover()
    return out
