"""The main job's market-data audience: subscribers beside the trading firms.

:class:`FeedAudience` watches one venue's :class:`~tickwire.marketdata.service.MarketDataService`
the way outside users would, over the network, knowing only its addresses
(:class:`FeedAddresses`), so it may run in a process of its own:

* a multicast subscriber with loss injected on receipt (a share of packets at random plus
  one burst) that recovers through the re-request server;
* a late joiner that starts through the snapshot server when :meth:`join_late` is called;
* a few WebSocket clients subscribed to every symbol at full depth.

:meth:`check` waits until each has caught up with what the venue published
(:func:`venue_view`) and says whether its book equals the venue's.
"""

import asyncio
import json
import time
from typing import NamedTuple

from tickwire.core.money import format_price
from tickwire.marketdata.subscriber import PacketLoss, Subscriber
from websockets.asyncio.client import connect

__all__ = ["FeedAddresses", "FeedAudience", "VenueView", "venue_view"]

#: Levels per side the WebSocket clients ask for (and are checked on).
DEPTH = 10


class FeedAddresses(NamedTuple):
    """Where a venue's feed is: multicast ``(group, port)``, and ``(host, port)`` of its
    re-request, snapshot and WebSocket servers."""
    feed: tuple
    rerequest: tuple
    snapshot: tuple
    ws: tuple

    @classmethod
    def of(cls, marketdata):
        """The addresses of a started :class:`~tickwire.marketdata.service.MarketDataService`."""
        return cls(marketdata.feed_address, marketdata.rerequest_address,
                   marketdata.snapshot_address, marketdata.ws_address)


class VenueView(NamedTuple):
    """What the venue published, for :meth:`FeedAudience.check`: the next sequence number,
    packets and heartbeats sent, its book's ``state()`` and each symbol's WebSocket view."""
    end: int
    packets: int
    heartbeats: int
    state: tuple
    want: dict


def venue_view(marketdata, book, symbols, depth=DEPTH):
    """The :class:`VenueView` of a venue's feed and ``book`` (a FeedBook); ``symbols`` maps
    name → locate of the symbols traded."""
    return VenueView(marketdata.next_sequence, marketdata.publisher.packets,
                     marketdata.publisher.heartbeats, book.state(),
                     {name: _ws_view(book, locate, depth) for name, locate in symbols.items()})


class _WebSocketClient:
    """One retail client: the latest update of each symbol it subscribed to."""

    def __init__(self, url, symbols, depth):
        self.url, self.symbols, self.depth = url, list(symbols), depth
        self.latest = {}
        self.updates = 0
        self._ws = self._task = None

    async def start(self):
        self._ws = await connect(self.url, ping_interval=None, compression=None)
        await self._ws.send(json.dumps({"subscribe": self.symbols, "depth": self.depth}))
        self._task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self):
        async for text in self._ws:
            update = json.loads(text)
            if "symbol" in update:
                self.latest[update["symbol"]] = update
                self.updates += 1

    async def close(self):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._ws.close()


def _ws_view(book, locate, depth):
    """What a WebSocket update says of a symbol's book, from the venue's FeedBook."""
    return {side: [[format_price(p), s, n] for p, s, n in book.levels(locate, key, depth)]
            for side, key in (("bids", "B"), ("asks", "S"))}


class FeedAudience:
    """Subscribers of one venue's feed, as a main job runs them.

    Parameters
    ----------
    addresses : FeedAddresses
        Where the venue's feed is.
    loss : float
        Share of multicast packets the lossy subscriber drops on receipt.
    burst : tuple of (int, int)
        ``(first packet, count)`` it also drops in a row.
    websockets : int
        WebSocket clients.
    depth : int
        Levels per side the WebSocket clients ask for (and are checked on).
    seed : int
    """

    def __init__(self, addresses, loss=0.01, burst=(300, 200), websockets=3, depth=DEPTH,
                 seed=1):
        self.addresses = addresses
        self.loss = PacketLoss(loss, seed, burst)
        self.lossy = self._subscriber(drop=self.loss)
        self.late = None
        self.late_at = None
        self.websockets = websockets
        self.depth = depth
        self.clients = []

    def _subscriber(self, **kw):
        return Subscriber(*self.addresses.feed, rerequest=self.addresses.rerequest,
                          rerequest_interval=0.2, **kw)

    async def start(self, symbols):
        """Join the multicast feed and connect the WebSocket clients to ``symbols``."""
        await self.lossy.start()
        host, port = self.addresses.ws
        self.clients = [await _WebSocketClient(f"ws://{host}:{port}", symbols, self.depth)
                        .start() for _ in range(self.websockets)]
        return self

    async def join_late(self, at_sequence):
        """Start the late joiner (through a snapshot) when the venue's next sequence number is
        ``at_sequence``; wait until it is in sync."""
        self.late_at = at_sequence
        self.late = await self._subscriber(snapshot=self.addresses.snapshot).start()
        await asyncio.wait_for(self.late.synced.wait(), 10)

    async def check(self, venue, timeout=10.0):
        """Wait for everyone to catch up with the venue, then compare with its book.

        Parameters
        ----------
        venue : VenueView
            What the venue published (:func:`venue_view`).

        Returns
        -------
        dict
            Published counts, loss and recovery, and per subscriber whether its book equals
            the venue's.
        """
        end, want = venue.end, venue.want
        subscribers = [("multicast with loss", self.lossy)]
        if self.late is not None:
            subscribers.append(("late joiner", self.late))
        deadline = time.monotonic() + timeout
        for _, sub in subscribers:
            try:
                await sub.wait_for(end, max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                pass
        while time.monotonic() < deadline and not all(
                self._ws_equal(c, want) for c in self.clients):
            await asyncio.sleep(0.05)
        state = venue.state
        lossy = self.lossy
        out = {
            "messages": end - 1,
            "packets": venue.packets,
            "heartbeats": venue.heartbeats,
            "lost_packets": self.loss.dropped,
            "lost_messages": self.loss.dropped_messages,
            "recovered_messages": self.loss.dropped_messages - max(0, end - lossy.expected),
            "rerequests": lossy.requests,
            "retransmitted_packets": lossy.replies,
            "subscribers": {name: {"caught_up": sub.expected >= end and not sub.stale,
                                   "book_equal": sub.book.book.state() == state}
                            for name, sub in subscribers},
            "websocket_clients": len(self.clients),
            "websocket_updates": sum(c.updates for c in self.clients),
            "websocket_equal": all(self._ws_equal(c, want) for c in self.clients),
        }
        if self.late is not None:
            out["subscribers"]["late joiner"]["joined_at"] = self.late_at
        out["all_equal"] = out["websocket_equal"] and all(
            s["book_equal"] and s["caught_up"] for s in out["subscribers"].values())
        return out

    @staticmethod
    def _ws_equal(client, want):
        return all(name in client.latest and
                   {k: client.latest[name][k] for k in ("bids", "asks")} == view
                   for name, view in want.items())

    async def close(self):
        for client in self.clients:
            await client.close()
        for sub in (self.lossy, self.late):
            if sub is not None:
                await sub.close()
