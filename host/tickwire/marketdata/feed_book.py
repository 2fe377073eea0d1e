"""An order-by-order (L3) book built from ITCH 5.0 messages, with its L1 and L2 views.

It reads the public feed only, as any subscriber would, so it also checks the feed: an
execution or cancel of an order it never saw raises. Odd lots (orders below the symbol's
round lot, from its ``R`` message) stay in the L3 book but are left out of L1 and L2.
"""

from collections import defaultdict
from dataclasses import dataclass

from tickwire.core.money import format_price
from tickwire.protocol import itch

__all__ = ["FeedBook", "BookOrder"]

_DECODERS = {code: spec.decode for code, spec in itch.SPECS.items()}


@dataclass
class BookOrder:
    locate: int
    side: str
    shares: int
    price: int


class FeedBook:
    """Applies ITCH messages; ``orders`` maps order reference number → BookOrder."""

    def __init__(self):
        self.orders = {}
        self.stocks = {}                    # locate -> stock
        self.lots = {}                      # locate -> round lot
        self.halted = {}                    # locate -> bool
        self.last_trade = {}                # locate -> (price, shares)
        self.volume = defaultdict(int)
        self.messages = 0

    def apply_bytes(self, raw):
        """Apply one ITCH message's bytes (decoded by its type's own decoder: this runs for
        every message of the feed; an unknown type gets ``itch.decode``'s error)."""
        decode = _DECODERS.get(raw[:1])
        self.apply(itch.decode(raw) if decode is None else decode(raw))

    def apply(self, m):
        self.messages += 1
        t = type(m).__name__
        if t == "AddOrder" or t == "AddOrderMpid":
            self.orders[m.order_reference_number] = BookOrder(
                m.stock_locate, m.buy_sell_indicator, m.shares, m.price)
        elif t == "OrderExecuted":
            order = self._order(m.order_reference_number)
            self._trade(order, order.price, m.executed_shares)
            self._take(m.order_reference_number, order, m.executed_shares)
        elif t == "OrderExecutedWithPrice":
            order = self._order(m.order_reference_number)
            self._trade(order, m.execution_price, m.executed_shares)
            self._take(m.order_reference_number, order, m.executed_shares)
        elif t == "OrderCancel":
            self._take(m.order_reference_number, self._order(m.order_reference_number),
                       m.canceled_shares)
        elif t == "OrderDelete":
            self._order(m.order_reference_number)
            del self.orders[m.order_reference_number]
        elif t == "OrderReplace":
            old = self._order(m.original_order_reference_number)
            del self.orders[m.original_order_reference_number]
            self.orders[m.new_order_reference_number] = BookOrder(
                old.locate, old.side, m.shares, m.price)
        elif t == "StockDirectory":
            self.stocks[m.stock_locate] = m.stock
            self.lots[m.stock_locate] = m.round_lot_size
        elif t == "StockTradingAction":
            self.halted[m.stock_locate] = m.trading_state != "T"

    def _order(self, ref):
        order = self.orders.get(ref)
        if order is None:
            raise ValueError(f"feed names order {ref}, which is not on the book")
        return order

    def _take(self, ref, order, shares):
        if shares > order.shares:
            raise ValueError(f"feed takes {shares} shares from order {ref} of {order.shares}")
        order.shares -= shares
        if not order.shares:
            del self.orders[ref]

    def _trade(self, order, price, shares):
        self.last_trade[order.locate] = (price, shares)
        self.volume[order.locate] += shares

    def levels(self, locate, side, depth=None):
        """L2: [(price, shares, orders)] best first, round lots only."""
        lot = self.lots.get(locate, 1)
        agg = defaultdict(lambda: [0, 0])
        for o in self.orders.values():
            if o.locate == locate and o.side == side and o.shares >= lot:
                level = agg[o.price]
                level[0] += o.shares
                level[1] += 1
        prices = sorted(agg, reverse=side == "B")[:depth]
        return [(p, *agg[p]) for p in prices]

    def top(self, locate):
        """L1: {'bid': (price, shares) or None, 'ask': ..., 'last': (price, shares) or None}."""
        bid = self.levels(locate, "B", 1)
        ask = self.levels(locate, "S", 1)
        return {"bid": bid[0][:2] if bid else None, "ask": ask[0][:2] if ask else None,
                "last": self.last_trade.get(locate)}

    def top_of_book(self, symbols):
        """The close's summary per symbol: ``{name: {"bid": {"price", "shares"} or None, "ask",
        "last": price or None, "volume", "halted"}}``, prices as decimal strings in dollars.

        ``symbols`` maps names to objects with ``locate`` and ``halted`` (the exchange's
        symbol table)."""
        out = {}
        for name, info in symbols.items():
            top = self.top(info.locate)
            out[name] = {side: None if top[side] is None else
                         {"price": format_price(top[side][0]), "shares": top[side][1]}
                         for side in ("bid", "ask")}
            out[name]["last"] = None if top["last"] is None else format_price(top["last"][0])
            out[name]["volume"] = self.volume[info.locate]
            out[name]["halted"] = info.halted
        return out

    def state(self):
        """What two copies of the book must agree on: every order (reference → locate, side,
        shares, price), each price's queue (references in time priority) and the halted
        locates. Last trade and volume are left out: a late joiner learns them as they come.
        """
        orders, queues = {}, {}
        for ref, o in self.orders.items():
            orders[ref] = (o.locate, o.side, o.shares, o.price)
            queues.setdefault((o.locate, o.side, o.price), []).append(ref)
        return orders, queues, {locate for locate, halted in self.halted.items() if halted}

    def crossed(self, locate):
        """True if the best bid (any size) is at or above the best ask."""
        bids = [o.price for o in self.orders.values() if o.locate == locate and o.side == "B"]
        asks = [o.price for o in self.orders.values() if o.locate == locate and o.side == "S"]
        return bool(bids and asks and max(bids) >= min(asks))
