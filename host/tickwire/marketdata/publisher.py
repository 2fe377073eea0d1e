"""Puts the MoldUDP64 feed on UDP multicast, with heartbeats and end of session.

A :class:`MulticastPublisher` is a ``FeedPublisher`` sink: ``publisher(packet, timestamp_ns)``
sends one downstream packet to the group. It learns the session name and the next sequence
number from the packets themselves, so when the feed is idle for ``heartbeat_interval`` it
sends a heartbeat (count 0, next sequence number), and after the end of session it sends
end-of-session packets in their place until :meth:`close`. Listeners (the re-request
server's history, the snapshot server) see every data packet before it goes on the wire.
"""

import asyncio
import logging
import socket
import struct
import time

from tickwire.protocol import moldudp64

__all__ = ["MulticastPublisher", "multicast_sender"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">10sQH")


def multicast_sender(interface="127.0.0.1", ttl=1, loopback=True):
    """A non-blocking UDP socket set to send multicast out of ``interface``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if loopback else 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


class MulticastPublisher:
    """MoldUDP64 packets to a multicast group.

    Parameters
    ----------
    group : str
        IPv4 multicast group.
    port : int
        UDP destination port.
    interface : str
        Address of the interface to send from (``127.0.0.1`` for loopback).
    ttl : int
        IP multicast time to live (1: this subnet only).
    loopback : bool
        ``IP_MULTICAST_LOOP``: deliver to receivers on this host too.
    session : str, optional
        Session name for heartbeats sent before the first packet.
    heartbeat_interval : float
        Idle seconds before a heartbeat (Nassau: 1 s).
    end_of_session_repeats : int
        End-of-session packets sent by :meth:`close`, ``heartbeat_interval / 4`` apart.
    listeners : iterable of callable
        Each called as ``listener(packet, timestamp_ns)`` with every data and end-of-session
        packet, before it is sent.

    Members
    -------
    next_sequence : int
    packets, heartbeats, dropped : int
        Counts of packets sent, heartbeats sent and packets the socket refused (send buffer
        full: receivers get them back by re-request).
    """

    def __init__(self, group, port, interface="127.0.0.1", ttl=1, loopback=True,
                 session=None, heartbeat_interval=1.0, end_of_session_repeats=3,
                 listeners=()):
        self.group, self.port, self.interface = group, port, interface
        self.ttl, self.loopback = ttl, loopback
        self.session = session
        self.heartbeat_interval = heartbeat_interval
        self.end_of_session_repeats = end_of_session_repeats
        self.listeners = list(listeners)
        self.next_sequence = 1
        self.ended = False
        self.packets = self.heartbeats = self.dropped = 0
        self._sock = None
        self._task = None
        self._last_send = time.monotonic()

    async def start(self):
        """Open the socket and start the heartbeat task."""
        self.open()
        self.start_heartbeats()
        return self

    def open(self):
        """Open the socket (raises OSError if ``interface`` cannot send multicast)."""
        self._sock = multicast_sender(self.interface, self.ttl, self.loopback)

    def start_heartbeats(self):
        """Send heartbeats from now on while idle, the first one at once (it tells receivers
        the next sequence number, e.g. after a restart)."""
        if self.session is not None and not self.ended:
            self.send(self._idle_packet())
            self.heartbeats += 1
        self._task = asyncio.get_running_loop().create_task(self._heartbeats())

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()

    def __call__(self, packet, timestamp_ns=None):
        """Publish one downstream packet (the ``FeedPublisher`` sink)."""
        self.track(packet)
        for listener in self.listeners:
            listener(packet, timestamp_ns)
        self.send(packet)

    def track(self, packet):
        """Learn the session and the next sequence number from a packet (sent or not: a
        packet published before a restart is tracked, not sent again)."""
        session, sequence, count = _HEADER.unpack_from(packet)
        if self.session is None:
            self.session = session.decode("ascii").rstrip(" ")
        if count == moldudp64.END_OF_SESSION:
            self.ended = True
            self.next_sequence = sequence
        elif count != moldudp64.HEARTBEAT:
            self.next_sequence = sequence + count

    def send(self, packet):
        """Send raw bytes to the group; a full send buffer drops them (counted)."""
        self._last_send = time.monotonic()
        try:
            self._sock.sendto(packet, (self.group, self.port))
            self.packets += 1
        except (BlockingIOError, InterruptedError):
            self.dropped += 1

    def _idle_packet(self):
        if self.ended:
            return moldudp64.encode_end_of_session(self.session, self.next_sequence)
        return moldudp64.encode_heartbeat(self.session, self.next_sequence)

    async def _heartbeats(self):
        tick = self.heartbeat_interval / 4
        while True:
            await asyncio.sleep(tick)
            if self.session is not None and \
                    time.monotonic() - self._last_send >= self.heartbeat_interval:
                self.send(self._idle_packet())
                self.heartbeats += 1

    async def close(self, end_session=True):
        """Send end of session a few times, stop heartbeats and close the socket.

        ``end_session=False`` sends it only if the feed already ended: otherwise the session
        goes on (a restarted venue continues it).
        """
        if self._sock is None:
            return
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.session is not None and (end_session or self.ended):
            self.ended = True
            for i in range(self.end_of_session_repeats):
                if i:
                    await asyncio.sleep(self.heartbeat_interval / 4)
                self.send(self._idle_packet())
        self._sock.close()
        self._sock = None
