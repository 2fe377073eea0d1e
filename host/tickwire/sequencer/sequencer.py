"""The single writer: requests in, write-ahead log, engine, per-account OUCH streams out.

Every client request (an OUCH order entry turned into a *context* dict by the gateway) and
every operator action goes through :meth:`Sequencer.submit`, in one asyncio task at a time
(the work up to the WAL append is synchronous, so nothing interleaves):

1. pre-trade risk (:mod:`tickwire.risk`) for entries and replaces; a refusal becomes a
   ``reject`` record;
2. the request is played into the :class:`~tickwire.exchange.Exchange`, which assigns the
   sequence number and builds the engine command. The Exchange calls ``engine.process``
   itself, so the engine is wrapped: :class:`LoggingEngine` appends the command with its
   request context to the WAL (``os.write``: in the log before the engine sees it), then
   forwards it. A request that produces no command (host or risk reject) is appended after;
3. the reports become OUCH messages for the accounts concerned; they are published to the
   per-account streams (and so to the clients) only once the record is durable (group commit),
   so nothing is acknowledged that a crash could lose.

:meth:`Sequencer.recover` replays the WAL into the fresh Exchange and engine before anything
else: each record's request is played again and the command the Exchange builds must equal
the logged one byte for byte, so the book, the feed (the Exchange's listeners), the token sets
(duplicate tokens are refused across a restart), the risk exposure and the OUCH streams are all
rebuilt exactly.

Engine failure
--------------
If ``engine.process`` raises (link down), order intake stops: the failed command is already in
the WAL (its outcome is unknown, it was never acknowledged), an ``engine_down`` record is
appended, and every later entry/replace/cancel is refused with OUCH reject ``C`` (logged in the
decision log and in the WAL) until a restart. At recovery the failed command is applied and its
reports are released after those rejects (a ``recovered`` record marks where), so the streams
stay the same across any number of restarts.

Request contexts (the JSON part of a WAL record; prices in 1/10000 $, ``ts`` ns since midnight)
------------------------------------------------------------------------------------------------
``new``       acct, token, symbol, side (B/S), qty, price (None: market), tif (link Tif),
              min_qty, ouch {side, tif, display, capacity, ise, min_qty, cross}
``cancel``    acct, token, qty (shares to leave), [by = "kill"]
``replace``   acct, token, new_token, qty, price, ouch {tif, display, ise, min_qty}
``declare``   symbol, price, [tick, lot, breaker_pct]
``system``    code;  ``halt`` / ``resume``: symbol
``kill``      scope (account/firm), name, on
``reject``    acct, token, reason (OUCH code), text, [cancel: true → Cancel Reject]
``engine_down``  failed (WAL index of the failed command or None), text
``recovered`` released (WAL indexes whose reports were released)
"""

import asyncio
import collections
import logging
import time

from tickwire.exchange.front import Exchange, SymbolDefaults
from tickwire.gateways.ouch.messages import cancel_reject, rejected, report_message, system_event
from tickwire.protocol.link import Side, Tif
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.wal import LogRecord

__all__ = ["Sequencer", "LoggingEngine", "RecoveryError", "ENGINE_DOWN_REASON", "now_ns"]

log = logging.getLogger(__name__)

ENGINE_DOWN_REASON = "C"
_DAY_NS = 86_400 * 10**9
_SIDE = {"B": Side.BUY, "S": Side.SELL}
_TIF = {int(m): m for m in Tif}


def _tif(value):
    return _TIF[value] if value in _TIF else Tif(value)


def now_ns():
    """Wall-clock ns since midnight UTC."""
    return time.time_ns() % _DAY_NS


class RecoveryError(RuntimeError):
    """The WAL does not replay into the same commands (wrong config or code change)."""


