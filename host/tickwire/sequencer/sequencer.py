"""The single writer: typed requests in, journal, engine, per-account report streams out.

Every request (:mod:`tickwire.core.requests`: a gateway's order entry, cancel or replace, an
operator's halt or kill switch, the day's system events) goes through
:meth:`Sequencer.submit`, one at a time (the work up to the journal append is synchronous, so
nothing interleaves):

1. order requests are screened: refused while the engine is down, then by pre-trade risk
   (:mod:`tickwire.risk`); a refusal becomes a :class:`~tickwire.core.requests.Reject`;
2. the request is played into the :class:`~tickwire.exchange.front.Exchange`, which assigns
   the sequence number, builds the engine command and hands it, with the request, to the
   journal port (:mod:`tickwire.sequencer.journal.port`): in the log before the engine sees
   it. A request that makes no command (a refusal) is journaled after;
3. the reports (:class:`~tickwire.core.reports.Report`, protocol-neutral) are published to the
   per-account streams, and so to the sinks (each gateway encodes them in its protocol), only
   once the record is durable (group commit), so nothing is acknowledged that a crash could
   lose.

Each step is timed into :attr:`Sequencer.stages` (:class:`~tickwire.util.stages.StageTimes`):
risk (1), journal append and engine (2), durable, handoff and report encode (3).

:meth:`Sequencer.recover` replays the journal into the fresh Exchange and engine before
anything else: each logged request is played again and the command it makes must equal the
logged one byte for byte, so the book, the feed (the Exchange's listeners), the token sets
(duplicate tokens are refused across a restart), the risk exposure and the streams are all
rebuilt exactly.

Engine failure
--------------
If the engine raises (link down), order intake stops: the failed command is already journaled
(its outcome is unknown, it was never acknowledged), an
:class:`~tickwire.core.requests.EngineDown` record is appended, and every later order request
is refused (:attr:`Reason.ENGINE_DOWN <tickwire.core.reasons.Reason.ENGINE_DOWN>`, journaled and
in the decision log) until a restart. At recovery the failed command is applied and its
reports are released after those refusals (a :class:`~tickwire.core.requests.Recovered`
record marks where), so the streams stay the same across any number of restarts.
"""

import asyncio
import collections
import datetime
import logging
import time

from tickwire.core.reasons import Reason
from tickwire.core.reports import Report
from tickwire.core.requests import (
    CancelOrder,
    DeclareSymbol,
    EngineDown,
    Halt,
    KillSwitch,
    NewOrder,
    Recovered,
    Reject,
    ReplaceOrder,
    Resume,
    SystemEvent,
)
from tickwire.exchange.front import EngineFailure, Exchange, SymbolDefaults
from tickwire.protocol.link import Side
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.port import JournalPort, RecoveryError
from tickwire.sequencer.journal.wal import JournalRecord
from tickwire.util.stages import APPEND, DURABLE, ENCODE, ENGINE, HANDOFF, RISK, StageTimes

__all__ = ["Sequencer", "RecoveryError", "now_ns", "utc_today"]

log = logging.getLogger(__name__)

_DAY_NS = 86_400 * 10**9
_SIDE_LETTER = {Side.BUY: "B", Side.SELL: "S"}
_OP = {NewOrder: "new", CancelOrder: "cancel", ReplaceOrder: "replace"}


def _refusal(request, op, token, symbol, side, reason, text):
    """The Reject of a screened order request, naming what was refused."""
    return Reject(ts=request.ts, of=op, account=request.account, token=token, reason=reason,
                  text=text, cancel=request.__class__ is CancelOrder,
                  received=request.received, symbol=symbol, side=side, qty=request.qty,
                  price=getattr(request, "price", None))


def now_ns():
    """Wall-clock ns since midnight UTC."""
    return time.time_ns() % _DAY_NS


