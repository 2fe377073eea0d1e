"""Market makers: one member firm per venue quoting every symbol on both sides.

Each venue's maker quotes a few price levels a side around the symbol's reference price,
:data:`LEVEL_SIZE` shares each, at a spread that differs by venue and symbol, so the best bid
and the best offer are on different venues and routing matters. When an order of theirs is
hit, they enter the same size at the same price again, so every venue's best bid and offer
always show at least 500 shares from them. :meth:`MarketMaker.move` shifts one symbol's
quotes by a tick (``tickwire run --broker`` moves them as the day goes).
"""

import itertools
import logging

from tickwire.gateways.ouch.client import OuchClient

__all__ = ["LEVELS", "LEVEL_SIZE", "MIN_SHOWN", "MarketMaker", "venue_offsets"]

log = logging.getLogger(__name__)

LEVEL_SIZE = 1000
"""Shares at each quoted price (at least the 500 the broker relies on)."""

LEVELS = 3
"""Price levels quoted a side."""

MIN_SHOWN = 500
"""An order hit down below this many shares is topped up to :data:`LEVEL_SIZE`."""


def venue_offsets(venue_index, symbol_index, venues):
    """``(bid ticks below, ask ticks above)`` the reference for one venue and symbol: 1 to
    ``venues`` ticks, a different venue best on each side and each symbol."""
    bid = 1 + (venue_index + symbol_index) % venues
    ask = 1 + (venue_index + 2 * symbol_index + 1) % venues
    return bid, ask


class MarketMaker:
    """A market maker's session on one venue.

    Parameters
    ----------
    venue : str
    address : tuple of (str, int)
        The venue's OUCH gateway.
    login : tuple of (str, str)
    quotes : dict of str to (int, int)
        Symbol → (best bid, best ask) to quote, in 1/10000 $.
    tick : int
        Price step between levels (1/10000 $).
    """

    def __init__(self, venue, address, login, quotes, tick=100):
        self.venue, self.address, self.login, self.tick = venue, address, login, tick
        self.quotes = dict(quotes)
        self.client = OuchClient(self._on_message)
        self.orders = {}            # token -> (symbol, side, price, shares left)
        self._tokens = (f"M{n:x}" for n in itertools.count(1))
        self.replenished = 0

    async def start(self):
        await self.client.connect(*self.address, *self.login)
        for symbol in self.quotes:
            self._quote(symbol)
        await self.client.drain()
        return self

    def _enter(self, symbol, side, price, shares=LEVEL_SIZE):
        token = next(self._tokens)
        self.orders[token] = [symbol, side, price, shares]
        self.client.enter(token, side, shares, symbol, price)

    def _quote(self, symbol):
        bid, ask = self.quotes[symbol]
        for level in range(LEVELS):
            self._enter(symbol, "B", bid - level * self.tick)
            self._enter(symbol, "S", ask + level * self.tick)

    def move(self, symbol, ticks):
        """Cancel the symbol's quotes and quote again ``ticks`` higher (or lower)."""
        for token, (sym, _, _, _) in list(self.orders.items()):
            if sym == symbol:
                self.client.cancel(token)
                del self.orders[token]
        bid, ask = self.quotes[symbol]
        self.quotes[symbol] = (bid + ticks * self.tick, ask + ticks * self.tick)
        self._quote(symbol)

    def _on_message(self, number, record, raw):
        code = raw[:1]
        token = getattr(record, "order_token", None)
        order = self.orders.get(token)
        if order is None:
            return
        if code == b"E":
            order[3] -= record.executed_shares
            symbol, side, price, left = order
            if left <= 0:
                del self.orders[token]
            if left < MIN_SHOWN:                        # keep the size shown
                self._enter(symbol, side, price, LEVEL_SIZE - left)
                self.replenished += 1
        elif code in (b"C", b"J"):
            del self.orders[token]
            if code == b"J":
                log.warning("market maker on %s: %s rejected (%s)", self.venue, token,
                            record.reject_reason)

    async def close(self):
        await self.client.close()
