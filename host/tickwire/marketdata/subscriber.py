"""A MoldUDP64 multicast subscriber: gap recovery, late join by snapshot, L3/L2/L1 books.

The subscriber keeps the next sequence number it expects and the highest one the stream has
shown (data packets' ``sequence + count``, heartbeats' and end of session's ``sequence``).
Messages are applied in sequence order exactly once:

* below the expected number: duplicates, skipped;
* at it: applied, then whatever was held back and now follows;
* above it: held back, and the gap (from the expected number to the first message held, or
  to the highest shown; at most 0xFFFE) is requested from the re-request server. The request
  is sent again if the gap is still open ``rerequest_interval`` seconds later (checked as
  packets arrive and four times per interval), or at once when the previous answer has been
  applied and a gap remains.

Requests go out from a socket of their own, so the answers (unicast downstream packets) are
told apart from the multicast. An answer that starts above the first number asked for means
the server no longer holds the messages in between (the re-request server's rule); the subscriber
asks once more for exactly those, and if the second answer again starts above them it
declares them lost: with a snapshot server it resynchronises from a snapshot, without one it
calls ``on_loss`` and goes on from the first message the server has (``stale`` is then
True: the book may be wrong).

Late join: with a snapshot server, :meth:`start` holds back every multicast message while it
fetches a snapshot (``tickwire.marketdata.snapshot``), builds a new book from it, then applies the held-back
messages from the snapshot's sequence number on (requesting what is missing).
"""

import asyncio
import logging
import random
import socket
import struct
import time

from tickwire.marketdata.book import SubscriberBook
from tickwire.marketdata.snapshot import fetch_snapshot
from tickwire.protocol import moldudp64

__all__ = ["Subscriber", "PacketLoss", "multicast_receiver"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">10sQH")
_HEAD = struct.Struct(">10sQH2xB")     # header, first block's length, first type byte
_BLOCK = struct.Struct(">H")
_MAX_REQUEST = moldudp64.MAX_MESSAGE_COUNT
_ALWAYS = float("inf")


