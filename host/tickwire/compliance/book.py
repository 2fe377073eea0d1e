"""The venue's book rebuilt from its execution reports: open orders and the touch per symbol.

Reports are the dicts of ``tickwire replay --reports`` in the venue's order; an ``accepted``
report comes before the order's own executions, so :meth:`ReportBook.best` read before
:meth:`ReportBook.add` is the quote the order arrived to.
"""

from collections import defaultdict
from dataclasses import dataclass

__all__ = ["ReportBook", "BookOrder"]


@dataclass
class BookOrder:
    firm: str
    token: str
    symbol: str
    side: str
    qty: int
    price: int
    time: int
    away: int           # ticks from the same side's best when placed (0: at or through)
    open: int = 0


class ReportBook:
    """Open orders and the best prices per symbol, rebuilt from the reports."""

    def __init__(self, tick):
        self.tick = tick
        self.orders = {}                              # (firm, token) -> _Order
        self.levels = defaultdict(lambda: defaultdict(int))    # (symbol, side) -> price -> qty
        self.resting = defaultdict(int)               # (firm, symbol, side) -> open shares

    def best(self, symbol, side):
        levels = [p for p, q in self.levels[symbol, side].items() if q > 0]
        if not levels:
            return None
        return max(levels) if side == "B" else min(levels)

    def add(self, r):
        side, price = r["side"], r.get("price") or 0
        best = self.best(r["symbol"], side)
        away = 0 if best is None or not price else max(0, (best - price if side == "B"
                                                            else price - best) // self.tick)
        order = BookOrder(r["firm"], r["token"], r["symbol"], side, r["qty"], price,
                       r["timestamp"], away, r["qty"])
        self.orders[order.firm, order.token] = order
        self.levels[order.symbol, side][price] += order.open
        self.resting[order.firm, order.symbol, side] += order.open
        return order

    def reduce(self, order, open_after):
        gone = order.open - open_after
        self.levels[order.symbol, order.side][order.price] -= gone
        self.resting[order.firm, order.symbol, order.side] -= gone
        order.open = open_after