class LoggingEngine:
    """Wraps an engine: ``process(cmd)`` appends the command to the WAL, then forwards it.

    In replay mode (``expected`` set to a :class:`~tickwire.wal.LogRecord`) it checks the
    command against the logged one instead of appending.

    Parameters
    ----------
    engine : object
        ``process(Command) -> [Event]`` and ``params``.
    wal : WriteAheadLog
    """

    def __init__(self, engine, wal):
        self.engine, self.wal = engine, wal
        self.params = engine.params
        self.context = None
        self.index = None
        self.expected = None
        self.failed = False

    def process(self, cmd):
        expected = self.expected
        if expected is not None:
            self.expected = None
            if expected.command is None or expected.command.to_bytes() != cmd.to_bytes():
                raise RecoveryError(f"replayed command {cmd} differs from the log's "
                                    f"{expected.command}")
            return self.engine.process(cmd)
        if self.index is not None:
            raise RuntimeError("one request made more than one engine command")
        self.index = self.wal.append(LogRecord(cmd, self.context))
        try:
            return self.engine.process(cmd)
        except Exception:
            self.failed = True
            raise


class Sequencer:
    """Risk, WAL, exchange and OUCH streams, in one place and one order.

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
        ns since midnight for request timestamps (kept non-decreasing).

    Members
    -------
    streams : dict
        account → list of OUCH outbound messages; message ``n`` (from 1) is ``stream[n - 1]``.
    down : str or None
        Why order intake is stopped.
    """

    def __init__(self, engine, wal, config, risk=None, defaults=SymbolDefaults(), listeners=(),
                 clock=now_ns):
        self.wal = wal
        self.config = config
        self.risk = risk if risk is not None else RiskManager(config)
        self.logging_engine = LoggingEngine(engine, wal)
        self.exchange = Exchange(self.logging_engine, defaults, listeners)
        self.clock = clock
        self.streams = {name: [] for name in config.accounts}
        self.subscribers = {}
        self.owner = {}
        self.meta = {}
        self.down = None
        self.counts = collections.Counter()
        self.rejects = collections.Counter()
        self.recovered_records = 0
        self._pending = collections.deque()
        self._last_ts = 0
        self._recovering = False
        wal.add_durable_listener(self._publish)

    # -- recovery --------------------------------------------------------------------------

    def recover(self):
        """Replay the WAL (must be called before any submit); return the records replayed."""
        records = list(self.wal.replay_records())
        failed = {r.context["failed"] for r in records
                  if r.context.get("op") == "engine_down" and r.context.get("failed") is not None}
        held = []
        self._recovering = True
        try:
            for index, record in enumerate(records):
                ctx = record.context
                op = ctx["op"]
                self._last_ts = max(self._last_ts, ctx.get("ts", 0))
                if op == "engine_down":
                    continue
                if op == "recovered":
                    for outputs in held:
                        self._emit(outputs)
                    held = []
                    continue
                self.logging_engine.expected = record
                outputs = self._apply(ctx)
                if self.logging_engine.expected is not None and record.command is not None:
                    raise RecoveryError(f"WAL record {index}: logged command not replayed")
                self.logging_engine.expected = None
                if index in failed:
                    held.append(outputs)
                else:
                    self._emit(outputs)
        finally:
            self._recovering = False
            self.logging_engine.expected = None
        if held:
            for outputs in held:
                self._emit(outputs)
            self.wal.append(LogRecord(None, {"op": "recovered", "ts": self._last_ts,
                                             "released": sorted(failed)}))
        self.recovered_records = len(records)
        log.info("recovered %d WAL records: %d commands, %d open orders", len(records),
                 self.exchange.seq, len(self.exchange.orders))
        return len(records)

    # -- requests --------------------------------------------------------------------------

    def submit_nowait(self, ctx):
        """Sequence one request now; return its WAL index (None if nothing was logged).

        The outputs reach the streams once that index is durable.
        """
        ts = ctx.get("ts")
        if ts is None:
            ts = ctx["ts"] = self._now()
        else:
            self._last_ts = max(self._last_ts, ts)
        op = ctx["op"]
        if op in ("new", "replace", "cancel"):
            ctx = self._screen(ctx)
        engine = self.logging_engine
        engine.context, engine.index, engine.failed = ctx, None, False
        try:
            outputs = self._apply(ctx)
        except Exception as exc:
            return self._engine_down(exc, engine.index, engine.failed)
        finally:
            engine.context = None
        index = engine.index
        if index is None:
            index = self.wal.append(LogRecord(None, ctx))
        self._pending.append((index, outputs))
        if index < self.wal.durable_index:
            self._publish(self.wal.durable_index)
        return index

    async def submit(self, ctx):
        """Sequence one request and wait until it is durable (and its reports published)."""
        index = self.submit_nowait(ctx)
        if index is not None:
            await self.wal.durable(index)
        return index

    async def kill(self, scope, name, on=True):
        """Kill switch of an ``"account"`` or ``"firm"``: block new orders and cancel every open
        one (OUCH cancel reason ``S``); ``on=False`` releases it."""
        last = self.submit_nowait({"op": "kill", "scope": scope, "name": name, "on": on})
        if on:
            for order in list(self.exchange.orders.values()):
                acct = self.owner.get((order.firm, order.token))
                if order.slot is None or acct is None:
                    continue
                if (scope == "account" and acct == name) or (scope == "firm" and
                                                             order.firm == name):
                    index = self.submit_nowait({"op": "cancel", "acct": acct,
                                                "token": order.token, "qty": 0, "by": "kill"})
                    last = index if index is not None else last
        if last is not None:
            await self.wal.durable(last)

    def open_day(self, symbols=None):
        """System events ``O``, the symbols' declarations, ``S`` and ``Q`` (not yet durable)."""
        self.submit_nowait({"op": "system", "code": "O"})
        for name, price in (self.config.symbols if symbols is None else symbols).items():
            self.submit_nowait({"op": "declare", "symbol": name, "price": price})
        self.submit_nowait({"op": "system", "code": "S"})
        return self.submit_nowait({"op": "system", "code": "Q"})

    def close_day(self):
        """System events ``M`` (DAY orders expire), ``E`` and ``C``."""
        for code in "ME":
            self.submit_nowait({"op": "system", "code": code})
        return self.submit_nowait({"op": "system", "code": "C"})

    def subscribe(self, account, callback):
        """Call ``callback(first_number, messages)`` with each batch published to the account's
        stream (``None`` to unsubscribe)."""
        if callback is None:
            self.subscribers.pop(account, None)
        else:
            self.subscribers[account] = callback

    @property
    def opened(self):
        return self.exchange.seq > 0

    # -- internals -------------------------------------------------------------------------

    def _now(self):
        self._last_ts = max(self._last_ts, self.clock())
        return self._last_ts

    def _screen(self, ctx):
        """Engine-down and risk checks of a live request; a refusal becomes a reject record."""
        op = ctx["op"]
        account = self.config.accounts.get(ctx.get("acct"))
        if account is None:
            return ctx
        token = ctx.get("new_token") if op == "replace" else ctx.get("token")
        if self.down is not None:
            self.risk.record_reject(account, op, token, ctx.get("symbol"), ENGINE_DOWN_REASON,
                                    self.down, ctx["ts"])
            return self._reject_ctx(ctx, ENGINE_DOWN_REASON, self.down)
        if op == "cancel":
            return ctx
        if op == "new":
            symbol, side, price = ctx["symbol"], ctx["side"], ctx["price"]
        else:
            order = self.exchange.orders.get((account.firm, ctx["token"]))
            if order is None:
                return ctx
            symbol, side, price = order.symbol, "B" if order.side == Side.BUY else "S", \
                ctx["price"]
        info = self.exchange.symbols.get(symbol)
        reference = info.reference * info.tick if info else None
        decision = self.risk.check_new(
            account, token, symbol, side, ctx["qty"], price, reference, ctx["ts"], op,
            replacing=(account.firm, ctx["token"]) if op == "replace" else None)
        if decision.ok:
            return ctx
        return self._reject_ctx(ctx, decision.reason, decision.text)

    @staticmethod
    def _reject_ctx(ctx, reason, text):
        op = ctx["op"]
        token = ctx.get("new_token") if op == "replace" else ctx.get("token")
        out = {"op": "reject", "of": op, "ts": ctx["ts"], "acct": ctx.get("acct"),
               "token": token, "reason": reason, "text": text}
        if op == "cancel":
            out["cancel"] = True
        return out

    def _engine_down(self, exc, index, engine_failed):
        what = "engine down" if engine_failed else "host failure"
        self.down = f"{what}: {exc!r}"
        log.error("order intake stopped: %s (WAL record %s)", self.down, index, exc_info=exc)
        try:
            return self.wal.append(LogRecord(None, {
                "op": "engine_down", "ts": self._last_ts, "failed": index, "text": self.down}))
        except Exception:
            log.exception("cannot log the engine failure")
            return index

    def _apply(self, ctx):
        """Play one request into the exchange; return [(account, OUCH bytes)]."""
        op, ts, ex = ctx["op"], ctx["ts"], self.exchange
        acct = ctx.get("acct")
        account = self.config.accounts.get(acct)
        if op == "new":
            firm, token = account.firm, ctx["token"]
            if ctx["symbol"] not in ex.symbols:
                return [(acct, rejected(ts, token, "S"))]
            key = (firm, token)
            if key not in ex.tokens:
                self.owner[key] = acct
                self.meta[key] = dict(ctx["ouch"], symbol=ctx["symbol"], firm=firm,
                                      price=ctx["price"])
            reports = ex.new_order(firm, token, ctx["symbol"], _SIDE[ctx["side"]], ctx["qty"],
                                   ctx["price"], ts, tif=_tif(ctx["tif"]), min_qty=ctx["min_qty"],
                                   stp=account.stp)
        elif op == "cancel":
            firm, token = account.firm, ctx["token"]
            if self.owner.get((firm, token), acct) != acct:
                return [(acct, cancel_reject(ts, token))]
            reports = ex.cancel(firm, token, ts, qty=ctx["qty"])
        elif op == "replace":
            firm, token, new_token = account.firm, ctx["token"], ctx["new_token"]
            if self.owner.get((firm, token), acct) != acct:
                return [(acct, cancel_reject(ts, token))]
            old = self.meta.get((firm, token))
            key = (firm, new_token)
            if old is not None and key not in ex.tokens:
                self.owner[key] = acct
                self.meta[key] = dict(old, **ctx["ouch"], price=ctx["price"])
            reports = ex.replace(firm, token, new_token, ctx["qty"], ctx["price"], ts)
        elif op == "reject":
            self.rejects[ctx["reason"]] += 1
            make = cancel_reject(ts, ctx["token"]) if ctx.get("cancel") else \
                rejected(ts, ctx["token"], ctx["reason"])
            return [(acct, make)] if acct in self.streams else []
        elif op == "declare":
            ex.declare(ctx["symbol"], ctx["price"], ts, tick=ctx.get("tick"), lot=ctx.get("lot"),
                       breaker_pct=ctx.get("breaker_pct"))
            return []
        elif op == "system":
            outputs = self._route(ex.system(ctx["code"], ts), acct)
            if ctx["code"] in "SE":
                msg = system_event(ts, ctx["code"])
                outputs += [(name, msg) for name in self.streams]
            return outputs
        elif op in ("halt", "resume"):
            return self._route((ex.halt if op == "halt" else ex.resume)(ctx["symbol"], ts), acct)
        elif op == "kill":
            self.risk.set_kill(ctx["scope"], ctx["name"], ctx["on"], ts)
            return []
        else:
            raise ValueError(f"unknown request {op!r}")
        return self._route(reports, acct, kill=ctx.get("by") == "kill")

    def _route(self, reports, acct, kill=False):
        outputs = []
        for report in reports:
            if not report.firm:
                continue
            key = (report.firm, report.token)
            kind = report.type
            self.counts[kind] += 1
            if kind in ("rejected", "cancel_rejected"):
                self.rejects[report.extra.get("text") or report.reason] += 1
                target = acct
            else:
                target = self.owner.get(key, acct)
                self.risk.on_report(target, report)
            meta = self.meta.get(key)
            if target in self.streams:
                outputs.append((target, report_message(report, meta, kill=kill)))
        return outputs

    def _publish(self, durable_index):
        pending = self._pending
        outputs = []
        while pending and pending[0][0] < durable_index:
            outputs += pending.popleft()[1]
        self._emit(outputs)         # one batch per account for the whole group commit
        self.risk.flush()

    def _emit(self, outputs):
        if not outputs:
            return
        batches = {}
        for acct, msg in outputs:
            stream = self.streams[acct]
            stream.append(msg)
            batch = batches.get(acct)
            if batch is None:
                batches[acct] = [len(stream), msg]
            else:
                batch.append(msg)
        if self._recovering:
            return
        for acct, batch in batches.items():
            callback = self.subscribers.get(acct)
            if callback is not None:
                callback(batch[0], batch[1:])

    async def drain(self):
        """Wait until everything submitted so far is durable and published."""
        if self.wal.records:
            await self.wal.durable(self.wal.records - 1)
        await asyncio.sleep(0)
