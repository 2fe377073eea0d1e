"""The reference matching engine: the golden truth the gateware must equal event for event.

``ExchangeModel.process(command)`` takes one engine-link :class:`~tickwire.protocol.link.Command`
and returns the list of :class:`~tickwire.protocol.link.Event` records it causes. The output is a
pure function of the sequence of commands: no clocks, no randomness, no hashing of addresses.
The exact semantics (validation order, matching, self-trade prevention, replace, breaker, expiry,
slot allocation) are written down in sim/ENGINE.md, section "Engine semantics", and this
module follows that text step by step.
"""

import heapq

from tickwire.protocol.link import (
    NO_SLOT,
    Action,
    Event,
    EventKind,
    ModelParams,
    Reason,
    ReplaceMode,
    Side,
    Stp,
    Tif,
)

__all__ = ["ExchangeModel", "Order", "SymbolBook"]

_BUY, _SELL = Side.BUY, Side.SELL
_E = EventKind
# Plain ints on the hot paths: an enum attribute lookup costs ten times a global's.
_ACCEPT, _ADD, _EXECUTE, _DELETE = (int(k) for k in (_E.ACCEPT, _E.ADD, _E.EXECUTE, _E.DELETE))
_DAY, _GTC, _FOK = int(Tif.DAY), int(Tif.GTC), int(Tif.FOK)
_CANCEL_NEWEST, _CANCEL_BOTH = int(Stp.CANCEL_NEWEST), int(Stp.CANCEL_BOTH)
_SELF_TRADE, _USER = int(Reason.SELF_TRADE), int(Reason.USER)


class Order:
    __slots__ = ("order_id", "slot", "symbol", "side", "price", "qty", "tif", "firm", "stp")

    def __init__(self, order_id, slot, symbol, side, price, qty, tif, firm, stp):
        self.order_id = order_id
        self.slot = slot
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.tif = tif
        self.firm = firm
        self.stp = stp


class _BookSide:
    """One side of one symbol: price → FIFO of orders (a dict keeps insertion order),
    and a heap of occupied prices keyed so that the best price is on top."""
    __slots__ = ("levels", "heap", "sign")

    def __init__(self, side):
        self.levels = {}
        self.heap = []
        self.sign = -1 if side == _BUY else 1

    def best(self):
        heap, levels = self.heap, self.levels
        while heap:
            price = heap[0] * self.sign
            if price in levels:
                return price
            heapq.heappop(heap)
        return None

    def append(self, order):
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = {}
            heapq.heappush(self.heap, order.price * self.sign)
        level[order.order_id] = order

    def remove(self, order):
        level = self.levels[order.price]
        del level[order.order_id]
        if not level:
            del self.levels[order.price]

    def depth(self, n=None):
        """[(price, total qty, order count)] best first."""
        prices = sorted(self.levels, key=lambda p: p * self.sign)[:n]
        return [(p, sum(o.qty for o in self.levels[p].values()), len(self.levels[p]))
                for p in prices]