def multicast_receiver(group, port, interface="127.0.0.1", rcvbuf=1 << 22):
    """A non-blocking UDP socket bound to ``group:port`` and joined to it on ``interface``.

    ``SO_REUSEADDR`` lets several receivers on one host share the port, each getting every
    datagram.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((group, port))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(group) + socket.inet_aton(interface))
    sock.setblocking(False)
    return sock


class PacketLoss:
    """Loss injected on the receiving side: drops a share of the packets at random, and
    optionally a burst of consecutive ones (to try recovery against a real feed).

    Parameters
    ----------
    rate : float
        Share of packets dropped, 0 to 1.
    seed : int
        Random seed (the same seed drops the same packets of the same stream).
    burst : tuple of (int, int), optional
        ``(first, count)``: also drop packets ``first`` to ``first + count - 1`` (from 0).

    Members
    -------
    seen, dropped : int
        Packets seen and dropped.
    dropped_messages : int
        Feed messages in the packets dropped.
    """

    def __init__(self, rate, seed=1, burst=None):
        if not 0 <= rate < 1:
            raise ValueError(f"loss rate {rate} is not in [0, 1)")
        self.rate, self.burst = rate, burst
        self._random = random.Random(seed)
        self.seen = self.dropped = self.dropped_messages = 0

    def __call__(self, packet):
        """True to drop this packet."""
        index = self.seen
        self.seen += 1
        burst = self.burst
        if (burst is not None and burst[0] <= index < burst[0] + burst[1]) or \
                self._random.random() < self.rate:
            self.dropped += 1
            count = int.from_bytes(packet[18:20], "big")
            if count != moldudp64.END_OF_SESSION:
                self.dropped_messages += count
            return True
        return False


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, handle, reply):
        self.handle, self.reply = handle, reply

    def datagram_received(self, data, addr):
        self.handle(data, self.reply)

    def error_received(self, exc):
        log.warning("feed socket error: %r", exc)


class Subscriber:
    """Joins a MoldUDP64 multicast feed and keeps its book.

    Parameters
    ----------
    group, port : str, int
        Multicast group and port.
    interface : str
        Address of the interface to join on (``127.0.0.1`` for loopback).
    rerequest : tuple of (str, int), optional
        Re-request server address; without one, gaps stay open.
    snapshot : tuple of (str, int), optional
        Snapshot server address: join through a snapshot, and recover from lost data.
    snapshot_login : tuple of (str, str)
        Username and password for the snapshot server.
    on_update : callable, optional
        ``on_update(locate)`` once per packet for each locate it changed (and for every
        locate after a snapshot).
    on_message : callable, optional
        ``on_message(sequence, message_bytes)`` for every feed message applied, in order.
    on_loss : callable, optional
        ``on_loss(first, end)``: messages ``first`` to ``end - 1`` are lost for good.
    rerequest_interval : float
        Seconds before a gap is requested again.
    session : str, optional
        Accept this session only (default: the first one seen).
    on_snapshot : callable, optional
        ``on_snapshot(messages, next_sequence)`` with each snapshot applied (its ITCH
        messages, then the sequence number the feed goes on from).
    drop : callable, optional
        ``drop(packet_bytes)`` True discards a multicast packet on receipt
        (:class:`PacketLoss`: loss injected to try recovery). Answers are never dropped.

    Members
    -------
    book : SubscriberBook
    expected : int
        Next sequence number to apply.
    high : int
        Highest next sequence number the stream has shown.
    ended : bool
        End of session seen.
    complete : asyncio.Event
        Set once the end of session is seen and every message before it applied.
    stale : bool
        Messages were lost without a snapshot to recover from.
    messages, packets, duplicates, requests, replies, lost, errors, dropped : int
        Counters.
    """

    def __init__(self, group, port, interface="127.0.0.1", rerequest=None, snapshot=None,
                 snapshot_login=("", ""), on_update=None, on_message=None, on_loss=None,
                 rerequest_interval=1.0, session=None, on_snapshot=None, drop=None):
        self.group, self.port, self.interface = group, port, interface
        self.rerequest, self.snapshot = rerequest, snapshot
        self.snapshot_login = snapshot_login
        self.on_message, self.on_loss = on_message, on_loss
        self.on_snapshot, self.drop = on_snapshot, drop
        self.dropped = 0
        self.rerequest_interval = rerequest_interval
        self._session = None if session is None else session.encode("ascii").ljust(10, b" ")
        self.book = SubscriberBook()
        self.expected = 1
        # ``messages`` is ``expected - _unapplied`` and ``packets`` is ``expected - _unpacketed``
        # (the fast path applies one message per packet and moves ``expected`` only); ``high``
        # is ``max(_high, expected)``. ``_watch`` is ``_high``, or infinity once ended: the fast
        # path looks for gaps only when the next number is below it.
        self._unapplied = self._unpacketed = 1
        self._high = self._watch = 1
        self._ended = self.stale = False
        self.complete = asyncio.Event()
        self.synced = asyncio.Event()
        self.duplicates = self.requests = 0
        self.replies = self.lost = self.errors = self.foreign = 0
        self._ahead = {}
        self._request = None            # (first, end, time) of the last request
        self._probe = None
        self._syncing = False
        self._on_update = on_update
        self._fast = None               # _session when the fast path may run, else None
        self._regate()
        self._transports = []
        self._requester = None
        self._tasks = []

    # -- life cycle ------------------------------------------------------------------------

    async def start(self):
        """Join the group; with a snapshot server, start the late join."""
        loop = asyncio.get_running_loop()
        sock = multicast_receiver(self.group, self.port, self.interface)
        handle = self._on_packet if self.drop is None else self._on_lossy_packet
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(handle, False), sock=sock)
        self._transports.append(transport)
        if self.rerequest is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Receiver(self._on_packet, True), local_addr=(self.interface, 0))
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            self._transports.append(transport)
            self._requester = transport
        self._tasks.append(loop.create_task(self._ticker()))
        if self.snapshot is not None:
            self._start_resync()
        else:
            self.synced.set()
        return self

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        self._requester = None

    async def _ticker(self):
        while True:
            await asyncio.sleep(self.rerequest_interval / 4)
            self._check_gap()

    # -- packets ---------------------------------------------------------------------------

    @property
    def messages(self):
        return self.expected - self._unapplied

    @messages.setter
    def messages(self, value):
        self._unapplied = self.expected - value

    @property
    def packets(self):
        return self.expected - self._unpacketed

    @packets.setter
    def packets(self, value):
        self._unpacketed = self.expected - value

    @property
    def high(self):
        return max(self._high, self.expected)

    @high.setter
    def high(self, value):
        self._high = value
        self._watch = _ALWAYS if self._ended else value

    @property
    def ended(self):
        return self._ended

    @ended.setter
    def ended(self, value):
        self._ended = value
        self._watch = _ALWAYS if value else self._high

    @property
    def on_update(self):
        return self._on_update

    @on_update.setter
    def on_update(self, value):
        self._on_update = value
        self._regate()

    def _regate(self):
        """Open the fast path (``_fast`` = the session) unless syncing or notifying updates."""
        self._fast = self._session if not self._syncing and self._on_update is None else None

    def _advance(self, expected):
        """A slow path applied the messages up to ``expected`` (they count as messages)."""
        self._unpacketed += expected - self.expected
        self.expected = expected

    def _skip_to(self, expected):
        """Go on from ``expected`` without applying anything up to it."""
        delta = expected - self.expected
        self._unpacketed += delta
        self._unapplied += delta
        self.expected = expected

    @property
    def book(self):
        return self._book

    @book.setter
    def book(self, book):
        self._book = book
        self._handlers = book.handlers

    def _on_packet(self, data, reply, _head=_HEAD.unpack_from, _block=_BLOCK.unpack_from):
        """One datagram (multicast, or a re-request answer if ``reply``).

        The common case is inline: the packet starts at the next number expected, nothing
        is held back, no ``on_update`` to call. The MoldUDP64 header and the first
        message's type byte come from one ``unpack_from``, and the book's handlers read
        their fields straight out of the packet.
        """
        try:
            session, seq, count, code = _head(data)
        except struct.error:                    # heartbeat, end of session, or runt
            self._on_other_packet(data, reply)
            return
        if seq != self.expected or session != self._fast or reply or self._ahead:
            self._on_other_packet(data, reply)
            return
        if count == 1:
            try:
                self._handlers[code](data, 22)
            except ValueError as exc:
                self._book_error(exc)
            if self.on_message is not None:
                self.on_message(seq, data[22:])
            seq += 1
            self.expected = seq         # also counts the message and the packet
            if self._watch > seq:
                self._check_gap()
            return
        if not 1 < count < 0xFFFF:
            self._on_other_packet(data, reply)
            return
        handlers, on_message = self._handlers, self.on_message
        end = seq + count
        offset = 20
        try:
            for s in range(seq, end):
                (length,) = _block(data, offset)
                start = offset + 2
                offset = start + length
                try:
                    handlers[data[start]](data, start)
                except ValueError as exc:
                    self._book_error(exc)
                if on_message is not None:
                    on_message(s, data[start:offset])
        except (struct.error, IndexError):
            self.errors += 1
            end = s
        self._unpacketed += end - seq - 1
        self.expected = end
        if self._watch > end:
            self._check_gap()

    def _on_lossy_packet(self, data, reply):
        if self.drop(data):
            self.dropped += 1
        else:
            self._on_packet(data, reply)

    def _on_other_packet(self, data, reply, _header=_HEADER.unpack_from):
        try:
            session, seq, count = _header(data)
        except struct.error:
            self.errors += 1
            return
        if session != self._session:
            if self._session is not None:
                self.foreign += 1
                return
            self._session = session
            self._regate()
        self.packets += 1
        expected = self.expected
        if seq == expected and 0 < count < 0xFFFF and not self._ahead and not self._syncing:
            self._in_order(data, seq, count, reply)
            return
        if count == 0 or count == 0xFFFF:
            if count == 0xFFFF:
                self.ended = True
            if seq > self.high:
                self.high = seq
            self._check_gap()
            return
        end = seq + count
        if end > self.high:
            self.high = end
        if reply:
            self.replies += 1
            if seq > expected and not self._syncing:
                probe = self._probe
                if probe is not None and probe[0] == expected:
                    if seq <= probe[1]:
                        self._lose(seq)
                        expected = self.expected
                else:
                    self._probe = (expected, seq)
                    self._send_request(expected, seq - expected)
        if end <= expected and not self._syncing:
            self.duplicates += count
            self._check_gap()
            return
        ahead = self._ahead
        touched = set()
        apply, on_message = self.book.apply, self.on_message
        syncing = self._syncing
        offset = 20
        try:
            for s in range(seq, end):
                (length,) = _BLOCK.unpack_from(data, offset)
                start = offset + 2
                offset = start + length
                if s == expected and not syncing:
                    msg = data[start:offset]
                    try:
                        touched.add(apply(msg))
                    except ValueError as exc:
                        self._book_error(exc)
                    if on_message is not None:
                        on_message(s, msg)
                    expected += 1
                    if ahead:
                        ahead.pop(s, None)
                elif s > expected or syncing:
                    if s in ahead:
                        self.duplicates += 1
                    else:
                        ahead[s] = data[start:offset]
                else:
                    self.duplicates += 1
        except struct.error:
            self.errors += 1
        self._advance(expected)
        if ahead and not syncing:
            self._drain(touched)
            return
        if self.on_update is not None:
            for locate in touched:
                self.on_update(locate)
        self._check_gap()

    def _in_order(self, data, seq, count, reply, _block=_BLOCK.unpack_from):
        """The common case: the packet starts at the expected number, nothing held back."""
        handlers, on_message, on_update = self._handlers, self.on_message, self.on_update
        end = seq + count
        if reply:
            self.replies += 1
        touched = set() if on_update is not None else None
        offset = 20
        try:
            for s in range(seq, end):
                (length,) = _block(data, offset)
                start = offset + 2
                offset = start + length
                try:
                    locate = handlers[data[start]](data, start)
                except ValueError as exc:
                    self._book_error(exc)
                else:
                    if touched is not None:
                        touched.add(locate)
                if on_message is not None:
                    on_message(s, data[start:offset])
        except (struct.error, IndexError):
            self.errors += 1
            end = s
        self._advance(end)
        if end > self.high:
            self.high = end
        if on_update is not None:
            for locate in touched:
                on_update(locate)
        if self.high > end or self.ended:
            self._check_gap()

    def _book_error(self, exc):
        self.errors += 1
        if not self.stale:
            log.error("feed does not apply to the book: %s", exc)
            if self.snapshot is not None:
                self._start_resync()

    # -- gaps ------------------------------------------------------------------------------

    def _check_gap(self):
        expected = self.expected
        if self._syncing:
            return
        if expected >= self.high:
            self._request = None
            if self.ended:
                self.complete.set()
            return
        if self._requester is None:
            return
        now = time.monotonic()
        request = self._request
        if request is not None and expected < request[1] and \
                now - request[2] < self.rerequest_interval:
            return
        if self._probe is not None and self._probe[0] == expected:
            self._probe = None
        hole_end = min(self._ahead) if self._ahead else self.high
        if hole_end <= expected:
            self._ahead = {s: m for s, m in self._ahead.items() if s > expected}
            hole_end = min(self._ahead) if self._ahead else self.high
        self._send_request(expected, min(hole_end - expected, _MAX_REQUEST), now)

    def _send_request(self, first, count, now=None):
        if self._requester is None or count < 1:
            return
        session = self._session.decode("ascii").rstrip(" ")
        self._requester.sendto(moldudp64.encode_request(session, first, count), self.rerequest)
        self.requests += 1
        self._request = (first, first + count, time.monotonic() if now is None else now)

    def _lose(self, upto):
        first = self.expected
        log.warning("feed messages %d to %d are no longer held by the re-request server",
                    first, upto - 1)
        self._probe = None
        if self.on_loss is not None:
            self.on_loss(first, upto)
        if self.snapshot is not None:
            self._start_resync()
            return
        self.stale = True
        self.lost += upto - first
        self._skip_to(upto)
        self._request = None

    # -- snapshots -------------------------------------------------------------------------

    def _start_resync(self):
        if not self._syncing:
            self._syncing = True
            self._regate()
            self.synced.clear()
            self._tasks.append(asyncio.get_running_loop().create_task(self._resync()))

    async def _resync(self):
        host, port = self.snapshot
        username, password = self.snapshot_login
        while True:
            try:
                messages, sequence = await fetch_snapshot(host, port, username, password)
                break
            except (OSError, asyncio.TimeoutError, Exception) as exc:
                log.warning("snapshot from %s:%s failed (%r); trying again in 1 s",
                            host, port, exc)
                await asyncio.sleep(1.0)
        book = SubscriberBook()
        for msg in messages:
            book.apply(msg)
        self.book = book
        self.stale = False
        self._probe = self._request = None
        self._skip_to(sequence)
        if sequence > self.high:
            self.high = sequence
        self._ahead = {s: m for s, m in self._ahead.items() if s >= sequence}
        self._syncing = False
        self._regate()
        self.synced.set()
        if self.on_snapshot is not None:
            self.on_snapshot(messages, sequence)
        log.info("joined from a snapshot of %d messages at sequence %d", len(messages),
                 sequence)
        self._drain()
        if self.on_update is not None:
            for locate in self.book.book.stocks:
                self.on_update(locate)

    def _drain(self, touched=None):
        ahead, expected = self._ahead, self.expected
        touched = set() if touched is None else touched
        while expected in ahead:
            msg = ahead.pop(expected)
            try:
                touched.add(self.book.apply(msg))
            except ValueError as exc:
                self._book_error(exc)
            if self.on_message is not None:
                self.on_message(expected, msg)
            expected += 1
        self._advance(expected)
        if self.on_update is not None:
            for locate in touched:
                self.on_update(locate)
        self._check_gap()

    # -- waiting ---------------------------------------------------------------------------

    async def wait_for(self, sequence, timeout=10.0):
        """Wait until every message below ``sequence`` is applied (raises on timeout)."""
        async def poll():
            while self.expected < sequence or self._syncing:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(poll(), timeout)
