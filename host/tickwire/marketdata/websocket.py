"""Retail market data over WebSocket: L1 and L2 per symbol, conflated and rate limited.

A client sends JSON requests, e.g. ``{"subscribe": ["AAPL", "MSFT"], "depth": 5}`` or
``{"unsubscribe": ["AAPL"]}``, and receives one JSON text message per symbol update::

    {"symbol": "AAPL", "seq": 1234, "halted": false,
     "bid": ["189.2500", 300], "ask": ["189.2600", 100], "last": ["189.2500", 100],
     "bids": [["189.2500", 300, 2], ...], "asks": [...]}

(prices as decimal strings; ``bid``/``ask``/``last`` are ``[price, shares]`` or null; levels
are ``[price, shares, orders]``, best first, round lots only; ``seq`` is the number of feed
messages the book reflects). Errors come back as ``{"error": "..."}``.

Conflation and isolation: the publish path (:meth:`BookWebSocketServer.notify`) only marks
the symbol dirty in each subscribed client's slot and sets its event: O(subscribers of the
symbol), no await, no socket. Each client has its own sender task that renders the *latest*
state of each dirty symbol when it gets to it (renderings shared between clients of the same
symbol and depth), sends it, then sleeps ``1 / rate`` seconds: a client gets at most ``rate``
updates per second per symbol, and a slow or stalled client only ever delays its own task.
"""

import asyncio
import json
import logging

from tickwire.core.money import format_price
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

__all__ = ["BookWebSocketServer", "render"]

log = logging.getLogger(__name__)


def _pair(value):
    return None if value is None else [format_price(value[0]), value[1]]


def render(book, locate, depth, seq=None):
    """The JSON text of one symbol's L1 and L2 from a SubscriberBook."""
    feed = book.book
    return json.dumps({
        "symbol": feed.stocks.get(locate, ""), "seq": seq,
        "halted": feed.halted.get(locate, False),
        "bid": _pair(book.best(locate, "B")), "ask": _pair(book.best(locate, "S")),
        "last": _pair(feed.last_trade.get(locate)),
        "bids": [[format_price(p), s, n] for p, s, n in book.levels(locate, "B", depth)],
        "asks": [[format_price(p), s, n] for p, s, n in book.levels(locate, "S", depth)],
    }, separators=(",", ":"))


class _Client:
    __slots__ = ("ws", "symbols", "depth", "dirty", "event", "task", "sent", "sending")

    def __init__(self, ws, depth):
        self.ws, self.symbols, self.depth = ws, set(), depth
        self.dirty, self.event = set(), asyncio.Event()
        self.task, self.sent, self.sending = None, 0, False


class BookWebSocketServer:
    """Serves a subscriber's book to WebSocket clients.

    Parameters
    ----------
    source : callable
        Returns the current :class:`~tickwire.marketdata.book.SubscriberBook` (e.g.
        ``lambda: subscriber.book``: a resynchronised subscriber replaces its book).
    host, port : str, int
        Where to listen (port 0: any free port, see :attr:`address`).
    rate : float
        Updates per second per symbol per client, at most.
    max_depth, default_depth : int
        Largest and default number of L2 levels per side.
    max_symbols : int
        Symbols one client may subscribe to.
    sequence : callable, optional
        Returns the ``seq`` to report (e.g. ``lambda: subscriber.expected - 1``).
    write_limit : int
        Bytes buffered per connection before a send waits (the websockets library's limit).

    Members
    -------
    clients : set
        Connected clients (their ``sent`` counts updates sent; ``sending`` is True while a
        send waits on a slow socket).
    notified : int
        Updates published.
    """

    def __init__(self, source, host="127.0.0.1", port=0, rate=10.0, max_depth=10,
                 default_depth=5, max_symbols=100, sequence=None, write_limit=1 << 16):
        self.source = source
        self.host, self.port = host, port
        self.interval = 1.0 / rate
        self.max_depth, self.default_depth = max_depth, default_depth
        self.max_symbols = max_symbols
        self.sequence = sequence
        self.write_limit = write_limit
        self.clients = set()
        self.notified = 0
        self._by_symbol = {}            # stock -> set of clients
        self._versions = {}             # stock -> update count
        self._cache = {}                # (stock, depth) -> (version, text)
        self._server = None

    @property
    def address(self):
        """``(host, port)`` the server listens on (None when it does not)."""
        if self._server is None:
            return None
        return next(iter(self._server.sockets)).getsockname()[:2]

    async def start(self):
        self._server = await serve(self._handle, self.host, self.port, compression=None,
                                   write_limit=self.write_limit, max_size=1 << 16)
        return self

    async def close(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- publish path ----------------------------------------------------------------------

    def notify(self, locate):
        """The book changed for ``locate``: mark it dirty for its subscribers (never waits)."""
        stock = self.source().book.stocks.get(locate)
        if stock is None:
            return
        self.notified += 1
        self._versions[stock] = self._versions.get(stock, 0) + 1
        for client in self._by_symbol.get(stock, ()):
            client.dirty.add(stock)
            client.event.set()

    def _text(self, stock, depth):
        version = self._versions.get(stock, 0)
        cached = self._cache.get((stock, depth))
        if cached is not None and cached[0] == version:
            return cached[1]
        book = self.source()
        locate = book.locate_of(stock)
        if locate is None:
            text = json.dumps({"symbol": stock, "seq": None, "unknown": True})
        else:
            seq = self.sequence() if self.sequence is not None else None
            text = render(book, locate, depth, seq)
        self._cache[stock, depth] = (version, text)
        return text

    # -- per client ------------------------------------------------------------------------

    async def _sender(self, client):
        ws = client.ws
        while True:
            await client.event.wait()
            client.event.clear()
            dirty, client.dirty = client.dirty, set()
            for stock in dirty:
                if stock in client.symbols:
                    client.sending = True
                    await ws.send(self._text(stock, client.depth))
                    client.sending = False
                    client.sent += 1
            await asyncio.sleep(self.interval)

    def _request(self, client, raw):
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
            depth = request.get("depth", client.depth)
            if not isinstance(depth, int) or not 1 <= depth <= self.max_depth:
                raise ValueError(f"depth must be 1…{self.max_depth}")
            client.depth = depth
            for stock in request.get("unsubscribe", ()):
                client.symbols.discard(stock)
                self._by_symbol.get(stock, set()).discard(client)
            wanted = request.get("subscribe", ())
            if not all(isinstance(s, str) for s in wanted):
                raise ValueError("subscribe takes a list of symbols")
            if len(client.symbols | set(wanted)) > self.max_symbols:
                raise ValueError(f"at most {self.max_symbols} symbols")
            for stock in wanted:
                client.symbols.add(stock)
                self._by_symbol.setdefault(stock, set()).add(client)
            client.dirty.update(wanted if "depth" not in request else client.symbols)
            client.event.set()
            return None
        except (ValueError, TypeError) as exc:
            return json.dumps({"error": str(exc)})

    async def _handle(self, ws):
        client = _Client(ws, self.default_depth)
        self.clients.add(client)
        client.task = asyncio.get_running_loop().create_task(self._sender(client))
        try:
            async for raw in ws:
                error = self._request(client, raw)
                if error is not None:
                    await ws.send(error)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            for stock in client.symbols:
                self._by_symbol.get(stock, set()).discard(client)
            client.task.cancel()
            try:
                await client.task
            except (asyncio.CancelledError, ConnectionClosed):
                pass
