"""The host side of the engine: client requests in, sequenced commands to the engine, reports out.

:class:`Exchange` is what order entry (the CSV replay now, the OUCH gateway later) talks to.
It owns what the engine does not: symbol names and locates, firms and their STP groups, order
tokens (unique per firm for the whole session), the ITCH order reference numbers, the command
sequence numbers, and the map from tokens to engine slots, kept up to date from the events.
Requests it can refuse without the engine (duplicate or unknown tokens, unknown symbols, prices
off the tick) are refused here and never reach the engine, so they never touch the feed.

Journal port
------------
Each method takes the typed ``request`` (:mod:`tickwire.core.requests`) it serves. If the
Exchange has a ``journal`` (the sequencer's :class:`~tickwire.sequencer.journal.port.JournalPort`),
every command goes to ``journal.record(request, command)`` before the engine sees it: the port
appends the pair to the write-ahead log (or, in recovery, checks the command against the logged
one). An engine that raises is reported as :class:`EngineFailure` (the command was journaled).
"""

from dataclasses import dataclass

from tickwire.core.reasons import Reason, engine_reason
from tickwire.core.reports import Report
from tickwire.protocol.link import (
    Action,
    Command,
    EventKind,
    ReplaceMode,
    Side,
    Stp,
    Tif,
    pack_name,
)

__all__ = ["Exchange", "EngineFailure", "SymbolInfo", "LiveOrder", "SymbolDefaults"]

# Enum members by value: amaranth's enum call is slow on the order path (a dict lookup finds
# the same member; anything else goes through the enum call, errors included).
_SIDES = {int(m): m for m in Side}
_TIFS = {int(m): m for m in Tif}
# The members the order path compares with, as module globals: reading an enum class's
# attribute costs ~0.2 µs (the enum metaclass), a global ~0.02.
_EXECUTE, _ACCEPT, _ADD, _REPLACE, _REJECT, _CANCEL_REJECT, _DIRECTORY, _TRADING = (
    EventKind.EXECUTE, EventKind.ACCEPT, EventKind.ADD, EventKind.REPLACE, EventKind.REJECT,
    EventKind.CANCEL_REJECT, EventKind.DIRECTORY, EventKind.TRADING)
_REMOVALS = frozenset((EventKind.REDUCE, EventKind.DELETE, EventKind.KILL))
_NEW, _REPLACE_ACTION = Action.NEW, Action.REPLACE
_BUY = Side.BUY


@dataclass(frozen=True)
class SymbolDefaults:
    """What a symbol gets when its declaration leaves a value out (or it is never declared).

    Parameters
    ----------
    tick : int
        Tick size in 1/10000 $ (100 = $0.01).
    lot : int
        Round lot in shares.
    breaker_bp : int
        Circuit breaker: a trade more than this many basis points from the reference halts the
        symbol (0 = off).
    """
    tick: int = 100
    lot: int = 100
    breaker_bp: int = 500


class EngineFailure(RuntimeError):
    """The engine raised on a command (the link is down); the command was journaled."""


@dataclass
class SymbolInfo:
    locate: int
    name: str
    tick: int
    lot: int
    reference: int      # ticks
    breaker: int        # ticks
    halted: bool = False


@dataclass(slots=True)
class LiveOrder:
    firm: str
    token: str
    order_id: int
    symbol: str
    side: Side
    qty: int            # shares still open
    price: int          # ticks; 0 for a market order
    tif: Tif
    slot: int | None = None


