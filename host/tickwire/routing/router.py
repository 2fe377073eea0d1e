"""The smart order router's decision: which venues get how many shares, at what price.

Reg NMS (Rule 611, no trade-throughs): a marketable order takes the best protected quote
first; it may take a worse-priced quote only in the same sweep that takes every better one
(the child orders are then marked intermarket sweep eligible). So the router walks the
healthy venues' quotes best price first (ties: the venue that reached the price first) and
gives each ``min(displayed size, shares left)`` at its quote price, as IOC child orders,
until the order is covered or the next quote is beyond the limit. A venue whose circuit
breaker is open is skipped: its quote is not accessible, so it is not protected (the
"self-help" exception), and the decision records that. A FOK order goes whole to one venue
that displays enough at its best price, or nowhere. What no quote covers is left: a DAY/GTC
limit order posts it at one venue (the healthy venue with the best same-side price, or the
first), a market or IOC order cancels it.

Every decision carries the seed's ``routing_decision`` fields.
"""

import time
from dataclasses import dataclass, field

from tickwire.core.money import format_dollars

__all__ = ["BEST_PRICE", "NO_LIQUIDITY", "POST", "SWEEP", "RoutingDecision", "Slice", "decide"]

BEST_PRICE, SWEEP, POST, NO_LIQUIDITY = "BEST_PRICE", "SWEEP", "POST_LIQUIDITY", "NO_LIQUIDITY"


@dataclass(frozen=True)
class Slice:
    """One child order: ``qty`` shares to ``venue`` at ``price`` (1/10000 $), ``tif``
    ``ioc`` (take a displayed quote) or ``day``/``gtc`` (post), ``sweep`` if it is part of an
    intermarket sweep."""
    venue: str
    qty: int
    price: int
    tif: str
    reason: str
    sweep: bool = False
    better_unswept: int = 0     # protected shares at better prices this sweep leaves: must be 0


@dataclass(frozen=True)
class RoutingDecision:
    """A decision: slices, and what was known when it was made."""
    order_id: str
    symbol: str
    side: str
    qty: int
    slices: tuple
    reason: str
    nbbo_bid: int | None
    nbbo_ask: int | None
    prices: dict                # venue -> its contra-side price (None: no quote)
    skipped: dict               # venue -> why it was not considered
    timestamp: int = field(default_factory=time.time_ns)

    def record(self):
        """The seed's ``routing_decision`` fields (and the slices), JSON-ready."""
        selected = [s.venue for s in self.slices]
        return {
            "order_id": self.order_id, "symbol": self.symbol, "side": self.side,
            "qty": self.qty, "timestamp": self.timestamp,
            "selected_venue": selected[0] if selected else None,
            "reason": self.reason,
            "alternatives_considered": [v for v in self.prices if v not in selected[:1]],
            "prices_at_decision": {v: None if p is None else format_dollars(p)
                                   for v, p in self.prices.items()},
            "nbbo_at_decision": {
                "bid": None if self.nbbo_bid is None else format_dollars(self.nbbo_bid),
                "ask": None if self.nbbo_ask is None else format_dollars(self.nbbo_ask)},
            "skipped": dict(self.skipped),
            "slices": [{"venue": s.venue, "qty": s.qty, "price": format_dollars(s.price),
                        "time_in_force": s.tif, "reason": s.reason, "sweep": s.sweep,
                        "better_unswept": s.better_unswept}
                       for s in self.slices],
        }


def _contra(quote, buy):
    return quote.ask if buy else quote.bid


def _same(quote, buy):
    return quote.bid if buy else quote.ask


