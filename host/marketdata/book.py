"""A subscriber's book: a :class:`~tickwire.book.FeedBook` fed from raw ITCH bytes, fast.

The subscriber's hot path decodes only the fields the book needs, with ``struct.Struct`` s
compiled from the offsets of :data:`tickwire.protocol.itch.SPECS` (one definition of the
format), dispatched on the type byte. It writes into the wrapped FeedBook's own state
(``orders``, ``last_trade``, ``volume``, ...), so every FeedBook view still works, and it keeps
per-side price levels of round lots up to date as it goes, so that L1 and L2 cost a lookup
instead of a scan of every order. Rare messages (``R``, ``H``, ``S``, ...) go through
:meth:`FeedBook.apply`; the last ``S``, and each symbol's last ``R`` and ``H``, are kept raw
for snapshots.
"""

import struct

from ..book import BookOrder, FeedBook
from ..protocol import itch
from ..protocol.fields import Kind

__all__ = ["SubscriberBook", "picker"]

_FORMAT = {Kind.U16: "H", Kind.U32: "I", Kind.P4: "I", Kind.U64: "Q", Kind.P8: "Q",
           Kind.CHAR: "B"}


def picker(code, names):
    """A ``struct.Struct`` unpacking only ``names`` of ITCH message ``code``, in that order.

    Fields are read at their :attr:`MessageSpec.offsets`; everything else is skipped as pad
    bytes. CHAR fields come out as ints (their byte value).
    """
    spec = itch.SPECS[code]
    kinds = {f.name: f.kind for f in spec.fields}
    fmt, position = [">"], 0
    for name in names:
        offset = spec.offsets[name]
        if offset < position:
            raise ValueError(f"{spec.name}: field {name} is out of order")
        fmt.append(f"{offset - position}x" if offset > position else "")
        fmt.append(_FORMAT[kinds[name]])
        position = offset + struct.calcsize(">" + _FORMAT[kinds[name]])
    return struct.Struct("".join(fmt))


_ADD = picker(b"A", ["stock_locate", "order_reference_number", "buy_sell_indicator", "shares",
                     "price"])
_EXECUTED = picker(b"E", ["stock_locate", "order_reference_number", "executed_shares"])
_EXECUTED_PRICE = picker(b"C", ["stock_locate", "order_reference_number", "executed_shares",
                                "execution_price"])
_CANCEL = picker(b"X", ["stock_locate", "order_reference_number", "canceled_shares"])
_DELETE = picker(b"D", ["stock_locate", "order_reference_number"])
_REPLACE = picker(b"U", ["stock_locate", "original_order_reference_number",
                         "new_order_reference_number", "shares", "price"])
_LOCATE = picker(b"S", ["stock_locate"])
_TRADING = picker(b"H", ["stock_locate", "trading_state"])