class Exchange:
    """Host front of one engine.

    Parameters
    ----------
    engine : object
        Has ``process(Command) -> list[Event]`` and ``params`` (a ``ModelParams``).
    defaults : SymbolDefaults
    listeners : list of callables
        Each is called with every command's list of events (the feed publisher is one).
    journal : object, optional
        ``record(request, command)``, called with every command before the engine sees it.
    """

    def __init__(self, engine, defaults=SymbolDefaults(), listeners=(), journal=None):
        self.engine = engine
        self.journal = journal
        self.defaults = defaults
        self.listeners = list(listeners)
        self.symbols = {}           # name -> SymbolInfo
        self.by_locate = {}
        self.firms = {}             # name -> STP group
        self.tokens = set()         # (firm, token) ever used
        self.orders = {}            # (firm, token) -> LiveOrder, open orders
        self.by_id = {}             # order_id -> LiveOrder
        self.seq = 0
        self.next_order_id = 1
        self.timestamp = 0
        self._declared = False
        self._pending_replace = None

    # -- requests ------------------------------------------------------------------------

    def declare(self, name, reference, timestamp, tick=None, lot=None, breaker_bp=None,
                request=None):
        """Declare a symbol; ``reference`` is a price in 1/10000 $, ``breaker_bp`` in basis
        points of it."""
        tick = tick or self.defaults.tick
        lot = lot or self.defaults.lot
        bp = self.defaults.breaker_bp if breaker_bp is None else breaker_bp
        if name in self.symbols:
            return [self._host_reject("", "", timestamp, Reason.ALREADY_DECLARED, name)]
        if reference % tick:
            return [self._host_reject("", "", timestamp, Reason.REFERENCE_OFF_TICK, name)]
        locate = len(self.symbols) + 1
        ref_ticks = reference // tick
        info = SymbolInfo(locate, name, tick, lot, ref_ticks, ref_ticks * bp // 10000)
        cmd = Command(action=Action.DECLARE, symbol=locate, price=ref_ticks, qty=lot, tick=tick,
                      name=pack_name(name), breaker=info.breaker)
        reports = self._send(cmd, timestamp, request)
        if self.by_locate.get(locate) is None and self._declared:
            self.symbols[name] = self.by_locate[locate] = info
        return reports

    def new_order(self, firm, token, symbol, side, qty, price, timestamp, tif=Tif.DAY,
                  min_qty=0, stp=Stp.CANCEL_NEWEST, request=None):
        """Enter an order; ``price`` in 1/10000 $, ``None`` for a market order."""
        if (firm, token) in self.tokens:
            return [self._host_reject(firm, token, timestamp, Reason.DUPLICATE_TOKEN, symbol)]
        info = self.symbols.get(symbol)
        if info is None:
            if price is None:
                return [self._host_reject(firm, token, timestamp, Reason.UNLISTED_SYMBOL, symbol)]
            if price % self.defaults.tick:
                return [self._host_reject(firm, token, timestamp, Reason.PRICE_OFF_TICK, symbol)]
            self.declare(symbol, price, timestamp, request=request)
            info = self.symbols.get(symbol)
            if info is None:
                return [self._host_reject(firm, token, timestamp, Reason.UNLISTED_SYMBOL, symbol)]
        if price is not None and price % info.tick:
            return [self._host_reject(firm, token, timestamp, Reason.PRICE_OFF_TICK, symbol)]
        self.tokens.add((firm, token))
        order_id = self._order_id()
        ticks = 0 if price is None else price // info.tick
        order = LiveOrder(firm, token, order_id, symbol,
                          _SIDES[side] if side in _SIDES else Side(side), qty, ticks,
                          _TIFS[tif] if tif in _TIFS else Tif(tif))
        self.orders[firm, token] = self.by_id[order_id] = order
        cmd = Command(action=_NEW, symbol=info.locate, side=side, tif=tif,
                      market=int(price is None), stp=stp, firm=self._firm(firm), price=ticks,
                      qty=qty, min_qty=min_qty, order_id=order_id)
        return self._send(cmd, timestamp, request)

    def cancel(self, firm, token, timestamp, qty=0, request=None):
        """Cancel an order down to ``qty`` shares (0: all of it)."""
        order = self.orders.get((firm, token))
        if order is None or order.slot is None:
            return [self._host_reject(firm, token, timestamp, Reason.UNKNOWN_TOKEN, None,
                                      kind="cancel_rejected")]
        cmd = Command(action=Action.CANCEL, symbol=self.symbols[order.symbol].locate,
                      order_id=order.order_id, slot=order.slot, qty=qty)
        return self._send(cmd, timestamp, request)

    def replace(self, firm, token, new_token, qty, price, timestamp, request=None):
        """Replace an order by ``new_token`` with ``qty`` shares at ``price`` (1/10000 $)."""
        order = self.orders.get((firm, token))
        if order is None or order.slot is None:
            return [self._host_reject(firm, token, timestamp, Reason.UNKNOWN_TOKEN, None,
                                      kind="cancel_rejected")]
        if (firm, new_token) in self.tokens:
            return [self._host_reject(firm, new_token, timestamp, Reason.DUPLICATE_TOKEN,
                                      order.symbol)]
        info = self.symbols[order.symbol]
        if price is None or price % info.tick:
            return [self._host_reject(firm, new_token, timestamp, Reason.PRICE_OFF_TICK,
                                      order.symbol)]
        self.tokens.add((firm, new_token))
        new_id = self._order_id()
        self._pending_replace = (firm, new_token)
        cmd = Command(action=Action.REPLACE, symbol=info.locate, order_id=order.order_id,
                      new_order_id=new_id, slot=order.slot, qty=qty, price=price // info.tick)
        return self._send(cmd, timestamp, request)

    def halt(self, symbol, timestamp, request=None):
        return self._trading(Action.HALT, symbol, timestamp, request)

    def resume(self, symbol, timestamp, request=None):
        return self._trading(Action.RESUME, symbol, timestamp, request)

    def system(self, code, timestamp, request=None):
        """Send an ITCH system event (``"O"``, ``"S"``, ``"Q"``, ``"M"``, ``"E"``, ``"C"``)."""
        return self._send(Command(action=Action.SYSTEM, code=ord(code)), timestamp, request)

    # -- internals -----------------------------------------------------------------------

    def _trading(self, action, symbol, timestamp, request):
        info = self.symbols.get(symbol)
        if info is None:
            return [self._host_reject("", "", timestamp, Reason.UNLISTED_SYMBOL, symbol)]
        return self._send(Command(action=action, symbol=info.locate), timestamp, request)

    def _firm(self, firm):
        group = self.firms.get(firm)
        if group is None:
            group = self.firms[firm] = len(self.firms) + 1
        return group

    def _order_id(self):
        order_id = self.next_order_id
        self.next_order_id += 1
        return order_id

    def _host_reject(self, firm, token, timestamp, reason, symbol, kind="rejected"):
        return Report(kind, firm, token, timestamp, symbol=symbol, reason=reason)

    def _send(self, cmd, timestamp, request):
        if cmd.action != _REPLACE_ACTION:
            self._pending_replace = None
        self.seq += 1
        cmd.seq = self.seq
        cmd.timestamp = self.timestamp = timestamp
        self._declared = False
        if self.journal is not None:
            self.journal.record(request, cmd)
        try:
            events = self.engine.process(cmd)
        except Exception as exc:
            raise EngineFailure(f"engine failed on command {cmd.seq}: {exc!r}") from exc
        for listener in self.listeners:
            listener(events)
        reports = []
        for ev in events:
            self._apply(ev, reports)
        return reports

    def _apply(self, ev, reports):
        kind = ev.kind
        if kind == _EXECUTE:
            for order_id, liquidity in ((ev.order_id, "A"), (ev.other_id, "R")):
                order = self.by_id[order_id]
                order.qty -= ev.qty
                reports.append(self._report("executed", order, ev, qty=ev.qty, match=ev.match,
                                            liquidity=liquidity, leaves=order.qty,
                                            price=ev.price * self._tick(order)))
                if not order.qty:
                    self._close(order)
        elif kind == _ACCEPT:
            order = self.by_id[ev.order_id]
            reports.append(self._report("accepted", order, ev, qty=ev.qty,
                                        price=order.price * self._tick(order)))
        elif kind == _ADD:
            order = self.by_id[ev.order_id]
            order.slot = ev.slot
        elif kind in _REMOVALS:
            order = self.by_id[ev.order_id]
            order.qty = ev.remaining
            reports.append(self._report("canceled", order, ev, qty=ev.qty, leaves=ev.remaining,
                                        reason=engine_reason(ev.reason)))
            if not order.qty:
                self._close(order)
        elif kind == _REPLACE:
            self._replaced(ev, reports)
        elif kind == _REJECT:
            self._rejected(ev, reports)
        elif kind == _CANCEL_REJECT:
            order = self.by_id.get(ev.order_id)
            if order is not None:
                reports.append(self._report("cancel_rejected", order, ev,
                                            reason=engine_reason(ev.reason)))
        elif kind == _DIRECTORY:
            self._declared = True
        elif kind == _TRADING:
            info = self.by_locate.get(ev.symbol)
            if info is not None:
                info.halted = bool(ev.halted)

    def _replaced(self, ev, reports):
        order = self.by_id.pop(ev.order_id)
        firm, new_token = self._pending_replace
        del self.orders[order.firm, order.token]
        old_token = order.token
        order.token, order.qty = new_token, ev.qty
        order.price = ev.price
        if ev.mode != ReplaceMode.KEPT:
            order.order_id = ev.other_id
        if ev.mode == ReplaceMode.CROSSED:
            order.slot = None
        self.orders[firm, new_token] = self.by_id[order.order_id] = order
        reports.append(self._report("replaced", order, ev, qty=ev.qty, leaves=ev.qty,
                                    price=ev.price * self._tick(order), new_token=new_token,
                                    previous_token=old_token))

    def _rejected(self, ev, reports):
        order = self.by_id.pop(ev.order_id, None)
        if order is not None:
            # A new order the engine refused.
            del self.orders[order.firm, order.token]
            reports.append(self._report("rejected", order, ev, reason=engine_reason(ev.reason)))
            return
        existing = self.by_id.get(ev.other_id) if self._pending_replace else None
        if existing is not None:
            # A replace the engine refused: the original order stands.
            firm, new_token = self._pending_replace
            reports.append(Report("rejected", firm, new_token, ev.timestamp, seq=ev.seq,
                                  symbol=existing.symbol, reason=engine_reason(ev.reason)))
            return
        info = self.by_locate.get(ev.symbol)
        reports.append(Report("rejected", "", "", ev.timestamp, seq=ev.seq,
                              symbol=info.name if info else None, reason=engine_reason(ev.reason)))

    def _close(self, order):
        self.orders.pop((order.firm, order.token), None)
        self.by_id.pop(order.order_id, None)

    def _tick(self, order):
        return self.symbols[order.symbol].tick

    def _report(self, kind, order, ev, **fields):
        return Report(kind, order.firm, order.token, ev.timestamp, seq=ev.seq,
                      symbol=order.symbol, side="B" if order.side == _BUY else "S",
                      order_id=order.order_id, **fields)
