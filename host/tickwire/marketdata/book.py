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

from tickwire.marketdata.feed_book import BookOrder, FeedBook
from tickwire.protocol import itch
from tickwire.protocol.fields import Kind

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
_BLOCK = struct.Struct(">H").unpack_from


def _message(buf, at, block=_BLOCK):
    """The bytes of the message at ``at``: all of ``buf`` from there if ``at`` is 0 (a lone
    message), else as long as the MoldUDP64 message block header before it says."""
    if not at:
        return bytes(buf)
    return bytes(buf[at:at + block(buf, at - 2)[0]])


class _Levels(dict):
    """``locate * 2 + (side == "B")`` -> ``{price: level}``, made on first use."""

    __slots__ = ()

    def __missing__(self, key):
        levels = self[key] = {}
        return levels


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
        By type byte value: ``handler(buffer, offset)`` applies the message that starts at
        ``offset`` of ``buffer`` and returns its locate. At offset 0 the buffer is the
        message (what :meth:`apply` passes); at any other offset the buffer is a MoldUDP64
        packet and ``offset`` follows a message block's length field. A hot loop indexes
        it directly and skips slicing the message out.
    """

    def __init__(self, book=None):
        self.book = FeedBook() if book is None else book
        self.directory = {}
        self.trading = {}
        self.system = None
        # locate * 2 + (side == "B") -> {price: [shares, orders, that dict, price, round lot]};
        # each round-lot order on the book has its level list as ``_level`` (else None)
        self._levels = _Levels()
        self.handlers = self._handlers()

    # -- feeding -------------------------------------------------------------------------

    def apply(self, msg):
        """Apply one raw ITCH message; return the locate it concerns (0 for system events).

        Raises
        ------
        ValueError
            If the message names an order that is not on the book, or takes more shares
            than it has.
        """
        return self.handlers[msg[0]](msg, 0)

    def _handlers(self):
        """The dispatch table: closures over the book's state, for the hot path.

        Everything they touch is a local of this frame (no ``self`` lookups), orders are
        made without a call to ``BookOrder.__init__`` (same class, same fields), and the
        fields come from one precompiled ``unpack_from`` at the message's offset.
        """
        book = self.book
        orders, lots, last_trade, volume = book.orders, book.lots, book.last_trade, book.volume
        all_levels, directory, trading = self._levels, self.directory, self.trading
        get_order, pop_order, get_lot = orders.get, orders.pop, lots.get
        make, Order = object.__new__, BookOrder
        unpack_add, unpack_executed = _ADD.unpack_from, _EXECUTED.unpack_from
        unpack_executed_price, unpack_cancel = _EXECUTED_PRICE.unpack_from, _CANCEL.unpack_from
        unpack_delete, unpack_replace = _DELETE.unpack_from, _REPLACE.unpack_from
        unpack_trading, unpack_locate, block = _TRADING.unpack_from, _LOCATE.unpack_from, _BLOCK

        def missing(ref):
            return ValueError(f"feed names order {ref}, which is not on the book")

        def place(order, locate, key, shares, price):
            """Count a new order in its level if it is a round lot (``order._level``)."""
            lot = get_lot(locate, 1)
            if shares >= lot:
                levels = all_levels[key]
                level = levels.get(price)
                if level is None:
                    order._level = levels[price] = [shares, 1, levels, price, lot]
                else:
                    level[0] += shares
                    level[1] += 1
                    order._level = level
            else:
                order._level = None

        def take(ref, shares):
            """Take ``shares`` off order ``ref`` (and its level); the order, or raise."""
            order = get_order(ref)
            if order is None:
                raise missing(ref)
            old = order.shares
            if shares > old:
                raise ValueError(f"feed takes {shares} shares from order {ref} of {old}")
            new = old - shares
            level = order._level
            if level is not None:
                if new >= level[4]:
                    level[0] -= shares
                else:
                    order._level = None
                    level[0] -= old
                    level[1] -= 1
                    if not level[1]:
                        del level[2][level[3]]
            if new:
                order.shares = new
            else:
                order.shares = 0
                del orders[ref]
            return order

        def add(buf, at):
            locate, ref, side, shares, price = unpack_add(buf, at)
            book.messages += 1
            order = make(Order)
            order.locate = locate
            order.side = "B" if side == 66 else "S"
            order.shares = shares
            order.price = price
            orders[ref] = order
            # place(), written out: adds are the hot path of the subscriber benchmark.
            lot = get_lot(locate, 1)
            if shares >= lot:
                levels = all_levels[locate * 2 + (side == 66)]
                level = levels.get(price)
                if level is None:
                    order._level = levels[price] = [shares, 1, levels, price, lot]
                else:
                    level[0] += shares
                    level[1] += 1
                    order._level = level
            else:
                order._level = None
            return locate

        def executed(buf, at):
            locate, ref, shares = unpack_executed(buf, at)
            book.messages += 1
            order = take(ref, shares)
            where = order.locate
            last_trade[where] = (order.price, shares)
            volume[where] += shares
            return locate

        def executed_price(buf, at):
            locate, ref, shares, price = unpack_executed_price(buf, at)
            book.messages += 1
            where = take(ref, shares).locate
            last_trade[where] = (price, shares)
            volume[where] += shares
            return locate

        def cancel(buf, at):
            locate, ref, shares = unpack_cancel(buf, at)
            book.messages += 1
            take(ref, shares)
            return locate

        def remove(ref):
            """Take order ``ref`` off the book (and its level); the order, or raise."""
            order = pop_order(ref, None)
            if order is None:
                raise missing(ref)
            level = order._level
            if level is not None:
                order._level = None
                level[0] -= order.shares
                level[1] -= 1
                if not level[1]:
                    del level[2][level[3]]
            order.shares = 0
            return order

        def delete(buf, at):
            locate, ref = unpack_delete(buf, at)
            book.messages += 1
            remove(ref)
            return locate

        def replace(buf, at):
            locate, old_ref, new_ref, shares, price = unpack_replace(buf, at)
            book.messages += 1
            old = remove(old_ref)
            order = make(Order)
            order.locate = where = old.locate
            order.side = side = old.side
            order.shares = shares
            order.price = price
            orders[new_ref] = order
            place(order, where, where * 2 + (side == "B"), shares, price)
            return locate

        def trading_action(buf, at):
            locate, state = unpack_trading(buf, at)
            book.messages += 1
            book.halted[locate] = state != 84           # "T"
            trading[locate] = _message(buf, at, block)
            return locate

        def other(buf, at):
            msg = _message(buf, at, block)
            record = itch.decode(msg)
            book.apply(record)
            code = msg[0]
            if code == 0x52:                            # R
                directory[record.stock_locate] = msg
            elif code == 0x53:                          # S
                self.system = msg
            return unpack_locate(msg)[0]

        table = [other] * 256
        for code, handler in ((b"A", add), (b"F", add), (b"E", executed),
                              (b"C", executed_price), (b"X", cancel), (b"D", delete),
                              (b"U", replace), (b"H", trading_action)):
            table[code[0]] = handler
        return table

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
        return [(p, levels[p][0], levels[p][1]) for p in prices]

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