def decide(order_id, symbol, side, qty, limit, tif, quotes, healthy, nbbo=None):
    """Route ``qty`` shares of an order.

    Parameters
    ----------
    side : str
        ``buy`` or ``sell``.
    limit : int or None
        Limit price (1/10000 $); ``None`` for a market order.
    tif : str
        ``day``, ``gtc``, ``ioc`` or ``fok``.
    quotes : dict of str to VenueQuote
        Every venue's quote in the symbol (``ConsolidatedBook.venue_quotes``).
    healthy : callable
        ``healthy(venue)``: whether its circuit breaker lets requests through.
    nbbo : Nbbo, optional
        Recorded with the decision.

    Returns
    -------
    RoutingDecision
    """
    buy = side == "buy"
    prices, skipped, usable = {}, {}, []
    for venue, quote in quotes.items():
        contra = _contra(quote, buy)
        prices[venue] = contra.price if contra else None
        if not healthy(venue):
            skipped[venue] = "circuit_open"
        elif not quote.protected:
            skipped[venue] = "not_trading"
        elif contra is None:
            skipped[venue] = "no_quote"
        elif limit is not None and (contra.price > limit if buy else contra.price < limit):
            skipped[venue] = "beyond_limit"
        else:
            usable.append(quote)
    since = (lambda q: q.ask_since) if buy else (lambda q: q.bid_since)
    usable.sort(key=lambda q: ((_contra(q, True).price if buy else -_contra(q, False).price),
                               since(q)))
    slices = _fok(usable, qty, buy) if tif == "fok" else _sweep(usable, qty, buy)
    left = qty - sum(s.qty for s in slices)
    if left and limit is not None and tif in ("day", "gtc"):
        venue = _post_venue(quotes, healthy, buy)
        if venue is not None:
            slices.append(Slice(venue, left, limit, tif, POST))
    slices = _check_trade_through(slices, quotes, healthy, buy)
    reason = slices[0].reason if slices else NO_LIQUIDITY
    return RoutingDecision(order_id, symbol, side, qty, tuple(slices), reason,
                           nbbo.bid.price if nbbo and nbbo.bid else None,
                           nbbo.ask.price if nbbo and nbbo.ask else None, prices, skipped)


def _sweep(usable, qty, buy):
    slices, left = [], qty
    for quote in usable:
        if not left:
            break
        contra = _contra(quote, buy)
        take = min(contra.size, left)
        slices.append(Slice(quote.venue, take, contra.price, "ioc",
                            BEST_PRICE if not slices else SWEEP))
        left -= take
    if len({s.price for s in slices}) > 1:
        slices = [Slice(s.venue, s.qty, s.price, s.tif, s.reason, True) for s in slices]
    return slices


def _check_trade_through(slices, quotes, healthy, buy):
    """Each taking slice with the protected shares at better prices that no slice of this
    decision takes (Rule 611: must be 0), counted from the quotes, not from how they were
    chosen."""
    protected = [_contra(q, buy) for q in quotes.values()
                 if healthy(q.venue) and q.protected and _contra(q, buy)]
    better = (lambda a, b: a < b) if buy else (lambda a, b: a > b)
    out = []
    for s in slices:
        if s.tif not in ("ioc", "fok"):
            out.append(s)
            continue
        shown = sum(q.size for q in protected if better(q.price, s.price))
        taken = sum(t.qty for t in slices if t.tif in ("ioc", "fok") and better(t.price, s.price))
        out.append(Slice(s.venue, s.qty, s.price, s.tif, s.reason, s.sweep,
                         max(0, shown - taken)))
    return out


def _fok(usable, qty, buy):
    """The best-priced venue displaying all ``qty`` at a price no worse than the best."""
    if not usable:
        return []
    best = _contra(usable[0], buy).price
    for quote in usable:
        contra = _contra(quote, buy)
        if contra.price == best and contra.size >= qty:
            return [Slice(quote.venue, qty, contra.price, "fok", BEST_PRICE)]
    return []


def _post_venue(quotes, healthy, buy):
    candidates = [q for q in quotes.values() if healthy(q.venue) and q.protected]
    if not candidates:
        return None
    priced = [q for q in candidates if _same(q, buy)]
    if priced:
        sign = -1 if buy else 1
        return min(priced, key=lambda q: sign * _same(q, buy).price).venue
    return candidates[0].venue
