"""One venue's market data on the network: multicast, re-request, snapshot and WebSocket.

A :class:`MarketDataService` is a sink of the venue's ``FeedPublisher`` (``service(packet,
timestamp_ns)``): every MoldUDP64 packet goes into the snapshot server's book (which the
WebSocket server also serves), into the re-request server's history, and out to the
multicast group.

Restarts: the venue rebuilds its feed from the write-ahead log on every start. While it does
(before :meth:`go_live`), packets fill the book and the history but are not sent again, so
the feed goes on with the same session name and the next sequence number, and the
re-request server can answer for messages published before the restart. :meth:`go_live`
sends a heartbeat at once: a receiver that lived through the restart learns the next
sequence number and asks for anything it missed.
"""

import errno
import logging
import math
import socket

from tickwire.marketdata.history import MessageHistory
from tickwire.marketdata.publisher import MulticastPublisher
from tickwire.marketdata.rerequest import RerequestServer
from tickwire.marketdata.snapshot import SnapshotServer
from tickwire.marketdata.websocket import BookWebSocketServer

__all__ = ["FeedError", "MarketDataService"]

log = logging.getLogger(__name__)


class FeedError(Exception):
    """A part of the feed cannot start (address in use, interface without multicast...)."""


class MarketDataService:
    """Publisher, re-request, snapshot and WebSocket servers fed by one venue's packets.

    Parameters
    ----------
    settings : FeedSettings

    Members
    -------
    publisher : MulticastPublisher or None
    rerequest : RerequestServer or None
    snapshot : SnapshotServer
        Always keeps the book (the WebSocket's source); listens only with a snapshot port.
    websocket : BookWebSocketServer or None
    live : bool
        Packets are sent (False while the venue rebuilds its feed from the WAL).
    replayed : int
        Messages rebuilt (not sent) before going live.
    """

    def __init__(self, settings):
        self.settings = s = settings
        self.snapshot = SnapshotServer(s.session, s.host, s.snapshot_port or 0)
        self.rerequest = None if s.rerequest_port is None else RerequestServer(
            s.session, MessageHistory(s.retransmit_messages, s.retransmit_seconds or math.inf),
            s.host, s.rerequest_port)
        self.publisher = None if s.port is None else MulticastPublisher(
            s.group, s.port, s.interface, s.ttl, session=s.session,
            heartbeat_interval=s.heartbeat)
        self.websocket = None if s.ws_port is None else BookWebSocketServer(
            lambda: self.snapshot.book, s.host, s.ws_port, rate=s.ws_rate,
            sequence=lambda: self.snapshot.next_sequence - 1)
        self.live = False
        self.replayed = 0

    def __call__(self, packet, timestamp_ns=None):
        """One feed packet (data or end of session) from the venue."""
        touched = self.snapshot.on_packet(packet)
        if self.rerequest is not None:
            self.rerequest.store(packet)
        if self.websocket is not None:
            for locate in touched:
                self.websocket.notify(locate)
        if self.publisher is not None:
            if self.live:
                self.publisher(packet, timestamp_ns)
            else:
                self.publisher.track(packet)
        if not self.live:
            self.replayed = self.snapshot.next_sequence - 1

    # -- life cycle ------------------------------------------------------------------------

    async def start(self):
        """Open every socket (nothing is sent until :meth:`go_live`); raises FeedError."""
        s = self.settings
        try:
            if self.publisher is not None:
                if s.port == 0:
                    self.publisher.port = _free_udp_port()
                _opening("multicast from interface", s.interface, self.publisher.open)
            if self.rerequest is not None:
                await _listening("re-request", s.host, s.rerequest_port, self.rerequest.start)
            if s.snapshot_port is not None:
                await _listening("snapshot", s.host, s.snapshot_port, self.snapshot.start)
            if self.websocket is not None:
                await _listening("WebSocket", s.host, s.ws_port, self.websocket.start)
        except FeedError:
            await self.close()
            raise
        return self

    def go_live(self):
        """Send from now on (after the WAL's feed is rebuilt); log where each part is."""
        self.live = True
        for line in self.describe():
            log.info("%s", line)
        if self.replayed:
            log.info("feed session %s continues at sequence %d (%d messages rebuilt from the "
                     "WAL, not sent again)", self.settings.session, self.next_sequence,
                     self.replayed)
        if self.publisher is not None:
            self.publisher.start_heartbeats()

    async def close(self):
        """Close every socket; after the end of session the publisher repeats it first."""
        if self.publisher is not None:
            await self.publisher.close(end_session=False)
        if self.rerequest is not None:
            self.rerequest.close()
        await self.snapshot.close()
        if self.websocket is not None:
            await self.websocket.close()
        self.live = False

    # -- where and how much ----------------------------------------------------------------

    @property
    def next_sequence(self):
        return self.snapshot.next_sequence

    @property
    def feed_address(self):
        """``(group, port)`` of the multicast feed, or None."""
        return None if self.publisher is None else (self.publisher.group, self.publisher.port)

    @property
    def rerequest_address(self):
        """``(host, port)`` of the re-request server, or None."""
        return None if self.rerequest is None else self.rerequest.address

    @property
    def snapshot_address(self):
        """``(host, port)`` of the snapshot server, or None."""
        return self.snapshot.address

    @property
    def ws_address(self):
        """``(host, port)`` of the WebSocket server, or None."""
        return None if self.websocket is None else self.websocket.address

    def describe(self):
        """One line per part: where it listens or sends, or that it is off."""
        s = self.settings

        def at(address):
            return f"{address[0]}:{address[1]}"

        feed = self.feed_address
        return [
            f"feed: MoldUDP64 session {s.session} multicast to {at(feed)} from interface "
            f"{s.interface}, TTL {s.ttl}" if feed else "feed: multicast off",
            f"feed: re-request (MoldUDP64, UDP) on {at(self.rerequest_address)}, keeping "
            f"{s.retransmit_messages:,} messages"
            + (f" for {s.retransmit_seconds:g} s" if s.retransmit_seconds else "")
            if self.rerequest_address else "feed: re-request off",
            f"feed: snapshot (SoupBinTCP) on {at(self.snapshot_address)}"
            if self.snapshot_address else "feed: snapshot off",
            f"feed: WebSocket L1/L2 on ws://{at(self.ws_address)}"
            if self.ws_address else "feed: WebSocket off",
        ]

    def status(self):
        """Counts and addresses, for the venue's status."""
        out = {"next_sequence": self.next_sequence, "replayed": self.replayed,
               "snapshots": self.snapshot.served}
        if self.publisher is not None:
            out.update(group=list(self.feed_address), packets=self.publisher.packets,
                       heartbeats=self.publisher.heartbeats, dropped=self.publisher.dropped)
        if self.rerequest is not None:
            out.update(rerequests=self.rerequest.requests,
                       retransmitted=self.rerequest.packets_sent)
        if self.websocket is not None:
            out.update(ws_clients=len(self.websocket.clients))
        return out


def _free_udp_port():
    """A UDP port unused on this host now (for a multicast port of 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _opening(what, address, open_):
    try:
        open_()
    except OSError as exc:
        raise FeedError(f"cannot send {what} {address}: {exc.strerror or exc}") from exc


async def _listening(what, host, port, start):
    try:
        await start()
    except OSError as exc:
        reason = "port in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise FeedError(f"cannot listen for {what} on {host}:{port}: {reason}") from exc
