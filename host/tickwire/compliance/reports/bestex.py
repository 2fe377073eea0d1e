"""Best execution: per-order execution quality and a Rule 605-style report.

Each order is measured against the venue's quote when it arrived (its own best bid and offer,
rebuilt from the reports; the broker issue brings a multi-venue NBBO):

* **category** (Rule 605): ``market``, ``marketable_limit``, ``inside_quote_limit``,
  ``at_quote_limit``, ``away_limit`` (``no_quote`` when the side it is measured against was
  empty);
* **price improvement** per share of a marketable order: offer − price paid (buy), price
  received − bid (sell); positive is better than the quote;
* **effective spread**: 2 × |execution price − midpoint at arrival|;
* **fill rate**: executed / entered shares; **time to fill**: arrival to first execution.

The report groups orders by symbol, Rule 605 size bucket and category. Prices stay integers
(1/10000 $) until the averages, which are exact decimals rounded to 1/10000 $.
"""

import csv
import os
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from tickwire.compliance.book import ReportBook

__all__ = ["COLUMNS", "ORDER_COLUMNS", "OrderQuality", "execution_quality", "order_rows",
           "plot_report", "report_rows", "size_bucket", "write_report"]

COLUMNS = ("symbol", "size_bucket", "category", "orders", "shares", "executed_shares",
           "cancelled_shares", "fill_rate", "avg_effective_spread", "price_improved_shares",
           "avg_price_improvement", "at_quote_shares", "outside_quote_shares",
           "avg_time_to_fill_ms")
ORDER_COLUMNS = ("firm", "token", "symbol", "side", "qty", "price", "category", "size_bucket",
                 "arrival_ns", "bid", "ask", "executed_shares", "cancelled_shares",
                 "fill_rate", "avg_price", "price_improvement", "effective_spread",
                 "time_to_fill_ms")
_BUCKETS = ((1, 99, "1-99"), (100, 499, "100-499"), (500, 1999, "500-1999"),
            (2000, 4999, "2000-4999"), (5000, 9999, "5000-9999"))
_CENT = Decimal("0.0001")


def size_bucket(qty):
    for low, high, name in _BUCKETS:
        if low <= qty <= high:
            return name
    return "10000+"


@dataclass
class OrderQuality:
    firm: str
    token: str
    symbol: str
    side: str
    qty: int
    price: int              # 0: market
    arrival: int
    bid: int | None
    ask: int | None
    fills: list = field(default_factory=list)       # (time, qty, price)
    cancelled: int = 0

    @property
    def category(self):
        quote = self.ask if self.side == "B" else self.bid
        if not self.price:
            return "market"
        if quote is None:
            return "no_quote"
        own = self.bid if self.side == "B" else self.ask
        better = self.price >= quote if self.side == "B" else self.price <= quote
        if better:
            return "marketable_limit"
        if own is None:
            return "inside_quote_limit"
        if self.price == own:
            return "at_quote_limit"
        inside = self.price > own if self.side == "B" else self.price < own
        return "inside_quote_limit" if inside else "away_limit"

    @property
    def executed(self):
        return sum(q for _, q, _ in self.fills)


def execution_quality(reports, tick=100):
    """[OrderQuality] of every order in a day's reports (dicts), in arrival order."""
    book = ReportBook(tick)
    orders, out = {}, []
    for r in reports:
        kind = r.get("type")
        key = (r.get("firm"), r.get("token"))
        if kind == "accepted":
            q = OrderQuality(r["firm"], r["token"], r["symbol"], r["side"], r["qty"],
                             r.get("price") or 0, r["timestamp"], book.best(r["symbol"], "B"),
                             book.best(r["symbol"], "S"))
            book.add(r)
            orders[key] = q
            out.append(q)
        elif kind == "executed":
            order = book.orders.get(key)
            if order is not None:
                book.reduce(order, r["leaves"])
            if key in orders:
                orders[key].fills.append((r["timestamp"], r["qty"], r["price"]))
        elif kind == "canceled":
            order = book.orders.get(key)
            if order is not None:
                book.reduce(order, r.get("leaves") or 0)
            if key in orders:
                orders[key].cancelled += r["qty"]
        elif kind == "replaced":
            previous = (r["firm"], (r.get("extra") or {}).get("previous_token"))
            old = book.orders.get(previous)
            if old is not None:
                book.reduce(old, 0)
            book.add(dict(r, qty=r.get("leaves", r["qty"])))
            if previous in orders:
                orders[key] = orders[previous]
    return out


def _avg(total, count):
    return "" if not count else str((Decimal(total) / count / 10000).quantize(_CENT,
                                                                               ROUND_HALF_EVEN))


