"""The consolidated quote (SIP-like): each venue's best bid and offer from its ITCH feed, and
the National Best Bid and Offer per symbol with the venue that sets each side.

Every venue has its own :class:`~tickwire.marketdata.book.SubscriberBook` (its locates are its
own): a multicast subscriber's (:meth:`ConsolidatedBook.subscribe`), or one fed here message
by message (:meth:`ConsolidatedBook.apply`). A symbol is known by its stock name. After a
venue's feed changes a locate, :meth:`ConsolidatedBook.update` re-reads that venue's top of
book and recomputes the NBBO.
A venue's quote is *protected* (counts for the NBBO) while the venue is in market hours
(ITCH system events ``Q`` to ``M``) and the symbol is not halted there. Ties go to the venue
that reached the price first (time priority), as the SIP attributes them.
"""

import time
from dataclasses import dataclass

from tickwire.marketdata.book import SubscriberBook
from tickwire.protocol import itch

__all__ = ["ConsolidatedBook", "Nbbo", "Quote", "VenueQuote"]


@dataclass(frozen=True)
class Quote:
    """One side's best price: ``price`` in 1/10000 $, displayed ``size`` in shares, ``venue``."""
    price: int
    size: int
    venue: str


@dataclass(frozen=True)
class VenueQuote:
    """A venue's top of book in one symbol; ``since`` orders equal prices (ns, monotonic)."""
    venue: str
    bid: Quote | None
    ask: Quote | None
    protected: bool
    bid_since: int = 0
    ask_since: int = 0


@dataclass(frozen=True)
class Nbbo:
    """The national best bid and offer of a symbol; ``timestamp`` in ns since the epoch."""
    symbol: str
    bid: Quote | None
    ask: Quote | None
    timestamp: int


class ConsolidatedBook:
    """Quotes of every venue and the NBBO of every symbol.

    Parameters
    ----------
    venues : iterable of str
        Venue names, in their display order.
    on_nbbo : callable, optional
        ``on_nbbo(nbbo)`` whenever a symbol's NBBO changes.

    Members
    -------
    books : dict of str to SubscriberBook
        Each venue's book.
    """

    def __init__(self, venues, on_nbbo=None):
        self.venues = list(venues)
        self.books = {v: SubscriberBook() for v in self.venues}
        self.on_nbbo = on_nbbo
        self.in_hours = dict.fromkeys(self.venues, False)
        self._system = {}           # venue -> the system event message last read
        self.quotes = {}            # symbol -> {venue: VenueQuote}
        self.nbbo = {}              # symbol -> Nbbo
        self.updates = 0

    def subscribe(self, venue, subscriber):
        """Follow ``venue``'s feed through a :class:`~tickwire.marketdata.subscriber.Subscriber`
        (its book, which a snapshot may replace, and its ``on_update``)."""
        def updated(locate):
            self.books[venue] = subscriber.book
            self.update(venue, locate)
        subscriber.on_update = updated
        self.books[venue] = subscriber.book
        return subscriber

    # -- input -----------------------------------------------------------------------------

    def apply(self, venue, message):
        """Apply one raw ITCH message of ``venue``'s feed and update what it touched."""
        self.update(venue, self.books[venue].apply(message))

    def update(self, venue, locate):
        """Re-read ``venue``'s quote in ``locate`` and its market hours (the book's last
        system event, which a live ``S`` message or a snapshot sets)."""
        book = self.books[venue]
        if book.system is not self._system.get(venue):
            self._system[venue] = book.system
            code = itch.decode(book.system).event_code if book.system else None
            if code in ("Q", "M"):
                self.in_hours[venue] = code == "Q"
                for where, symbol in book.book.stocks.items():
                    self._refresh(venue, symbol, book, where)
        symbol = book.book.stocks.get(locate)
        if symbol is not None:
            self._refresh(venue, symbol, book, locate)

    def _refresh(self, venue, symbol, book, locate):
        bid, ask = book.best(locate, "B"), book.best(locate, "S")
        protected = self.in_hours[venue] and not book.book.halted.get(locate, False)
        venues = self.quotes.setdefault(symbol, {})
        old = venues.get(venue)
        now = time.monotonic_ns()
        bid_q = Quote(bid[0], bid[1], venue) if bid else None
        ask_q = Quote(ask[0], ask[1], venue) if ask else None
        bid_since = old.bid_since if old and old.bid and bid_q and old.bid.price == bid_q.price \
            else now
        ask_since = old.ask_since if old and old.ask and ask_q and old.ask.price == ask_q.price \
            else now
        venues[venue] = VenueQuote(venue, bid_q, ask_q, protected, bid_since, ask_since)
        self._recompute(symbol)

    def _recompute(self, symbol):
        quotes = [q for q in self.quotes[symbol].values() if q.protected]
        bids = [q for q in quotes if q.bid]
        asks = [q for q in quotes if q.ask]
        bid = min(bids, key=lambda q: (-q.bid.price, q.bid_since)).bid if bids else None
        ask = min(asks, key=lambda q: (q.ask.price, q.ask_since)).ask if asks else None
        old = self.nbbo.get(symbol)
        if old is None or old.bid != bid or old.ask != ask:
            self.updates += 1
            nbbo = self.nbbo[symbol] = Nbbo(symbol, bid, ask, time.time_ns())
            if self.on_nbbo is not None:
                self.on_nbbo(nbbo)

    # -- views -----------------------------------------------------------------------------

    def symbols(self):
        """Every symbol some venue has declared."""
        return sorted({s for b in self.books.values() for s in b.book.stocks.values()})

    def known(self, symbol):
        return symbol in self.symbols()

    def halted(self, symbol):
        """True if every venue listing ``symbol`` has it halted."""
        locates = [(b, b.locate_of(symbol)) for b in self.books.values()]
        states = [b.book.halted.get(locate, False) for b, locate in locates if locate]
        return bool(states) and all(states)

    def market_open(self):
        """True while some venue is in market hours."""
        return any(self.in_hours.values())

    def venue_quotes(self, symbol):
        """``{venue: VenueQuote}`` of a symbol, every venue that has quoted it."""
        return dict(self.quotes.get(symbol, {}))

    def get(self, symbol):
        """The symbol's :class:`Nbbo`, or ``None`` if no venue has quoted it."""
        return self.nbbo.get(symbol)