class SymbolBook:
    """Per-symbol state: declaration, band, halt, and the two book sides."""
    __slots__ = ("locate", "name", "tick", "lot", "reference", "band_low", "band_high",
                 "breaker", "halted", "sides")

    def __init__(self, locate, name, tick, lot, reference, band_ticks, breaker):
        self.locate = locate
        self.name = name
        self.tick = tick
        self.lot = lot
        self.reference = reference
        self.band_low = max(1, reference - band_ticks // 2)
        self.band_high = self.band_low + band_ticks - 1
        self.breaker = breaker
        self.halted = False
        self.sides = (_BookSide(_BUY), _BookSide(_SELL))

    def best_bid(self):
        return self.sides[_BUY].best()

    def best_ask(self):
        return self.sides[_SELL].best()


class ExchangeModel:
    """Multi-symbol price-time priority matching engine.

    Parameters
    ----------
    params : ModelParams
    """

    def __init__(self, params=ModelParams()):
        self.params = params
        self.max_levels = params.max_levels or params.band_ticks
        self._max_qty = params.max_qty
        self.symbols = [None] * (params.max_symbols + 1)
        self.slots = [None] * params.max_orders
        # Free slots as a stack: the lowest slot is handed out first, a freed slot is reused next.
        self.free = list(range(params.max_orders - 1, -1, -1))
        self.match_number = 0
        self._dispatch = {
            Action.NEW: self._new, Action.CANCEL: self._cancel, Action.REPLACE: self._replace,
            Action.DECLARE: self._declare, Action.HALT: self._halt, Action.RESUME: self._resume,
            Action.SYSTEM: self._system,
        }

    # -- public ---------------------------------------------------------------------------

    def process(self, cmd):
        """Apply one command; return its events (at least one, the last flagged ``last``)."""
        self._cmd = cmd
        out = self._out = []
        handler = self._dispatch.get(cmd.action)
        if handler is None:
            self._emit(_E.REJECT, reason=Reason.NONE, order_id=cmd.order_id)
        else:
            handler(cmd)
        out[-1].last = 1
        return out

    def live_orders(self):
        return sum(1 for o in self.slots if o is not None)

    def order(self, slot):
        return self.slots[slot]

    # -- events ---------------------------------------------------------------------------

    def _emit(self, kind, symbol=0, side=0, order_id=0, other_id=0, slot=0, qty=0, remaining=0,
              price=0, reason=0, match=0, odd_lot=0, halted=0, mode=0, name=0, tick=0, code=0):
        cmd = self._cmd
        # Positional, in EVENT_FIELDS order: seq, timestamp, kind, side, last, odd_lot, halted,
        # mode, symbol, order_id, other_id, slot, qty, remaining, price, match, reason, name, tick,
        # code.
        self._out.append(Event(cmd.seq, cmd.timestamp, kind, side, 0, odd_lot, halted, mode,
                               symbol, order_id, other_id, slot, qty, remaining, price, match,
                               reason, name, tick, code))

    def _reject(self, cmd, reason, order=None):
        """Refuse a command. A refused replace names the replacement and, in ``other_id``,
        the order that stands, and carries that order's symbol."""
        if cmd.action == Action.REPLACE:
            self._emit(_E.REJECT, symbol=order.symbol, reason=reason, order_id=cmd.new_order_id,
                       other_id=cmd.order_id, slot=cmd.slot)
        else:
            self._emit(_E.REJECT, symbol=cmd.symbol, side=cmd.side, reason=reason,
                       order_id=cmd.order_id)

    # -- commands -------------------------------------------------------------------------

    def _declare(self, cmd):
        p = self.params
        if (not 1 <= cmd.symbol <= p.max_symbols or self.symbols[cmd.symbol] is not None
                or cmd.tick == 0 or cmd.qty == 0 or cmd.price == 0):
            return self._reject(cmd, Reason.BAD_DECLARATION)
        book = self.symbols[cmd.symbol] = SymbolBook(
            cmd.symbol, cmd.name, cmd.tick, cmd.qty, cmd.price, p.band_ticks, cmd.breaker)
        self._emit(_E.DIRECTORY, symbol=cmd.symbol, name=cmd.name, qty=cmd.qty, tick=cmd.tick,
                   price=book.reference)
        self._emit(_E.TRADING, symbol=cmd.symbol, reason=Reason.NONE)

    def _halt(self, cmd):
        self._set_halt(cmd, True)

    def _resume(self, cmd):
        self._set_halt(cmd, False)

    def _set_halt(self, cmd, halted):
        book = self._book(cmd.symbol)
        if book is None:
            return self._reject(cmd, Reason.UNKNOWN_SYMBOL)
        book.halted = halted
        self._emit(_E.TRADING, symbol=cmd.symbol, halted=int(halted), reason=Reason.OPERATOR)

    def _system(self, cmd):
        self._emit(_E.SYSTEM, code=cmd.code)
        if cmd.code == ord("M"):
            # End of market hours: DAY orders expire, in slot order.
            for order in list(self.slots):
                if order is not None and order.tif == Tif.DAY:
                    self._delete(order, Reason.EXPIRED)

    def _book(self, locate):
        return self.symbols[locate] if 0 < locate < len(self.symbols) else None

    def _new(self, cmd):
        locate = cmd.symbol
        book = self.symbols[locate] if 0 < locate < len(self.symbols) else None
        if book is None:
            return self._reject(cmd, Reason.UNKNOWN_SYMBOL)
        if book.halted:
            return self._reject(cmd, Reason.HALTED)
        qty = cmd.qty
        if not 0 < qty <= self._max_qty:
            return self._reject(cmd, Reason.BAD_QTY)
        if cmd.min_qty > qty:
            return self._reject(cmd, Reason.BAD_MIN_QTY)
        if cmd.stp > _CANCEL_BOTH:
            return self._reject(cmd, Reason.BAD_STP)
        side = cmd.side
        if cmd.market:
            limit = book.band_high if side == _BUY else book.band_low
            rests = False
        else:
            limit = cmd.price
            if not book.band_low <= limit <= book.band_high:
                return self._reject(cmd, Reason.OUT_OF_BAND)
            rests = cmd.tif <= _GTC
            if rests and not (self.free and self._level_room(book, side, limit)):
                return self._reject(cmd, Reason.BOOK_FULL)
        self._out.append(Event(cmd.seq, cmd.timestamp, _ACCEPT, side, 0, 0, 0, 0, locate,
                               cmd.order_id, 0, 0, qty, qty, 0 if cmd.market else cmd.price))
        if cmd.tif == _FOK or cmd.min_qty:
            need = qty if cmd.tif == _FOK else cmd.min_qty
            if self._executable(book, side, limit, cmd.firm, cmd.stp, need) < need:
                return self._kill(cmd.order_id, locate, side, qty,
                                  Reason.FOK if cmd.tif == _FOK else Reason.MIN_QTY)
        best = book.sides[side ^ 1].best()
        if best is not None and (best <= limit if side == _BUY else best >= limit):
            leaves, stop = self._match(book, side, limit, qty, cmd.order_id, cmd.firm, cmd.stp)
            if not leaves:
                return
        else:
            leaves, stop = qty, None
        if stop is None and rests:
            self._rest(book, Order(cmd.order_id, self.free.pop(), locate, side, limit, leaves,
                                   cmd.tif, cmd.firm, cmd.stp))
        else:
            self._kill(cmd.order_id, locate, side, leaves, stop or Reason.IOC)

    def _level_room(self, book, side, price):
        levels = book.sides[side].levels
        return price in levels or len(levels) < self.max_levels

    def _cancel(self, cmd):
        order = self._find(cmd)
        if order is None:
            return
        if cmd.qty == 0:
            self._delete(order, _USER)
        elif cmd.qty < order.qty:
            decrement = order.qty - cmd.qty
            order.qty = cmd.qty
            self._emit(_E.REDUCE, symbol=order.symbol, side=order.side, order_id=order.order_id,
                       slot=order.slot, qty=decrement, remaining=order.qty, price=order.price,
                       reason=Reason.USER)
        else:
            self._emit(_E.CANCEL_REJECT, symbol=order.symbol, side=order.side,
                       order_id=cmd.order_id, slot=cmd.slot, reason=Reason.NOTHING_TO_CANCEL)

    def _find(self, cmd):
        """The resting order a cancel/replace names by slot, reference number and symbol, or
        None."""
        order = self.slots[cmd.slot] if cmd.slot < len(self.slots) else None
        if order is None or order.order_id != cmd.order_id or order.symbol != cmd.symbol:
            self._emit(_E.CANCEL_REJECT, symbol=cmd.symbol, order_id=cmd.order_id,
                       slot=cmd.slot, reason=Reason.NOT_FOUND)
            return None
        return order

    def _replace(self, cmd):
        order = self._find(cmd)
        if order is None:
            return
        book = self.symbols[order.symbol]
        if book.halted:
            return self._reject(cmd, Reason.HALTED, order)
        if not 0 < cmd.qty <= self.params.max_qty:
            return self._reject(cmd, Reason.BAD_QTY, order)
        price = cmd.price
        if not book.band_low <= price <= book.band_high:
            return self._reject(cmd, Reason.OUT_OF_BAND, order)
        side = order.side
        if (price != order.price and not self._level_room(book, side, price)
                and len(book.sides[side].levels[order.price]) > 1):
            # Moving would open a level while the side is full (the level it leaves stays open).
            return self._reject(cmd, Reason.BOOK_FULL, order)
        fields = dict(symbol=order.symbol, side=side, order_id=order.order_id,
                      other_id=cmd.new_order_id, slot=order.slot, qty=cmd.qty,
                      remaining=order.qty, price=price)
        if price == order.price and cmd.qty <= order.qty:
            order.qty = cmd.qty
            self._emit(_E.REPLACE, mode=ReplaceMode.KEPT, **fields)
            return
        book.sides[side].remove(order)
        contra = book.sides[side ^ 1].best()
        crosses = contra is not None and (price >= contra if side == _BUY else price <= contra)
        order.order_id, order.price, order.qty = cmd.new_order_id, price, cmd.qty
        if not crosses:
            book.sides[side].append(order)
            self._emit(_E.REPLACE, mode=ReplaceMode.MOVED, **fields)
            return
        self._emit(_E.REPLACE, mode=ReplaceMode.CROSSED, **fields)
        self.slots[order.slot] = None
        leaves, stop = self._match(book, side, price, cmd.qty, order.order_id, order.firm,
                                   order.stp)
        if not leaves:
            self.free.append(order.slot)
        elif stop is None:
            order.qty = leaves
            self._rest(book, order)
        else:
            self.free.append(order.slot)
            self._kill(order.order_id, order.symbol, side, leaves, stop)

    # -- book mechanics -------------------------------------------------------------------

    def _rest(self, book, order):
        self.slots[order.slot] = order
        book.sides[order.side].append(order)
        cmd, qty = self._cmd, order.qty
        self._out.append(Event(cmd.seq, cmd.timestamp, _ADD, order.side, 0, int(qty < book.lot),
                               0, 0, order.symbol, order.order_id, 0, order.slot, qty, qty,
                               order.price))

    def _delete(self, order, reason):
        self.symbols[order.symbol].sides[order.side].remove(order)
        self.slots[order.slot] = None
        self.free.append(order.slot)
        cmd = self._cmd
        self._out.append(Event(cmd.seq, cmd.timestamp, _DELETE, order.side, 0, 0, 0, 0,
                               order.symbol, order.order_id, 0, order.slot, order.qty, 0,
                               order.price, 0, reason))

    def _kill(self, order_id, symbol, side, qty, reason):
        self._emit(_E.KILL, symbol=symbol, side=side, order_id=order_id, qty=qty,
                   remaining=0, reason=reason, slot=NO_SLOT)

    def _contra_levels(self, book, side, limit):
        """Contra prices that cross ``limit``, best first."""
        contra = book.sides[side ^ 1]
        if side == _BUY:
            prices = sorted(p for p in contra.levels if p <= limit)
        else:
            prices = sorted((p for p in contra.levels if p >= limit), reverse=True)
        return contra, prices

    def _breaks(self, book, price):
        return book.breaker and abs(price - book.reference) > book.breaker

    def _executable(self, book, side, limit, firm, stp, need):
        """Shares the match loop would fill, counted up to ``need`` (FOK / min-qty check)."""
        contra, prices = self._contra_levels(book, side, limit)
        total = 0
        for price in prices:
            if self._breaks(book, price):
                return total
            for resting in contra.levels[price].values():
                if firm and resting.firm == firm:
                    if stp == Stp.CANCEL_OLDEST:
                        continue
                    return total
                total += resting.qty
                if total >= need:
                    return total
        return total

    def _match(self, book, side, limit, qty, order_id, firm, stp):
        """Fill an incoming order against the contra side. Returns (leaves, stop reason)."""
        contra = book.sides[side ^ 1]
        levels = contra.levels
        while qty:
            price = contra.best()
            if price is None or (price > limit if side == _BUY else price < limit):
                return qty, None
            if self._breaks(book, price):
                book.halted = True
                self._emit(_E.TRADING, symbol=book.locate, halted=1, reason=Reason.BREAKER)
                return qty, Reason.BREAKER
            level = levels[price]
            cmd, out = self._cmd, self._out
            for resting in list(level.values()):
                if firm and resting.firm == firm:
                    if stp == _CANCEL_NEWEST:
                        return qty, Reason.SELF_TRADE
                    self._delete(resting, _SELF_TRADE)
                    if stp == _CANCEL_BOTH:
                        return qty, Reason.SELF_TRADE
                    continue
                fill = resting.qty if resting.qty < qty else qty
                resting.qty -= fill
                qty -= fill
                self.match_number += 1
                out.append(Event(cmd.seq, cmd.timestamp, _EXECUTE, resting.side, 0, 0, 0, 0,
                                 book.locate, resting.order_id, order_id, resting.slot, fill,
                                 resting.qty, price, self.match_number))
                if not resting.qty:
                    del level[resting.order_id]
                    self.slots[resting.slot] = None
                    self.free.append(resting.slot)
                if not qty:
                    break
            if not level:
                levels.pop(price, None)
        return 0, None