@dataclass
class _FillStats:
    """An order's (or a group's) fills against the quote at arrival, in integer money."""
    spread_total: int = 0       # Σ shares × |2 × price − (bid + ask)|
    spread_shares: int = 0
    improved: int = 0           # shares executed better than the quote (marketable orders)
    improvement: int = 0        # Σ shares × improvement
    at_quote: int = 0
    outside: int = 0

    def add(self, q):
        quote = q.ask if q.side == "B" else q.bid
        for _, qty, price in q.fills:
            if q.bid is not None and q.ask is not None:
                self.spread_total += qty * abs(2 * price - (q.bid + q.ask))
                self.spread_shares += qty
            if quote is None or q.category not in ("market", "marketable_limit"):
                continue
            gain = quote - price if q.side == "B" else price - quote
            if gain > 0:
                self.improved += qty
                self.improvement += gain * qty
            elif gain == 0:
                self.at_quote += qty
            else:
                self.outside += qty
        return self


def report_rows(quality):
    """The Rule 605-style rows (dicts with :data:`COLUMNS`), sorted."""
    groups = defaultdict(list)
    for q in quality:
        groups[q.symbol, size_bucket(q.qty), q.category].append(q)
    rows = []
    for (symbol, bucket, category), qs in sorted(groups.items()):
        shares = sum(q.qty for q in qs)
        executed = sum(q.executed for q in qs)
        stats = _FillStats()
        for q in qs:
            stats.add(q)
        waits = [q.fills[0][0] - q.arrival for q in qs if q.fills]
        rows.append({
            "symbol": symbol, "size_bucket": bucket, "category": category, "orders": len(qs),
            "shares": shares, "executed_shares": executed,
            "cancelled_shares": sum(q.cancelled for q in qs),
            "fill_rate": f"{executed / shares:.4f}" if shares else "",
            "avg_effective_spread": _avg(stats.spread_total, stats.spread_shares),
            "price_improved_shares": stats.improved,
            "avg_price_improvement": _avg(stats.improvement, stats.improved),
            "at_quote_shares": stats.at_quote, "outside_quote_shares": stats.outside,
            "avg_time_to_fill_ms": f"{sum(waits) / len(waits) / 1e6:.3f}" if waits else ""})
    return rows


def _dollars(price):
    return "" if price is None else _avg(price, 1)


def order_rows(quality):
    """One row per order (dicts with :data:`ORDER_COLUMNS`), in arrival order: its quote at
    arrival and its execution quality. ``price_improvement`` (marketable orders: per share,
    over the shares executed, negative when worse than the quote), ``effective_spread`` and
    ``avg_price`` are exact to $0.0001; empty when they do not apply."""
    rows = []
    for q in quality:
        stats = _FillStats().add(q)
        executed = q.executed
        marketable = q.category in ("market", "marketable_limit")
        quote = q.ask if q.side == "B" else q.bid
        net = None
        if marketable and quote is not None and executed:
            net = sum(qty * (quote - p if q.side == "B" else p - quote) for _, qty, p in q.fills)
        rows.append({
            "firm": q.firm, "token": q.token, "symbol": q.symbol, "side": q.side, "qty": q.qty,
            "price": _dollars(q.price or None), "category": q.category,
            "size_bucket": size_bucket(q.qty), "arrival_ns": q.arrival,
            "bid": _dollars(q.bid), "ask": _dollars(q.ask), "executed_shares": executed,
            "cancelled_shares": q.cancelled, "fill_rate": f"{executed / q.qty:.4f}",
            "avg_price": _avg(sum(qty * p for _, qty, p in q.fills), executed),
            "price_improvement": "" if net is None else _avg(net, executed),
            "effective_spread": _avg(stats.spread_total, stats.spread_shares),
            "time_to_fill_ms": f"{(q.fills[0][0] - q.arrival) / 1e6:.3f}" if q.fills else ""})
    return rows


def write_report(path, rows, columns=COLUMNS):
    """Write ``rows`` as CSV (the report's :data:`COLUMNS`, or :data:`ORDER_COLUMNS`)."""
    with open(path + ".partial", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(path + ".partial", path)


def plot_report(path, rows):
    """Effective spread and fill rate per symbol and size bucket (marketable orders)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    marketable = [r for r in rows if r["category"] in ("market", "marketable_limit")
                  and r["avg_effective_spread"]]
    labels = [f"{r['symbol']} {r['size_bucket']}\n{r['category'].replace('_', ' ')}"
              for r in marketable]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, 0.9 * len(labels)), 7))
    top.bar(range(len(labels)), [float(r["avg_effective_spread"]) for r in marketable])
    top.set_ylabel("avg effective spread ($/share)")
    top.set_title("Rule 605-style execution quality (marketable orders)")
    bottom.bar(range(len(labels)), [float(r["fill_rate"]) for r in marketable],
               color="tab:green")
    bottom.set_ylabel("fill rate")
    for ax in (top, bottom):
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