class SubscriberBook:
    """L3 book per symbol with incrementally kept L1/L2 (odd lots left out).

    Parameters
    ----------
    book : FeedBook, optional
        The book to feed (a new one by default).

    Members
    -------
    book : FeedBook
        The order-by-order state; ``book.orders`` keeps each price level's priority order.
    directory, trading : dict of int to bytes
        Last raw ``R`` and ``H`` message per locate.
    system : bytes or None
        Last raw ``S`` message.
    handlers : list of callable
        By type byte value: the function applying a message of that type (what
        :meth:`apply` calls; a hot loop may index it directly).
    """

    def __init__(self, book=None):
        self.book = FeedBook() if book is None else book
        self.directory = {}
        self.trading = {}
        self.system = None
        self._orders = self.book.orders
        self._lots = self.book.lots
        self._levels = {}               # locate * 2 + (side == "B") -> {price: [shares, n]}
        table = [self._other] * 256
        for code, handler in ((b"A", self._add), (b"F", self._add), (b"E", self._executed),
                              (b"C", self._executed_price), (b"X", self._cancel),
                              (b"D", self._delete), (b"U", self._replace),
                              (b"H", self._trading)):
            table[code[0]] = handler
        self.handlers = table

    # -- feeding -------------------------------------------------------------------------

    def apply(self, msg):
        """Apply one raw ITCH message; return the locate it concerns (0 for system events).

        Raises
        ------
        ValueError
            If the message names an order that is not on the book, or takes more shares
            than it has.
        """
        return self.handlers[msg[0]](msg)

    def _other(self, msg):
        code = msg[0]
        record = itch.decode(bytes(msg))
        self.book.apply(record)
        if code == 0x52:                        # R
            self.directory[record.stock_locate] = bytes(msg)
        elif code == 0x53:                      # S
            self.system = bytes(msg)
        return _LOCATE.unpack_from(msg)[0]

    def _trading(self, msg):
        locate, state = _TRADING.unpack_from(msg)
        self.book.messages += 1
        self.book.halted[locate] = state != 84          # "T"
        self.trading[locate] = bytes(msg)
        return locate

    def _level_add(self, key, price, shares):
        levels = self._levels.get(key)
        if levels is None:
            levels = self._levels[key] = {}
        level = levels.get(price)
        if level is None:
            levels[price] = [shares, 1]
        else:
            level[0] += shares
            level[1] += 1

    def _take(self, ref, shares):
        order = self._orders.get(ref)
        if order is None:
            raise ValueError(f"feed names order {ref}, which is not on the book")
        old = order.shares
        if shares > old:
            raise ValueError(f"feed takes {shares} shares from order {ref} of {old}")
        new = old - shares
        locate = order.locate
        lot = self._lots.get(locate, 1)
        if old >= lot:
            levels = self._levels[locate * 2 + (order.side == "B")]
            level = levels[order.price]
            if new >= lot:
                level[0] -= shares
            else:
                level[0] -= old
                level[1] -= 1
                if not level[1]:
                    del levels[order.price]
        order.shares = new
        if not new:
            del self._orders[ref]
        return order

    def _add(self, msg):
        locate, ref, side, shares, price = _ADD.unpack_from(msg)
        self.book.messages += 1
        buy = side == 66                                 # "B"
        self._orders[ref] = BookOrder(locate, "B" if buy else "S", shares, price)
        if shares >= self._lots.get(locate, 1):
            levels = self._levels.get(locate * 2 + buy)
            level = None if levels is None else levels.get(price)
            if level is None:
                self._level_add(locate * 2 + buy, price, shares)
            else:
                level[0] += shares
                level[1] += 1
        return locate

    def _executed(self, msg):
        locate, ref, shares = _EXECUTED.unpack_from(msg)
        book = self.book
        book.messages += 1
        order = self._orders.get(ref)
        if order is None or shares > order.shares:
            self._take(ref, shares)                     # raises the right error
        old = order.shares
        new = old - shares
        lot = self._lots.get(order.locate, 1)
        if old >= lot:
            levels = self._levels[order.locate * 2 + (order.side == "B")]
            level = levels[order.price]
            if new >= lot:
                level[0] -= shares
            else:
                level[0] -= old
                level[1] -= 1
                if not level[1]:
                    del levels[order.price]
        if new:
            order.shares = new
        else:
            del self._orders[ref]
        book.last_trade[order.locate] = (order.price, shares)
        book.volume[order.locate] += shares
        return locate

    def _executed_price(self, msg):
        locate, ref, shares, price = _EXECUTED_PRICE.unpack_from(msg)
        book = self.book
        book.messages += 1
        order = self._take(ref, shares)
        book.last_trade[order.locate] = (price, shares)
        book.volume[order.locate] += shares
        return locate

    def _cancel(self, msg):
        locate, ref, shares = _CANCEL.unpack_from(msg)
        self.book.messages += 1
        self._take(ref, shares)
        return locate

    def _delete(self, msg):
        locate, ref = _DELETE.unpack_from(msg)
        self.book.messages += 1
        order = self._orders.pop(ref, None)
        if order is None:
            raise ValueError(f"feed names order {ref}, which is not on the book")
        if order.shares >= self._lots.get(order.locate, 1):
            levels = self._levels[order.locate * 2 + (order.side == "B")]
            level = levels[order.price]
            level[0] -= order.shares
            level[1] -= 1
            if not level[1]:
                del levels[order.price]
        order.shares = 0
        return locate

    def _replace(self, msg):
        locate, old_ref, new_ref, shares, price = _REPLACE.unpack_from(msg)
        self.book.messages += 1
        old = self._orders.get(old_ref)
        if old is None:
            raise ValueError(f"feed names order {old_ref}, which is not on the book")
        self._take(old_ref, old.shares)
        self._orders[new_ref] = BookOrder(old.locate, old.side, shares, price)
        if shares >= self._lots.get(old.locate, 1):
            self._level_add(old.locate * 2 + (old.side == "B"), price, shares)
        return locate

    # -- views ---------------------------------------------------------------------------

    def locate_of(self, stock):
        """Locate of a stock symbol, or ``None``."""
        for locate, name in self.book.stocks.items():
            if name == stock:
                return locate
        return None

    def levels(self, locate, side, depth=None):
        """L2: ``[(price, shares, orders)]`` best first, round lots only (as FeedBook.levels)."""
        levels = self._levels.get(locate * 2 + (side == "B"))
        if not levels:
            return []
        prices = sorted(levels, reverse=side == "B")[:depth]
        return [(p, *levels[p]) for p in prices]

    def best(self, locate, side):
        """``(price, shares)`` of the best round-lot level of a side, or ``None``."""
        levels = self._levels.get(locate * 2 + (side == "B"))
        if not levels:
            return None
        price = max(levels) if side == "B" else min(levels)
        return price, levels[price][0]

    def top(self, locate):
        """L1: ``{'bid': (price, shares) or None, 'ask': ..., 'last': (price, shares) or None}``."""
        return {"bid": self.best(locate, "B"), "ask": self.best(locate, "S"),
                "last": self.book.last_trade.get(locate)}

    def l3(self, locate=None):
        """``{order reference: (locate, side, shares, price)}``, for comparisons."""
        return {ref: (o.locate, o.side, o.shares, o.price) for ref, o in self.book.orders.items()
                if locate is None or o.locate == locate}