def utc_today():
    """Today's date at the venue's clock (UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).date()


class Sequencer:
    """Risk, journal, exchange and report streams, in one place and one order.

    Parameters
    ----------
    engine : object
        A fresh engine (``tickwire.engine``).
    wal : WriteAheadLog
    config : Config
    risk : RiskManager, optional
    defaults : SymbolDefaults
    listeners : list of callables
        Exchange listeners (the feed publisher).
    clock : callable
        ns since midnight for request timestamps (kept non-decreasing: :meth:`now`).
    today : callable
        The date the day opens with when :meth:`open_day` is given none.
    stages : StageTimes, optional
        Where the stage times go (a gateway adds its own stages to the same one).

    Members
    -------
    streams : dict
        account → list of :class:`~tickwire.core.reports.Report`; report ``n`` (from 1) is
        ``stream[n - 1]``.
    trade_date : str or None
        The session's trade date (ISO), from the journal's open.
    down : str or None
        Why order intake is stopped.
    """

    def __init__(self, engine, wal, config, risk=None, defaults=SymbolDefaults(), listeners=(),
                 clock=now_ns, today=utc_today, stages=None):
        self.wal = wal
        self.config = config
        self.risk = risk if risk is not None else RiskManager(config)
        self.journal = JournalPort(wal)
        self.exchange = Exchange(engine, defaults, listeners, journal=self.journal)
        self.clock, self.today = clock, today
        self.stages = stages if stages is not None else StageTimes()
        (self._time_risk, self._time_append, self._time_engine, self._time_durable,
         self._time_handoff) = (self.stages.recorder(stage)
                                for stage in (RISK, APPEND, ENGINE, DURABLE, HANDOFF))
        self.streams = {name: [] for name in config.accounts}
        self.sinks = []
        self.owner = {}
        self.trade_date = None
        self.down = None
        self.counts = collections.Counter()
        self.rejects = collections.Counter()
        self.recovered_records = 0
        self._pending = collections.deque()
        self._last_ts = 0
        self._apply_by_type = {
            NewOrder: self._new, CancelOrder: self._cancel, ReplaceOrder: self._replace,
            Reject: self._reject, DeclareSymbol: self._declare, SystemEvent: self._system,
            Halt: self._trading, Resume: self._trading, KillSwitch: self._kill}
        wal.add_durable_listener(self._publish)

    # -- recovery --------------------------------------------------------------------------

    def recover(self):
        """Replay the journal (must be called before any submit); return the records replayed."""
        records = list(self.wal.replay_records())
        failed = {r.request.failed for r in records
                  if r.request.__class__ is EngineDown and r.request.failed is not None}
        held = []
        for index, record in enumerate(records):
            request = record.request
            self._last_ts = max(self._last_ts, request.ts)
            if request.__class__ is EngineDown:
                continue
            if request.__class__ is Recovered:
                for outputs in held:
                    self._emit(outputs)
                held = []
                continue
            with self.journal.replaying(index, record.command):
                outputs = self._apply(request)
            if index in failed:
                held.append(outputs)
            else:
                self._emit(outputs)
        if held:
            for outputs in held:
                self._emit(outputs)
            self.wal.append(JournalRecord(Recovered(ts=self._last_ts,
                                                    released=tuple(sorted(failed)))))
        self.recovered_records = len(records)
        log.info("recovered %d journal records: %d commands, %d open orders, trade date %s",
                 len(records), self.exchange.seq, len(self.exchange.orders), self.trade_date)
        return len(records)

    # -- requests --------------------------------------------------------------------------

    def now(self):
        """The timestamp for a new request: the clock, never below one already sequenced."""
        self._last_ts = max(self._last_ts, self.clock())
        return self._last_ts

    def submit_nowait(self, request):
        """Sequence one request now; return its journal index (None if nothing was logged).

        The reports reach the streams once that index is durable.
        """
        self._last_ts = max(self._last_ts, request.ts)
        clock, journal = time.perf_counter_ns, self.journal
        start = clock()
        if request.__class__ in _OP:
            request = self._screen(request)
            screened = clock()
            self._time_risk(screened - start)
            start = screened
        records = self.wal.records
        journal.append_ns = 0
        try:
            outputs = self._apply(request)
        except EngineFailure as exc:
            return self._engine_down(exc, self.wal.records - 1, "engine down")
        except Exception as exc:
            logged = self.wal.records - 1 if self.wal.records > records else None
            return self._engine_down(exc, logged, "host failure")
        if self.wal.records > records:
            index = self.wal.records - 1
            done = clock()
            self._time_engine(done - start - journal.append_ns)
        else:
            applied = clock()
            index = self.wal.append(JournalRecord(request))
            done = clock()
            self._time_engine(applied - start)
            journal.append_ns = done - applied
        self._time_append(journal.append_ns)
        self._pending.append((index, outputs, done))
        if index < self.wal.durable_index:
            self._publish(self.wal.durable_index)
        return index

    async def submit(self, request):
        """Sequence one request and wait until it is durable (and its reports published)."""
        index = self.submit_nowait(request)
        if index is not None:
            await self.wal.durable(index)
        return index

    async def kill(self, scope, name, on=True):
        """Kill switch of an ``"account"`` or ``"firm"``: block new orders and cancel every open
        one (reason :attr:`~tickwire.core.reasons.Reason.KILL_SWITCH`); ``on=False`` releases
        it."""
        last = self.submit_nowait(KillSwitch(ts=self.now(), scope=scope, name=name, on=on))
        if on:
            for order in list(self.exchange.orders.values()):
                acct = self.owner.get((order.firm, order.token))
                if order.slot is None or acct is None:
                    continue
                if (scope == "account" and acct == name) or (scope == "firm" and
                                                             order.firm == name):
                    index = self.submit_nowait(CancelOrder(ts=self.now(), account=acct,
                                                           token=order.token, by_kill=True))
                    last = index if index is not None else last
        if last is not None:
            await self.wal.durable(last)

    def open_day(self, symbols=None, trade_date=None):
        """System events ``O`` (with the trade date: ``trade_date``, else today UTC), the
        symbols' declarations, ``S`` and ``Q`` (not yet durable)."""
        date = trade_date or self.today()
        if isinstance(date, datetime.date):
            date = date.isoformat()
        self.submit_nowait(SystemEvent(ts=self.now(), code="O",
                                       trade_date=datetime.date.fromisoformat(date).isoformat()))
        for name, price in (self.config.symbols if symbols is None else symbols).items():
            self.submit_nowait(DeclareSymbol(ts=self.now(), symbol=name, price=price))
        self.submit_nowait(SystemEvent(ts=self.now(), code="S"))
        return self.submit_nowait(SystemEvent(ts=self.now(), code="Q"))

    def close_day(self):
        """System events ``M`` (DAY orders expire), ``E`` and ``C``."""
        for code in "ME":
            self.submit_nowait(SystemEvent(ts=self.now(), code=code))
        return self.submit_nowait(SystemEvent(ts=self.now(), code="C"))

    def add_sink(self, callback):
        """Call ``callback(account, first_number, reports)`` with each batch published to an
        account's stream, recovery included (a gateway builds its protocol's streams so)."""
        self.sinks.append(callback)

    @property
    def opened(self):
        return self.exchange.seq > 0

    # -- screening -------------------------------------------------------------------------

    def _screen(self, request):
        """Engine-down and risk checks of an order request; a refusal becomes a Reject."""
        account = self.config.accounts.get(request.account)
        if account is None:
            return request
        cls = request.__class__
        op = _OP[cls]
        token = request.new_token if cls is ReplaceOrder else request.token
        if cls is CancelOrder:
            order, symbol, side = None, None, None
        elif cls is NewOrder:
            order, symbol, side = None, request.symbol, request.side
        else:
            order = self.exchange.orders.get((account.firm, request.token))
            symbol, side = (order.symbol, order.side) if order else (None, None)
        if self.down is not None:
            self.risk.record_reject(account, op, token, symbol, Reason.ENGINE_DOWN, self.down,
                                    request.ts)
            return _refusal(request, op, token, symbol, side, Reason.ENGINE_DOWN, self.down)
        if cls is CancelOrder or (cls is ReplaceOrder and order is None):
            return request
        info = self.exchange.symbols.get(symbol)
        reference = info.reference * info.tick if info else None
        decision = self.risk.check_new(
            account, token, symbol, _SIDE_LETTER[side], request.qty, request.price, reference,
            request.ts, op,
            replacing=(account.firm, request.token) if cls is ReplaceOrder else None)
        if decision.ok:
            return request
        return _refusal(request, op, token, symbol, side, decision.reason, decision.text)

    def _engine_down(self, exc, index, what):
        self.down = f"{what}: {exc.__cause__ or exc!r}"
        log.error("order intake stopped: %s (journal record %s)", self.down, index, exc_info=exc)
        try:
            return self.wal.append(JournalRecord(EngineDown(ts=self._last_ts, failed=index,
                                                            text=self.down)))
        except Exception:
            log.exception("cannot log the engine failure")
            return index

    # -- playing a request -------------------------------------------------------------------

    def _apply(self, request):
        """Play one request into the exchange; return [(account, Report)]."""
        handler = self._apply_by_type.get(request.__class__)
        if handler is None:
            raise ValueError(f"not a request the sequencer plays: {request!r}")
        return handler(request)

    def _new(self, req):
        ex, acct = self.exchange, req.account
        firm = self.config.accounts[acct].firm
        if req.symbol not in ex.symbols:
            return [(acct, Report("rejected", firm, req.token, req.ts, symbol=req.symbol,
                                  reason=Reason.UNLISTED_SYMBOL, request=req))]
        key = (firm, req.token)
        if key not in ex.tokens:
            self.owner[key] = acct
        reports = ex.new_order(firm, req.token, req.symbol, req.side, req.qty, req.price, req.ts,
                               tif=req.tif, min_qty=req.min_qty,
                               stp=self.config.accounts[acct].stp, request=req)
        return self._route(reports, acct, req)

    def _cancel(self, req):
        acct = req.account
        firm = self.config.accounts[acct].firm
        if self.owner.get((firm, req.token), acct) != acct:
            return [(acct, Report("cancel_rejected", firm, req.token, req.ts,
                                  reason=Reason.UNKNOWN_TOKEN, request=req))]
        reports = self.exchange.cancel(firm, req.token, req.ts, qty=req.qty, request=req)
        return self._route(reports, acct, req, kill=req.by_kill)

    def _replace(self, req):
        ex, acct = self.exchange, req.account
        firm = self.config.accounts[acct].firm
        if self.owner.get((firm, req.token), acct) != acct:
            return [(acct, Report("cancel_rejected", firm, req.token, req.ts,
                                  reason=Reason.UNKNOWN_TOKEN, request=req))]
        key = (firm, req.new_token)
        if (firm, req.token) in self.owner and key not in ex.tokens:
            self.owner[key] = acct
        reports = ex.replace(firm, req.token, req.new_token, req.qty, req.price, req.ts,
                             request=req)
        return self._route(reports, acct, req)

    def _reject(self, req):
        self.rejects[req.reason.text] += 1
        acct = req.account
        if acct not in self.streams:
            return []
        return [(acct, Report("cancel_rejected" if req.cancel else "rejected",
                              self.config.accounts[acct].firm, req.token or "", req.ts,
                              reason=req.reason, request=req))]

    def _declare(self, req):
        self.exchange.declare(req.symbol, req.price, req.ts, tick=req.tick, lot=req.lot,
                              breaker_bp=req.breaker_bp, request=req)
        return []

    def _system(self, req):
        if req.code == "O" and req.trade_date is not None:
            self.trade_date = req.trade_date
        outputs = self._route(self.exchange.system(req.code, req.ts, request=req), None, req)
        if req.code in "SE":
            report = Report("system", "", "", req.ts, code=req.code, request=req)
            outputs += [(name, report) for name in self.streams]
        return outputs

    def _trading(self, req):
        ex = self.exchange
        act = ex.halt if req.__class__ is Halt else ex.resume
        return self._route(act(req.symbol, req.ts, request=req), None, req)

    def _kill(self, req):
        self.risk.set_kill(req.scope, req.name, req.on, req.ts)
        return []

    def _route(self, reports, acct, request, kill=False):
        outputs = []
        for report in reports:
            if not report.firm:
                continue
            kind = report.type
            self.counts[kind] += 1
            if kind == "rejected" or kind == "cancel_rejected":
                self.rejects[report.reason.text] += 1
                target = acct
            else:
                target = self.owner.get((report.firm, report.token), acct)
                self.risk.on_report(target, report)
            if target in self.streams:
                report.request = request
                if kill and kind == "canceled":
                    report.reason = Reason.KILL_SWITCH
                outputs.append((target, report))
        return outputs

    # -- publishing --------------------------------------------------------------------------

    def _publish(self, durable_index):
        pending, time_durable, time_handoff = self._pending, self._time_durable, \
            self._time_handoff
        start = time.perf_counter_ns()
        synced = min(self.wal.synced_ns, start)
        outputs = []
        count = 0
        while pending and pending[0][0] < durable_index:
            _, reports, done = pending.popleft()
            outputs += reports
            if synced > done:
                time_durable(synced - done)
                time_handoff(start - synced)
            else:                   # on disk before the engine was done
                time_durable(0)
                time_handoff(start - done)
            count += 1
        self._emit(outputs)         # one batch per account for the whole group commit
        self.stages.record_many(ENCODE, time.perf_counter_ns() - start, count)
        self.stages.fold_full()     # off the per-order path: once per group commit
        self.risk.flush()

    def _emit(self, outputs):
        if not outputs:
            return
        batches = {}
        for acct, report in outputs:
            stream = self.streams[acct]
            stream.append(report)
            batch = batches.get(acct)
            if batch is None:
                batches[acct] = [len(stream), report]
            else:
                batch.append(report)
        for sink in self.sinks:
            for acct, batch in batches.items():
                sink(acct, batch[0], batch[1:])

    async def drain(self):
        """Wait until everything submitted so far is durable and published."""
        if self.wal.records:
            await self.wal.durable(self.wal.records - 1)
        await asyncio.sleep(0)
