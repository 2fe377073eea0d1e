"""Snapshot server for late joiners, in the manner of Nasdaq GLIMPSE 5.0, over SoupBinTCP.

After a Login Request the server answers Login Accepted, then the current state of the
book as ordinary ITCH 5.0 messages, each in a SoupBinTCP Sequenced Data packet:

1. the last System Event (``S``), if any;
2. per symbol, in locate order: its Stock Directory (``R``), its last Stock Trading Action
   (``H``), then one Add Order (``A``) per resting order, in priority order (each price
   level oldest first; odd lots included). ``A`` messages carry the timestamp of the last
   feed message applied, not the order's original one;
3. an End of Snapshot message, as GLIMPSE defines it: type ``G`` then the MoldUDP64
   sequence number of the next feed message, 20 ASCII characters, left-justified and
   space-padded (:data:`END_OF_SNAPSHOT`). The snapshot is the book after every feed
   message below that number and none from it on: a subscriber applies the multicast
   messages from that number on.

The snapshot is built in one go without yielding to the event loop, so it is consistent
with exactly one sequence number even while the feed goes on. The client then sends Logout
Request (the server also closes the connection after ``linger`` seconds). Last trade and
volume are not part of a GLIMPSE snapshot: a late joiner learns them from the next trade.
"""

import asyncio
import logging
import struct

from tickwire.marketdata.book import SubscriberBook
from tickwire.protocol import itch, soupbintcp
from tickwire.protocol.fields import A, MessageSpec

__all__ = ["END_OF_SNAPSHOT", "SnapshotServer", "fetch_snapshot", "SnapshotError"]

log = logging.getLogger(__name__)

END_OF_SNAPSHOT = MessageSpec(b"G", "EndOfSnapshot", [A("sequence_number", 20)])
"""GLIMPSE 5.0 End of Snapshot: the next MoldUDP64 sequence number as ASCII."""

_HEADER = struct.Struct(">10sQH")
_BLOCK = struct.Struct(">H")
_TIMESTAMP = struct.Struct(">HI")
_ADD = itch.SPECS[b"A"]


class SnapshotError(Exception):
    """The snapshot server refused the login or closed before the end of the snapshot."""


class SnapshotServer:
    """Keeps a book from the feed packets and serves it as GLIMPSE-like snapshots.

    Parameters
    ----------
    session : str
        SoupBinTCP session name sent in Login Accepted (the feed's, conventionally).
    host, port : str, int
        Where to listen (port 0: any free port, see :attr:`address`).
    username, password : str, optional
        Credentials required; ``None`` accepts any login.
    linger : float
        Seconds to wait for the client's login, for each part of the snapshot to be read,
        and for the client's logout, before closing.

    Members
    -------
    book : SubscriberBook
    next_sequence : int
        Sequence number of the next feed message (the snapshot's consistency point).
    served : int
        Snapshots sent whole.
    stalled : int
        Clients dropped because they stopped reading for ``linger`` seconds mid-snapshot
        (so a client that never reads holds no more than the socket buffers).
    """

    def __init__(self, session, host="127.0.0.1", port=0, username=None, password=None,
                 linger=5.0):
        self.session = session
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.linger = linger
        self.book = SubscriberBook()
        self.next_sequence = 1
        self.timestamp = 0
        self.served = self.stalled = 0
        self._server = None

    # -- feed side -------------------------------------------------------------------------

    def on_packet(self, packet, timestamp_ns=None):
        """Apply one downstream MoldUDP64 packet (a publisher listener); gaps raise.

        Returns the set of locates the packet changed.
        """
        _, sequence, count = _HEADER.unpack_from(packet)
        touched = set()
        if count == 0 or count == 0xFFFF:
            return touched
        if sequence != self.next_sequence:
            raise ValueError(f"snapshot server: packet {sequence}, expected "
                             f"{self.next_sequence}")
        offset, apply = _HEADER.size, self.book.apply
        msg = b""
        for _ in range(count):
            (length,) = _BLOCK.unpack_from(packet, offset)
            msg = packet[offset + 2:offset + 2 + length]
            touched.add(apply(msg))
            offset += 2 + length
        high, low = _TIMESTAMP.unpack_from(msg, 5)
        self.timestamp = (high << 32) | low
        self.next_sequence = sequence + count
        return touched

    def snapshot(self):
        """``(messages, next_sequence)``: the book as ITCH messages, End of Snapshot last."""
        book, ts = self.book, self.timestamp
        out = [book.system] if book.system is not None else []
        by_locate = {locate: [] for locate in book.directory}
        for ref, o in book.book.orders.items():
            by_locate.setdefault(o.locate, []).append((ref, o))
        for locate in sorted(by_locate):
            stock = book.book.stocks.get(locate, "")
            if locate in book.directory:
                out.append(book.directory[locate])
            if locate in book.trading:
                out.append(book.trading[locate])
            for ref, o in by_locate[locate]:
                out.append(_ADD.encode(stock_locate=locate, timestamp=ts,
                                       order_reference_number=ref, buy_sell_indicator=o.side,
                                       shares=o.shares, stock=stock, price=o.price))
        out.append(END_OF_SNAPSHOT.encode(sequence_number=str(self.next_sequence)))
        return out, self.next_sequence

    # -- network side ----------------------------------------------------------------------

    @property
    def address(self):
        """``(host, port)`` the server listens on (None when it does not)."""
        if self._server is None:
            return None
        return self._server.sockets[0].getsockname()[:2]

    async def start(self):
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        return self

    async def close(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader, writer):
        framer = soupbintcp.Framer()
        try:
            packet = await asyncio.wait_for(_read_packet(reader, framer), self.linger)
            if packet is None or packet[0] != b"L":
                return
            login = soupbintcp.decode_payload(b"L", packet[1])
            if self.username is not None and (login.username != self.username or
                                              login.password != self.password):
                writer.write(soupbintcp.login_rejected("A"))
                await writer.drain()
                return
            if login.session not in ("", self.session):
                writer.write(soupbintcp.login_rejected("S"))
                await writer.drain()
                return
            messages, sequence = self.snapshot()
            writer.write(soupbintcp.login_accepted(self.session, 1))
            for i in range(0, len(messages), 512):
                writer.write(b"".join(soupbintcp.sequenced_data(m)
                                      for m in messages[i:i + 512]))
                try:
                    await asyncio.wait_for(writer.drain(), self.linger)
                except asyncio.TimeoutError:
                    self.stalled += 1
                    log.warning("snapshot client %s stopped reading: dropped after %g s with "
                                "%d of %d messages sent", writer.get_extra_info("peername"),
                                self.linger, i, len(messages))
                    writer.transport.abort()
                    return
            self.served += 1
            log.info("snapshot of %d messages, consistent with sequence %d", len(messages),
                     sequence)
            await asyncio.wait_for(_read_packet(reader, framer), self.linger)
        except (asyncio.TimeoutError, ConnectionError, ValueError) as exc:
            log.info("snapshot connection ended: %r", exc)
        finally:
            writer.close()


async def _read_packet(reader, framer):
    while True:
        data = await reader.read(65536)
        if not data:
            return None
        packets = framer.feed(data)
        if packets:
            return packets[0]


async def fetch_snapshot(host, port, username="", password="", timeout=10.0):
    """Log in to a snapshot server and read one snapshot.

    Returns
    -------
    messages : list of bytes
        The ITCH messages, End of Snapshot excluded.
    next_sequence : int
        MoldUDP64 sequence number to apply the feed from.

    Raises
    ------
    SnapshotError
        On Login Rejected or a connection closed before End of Snapshot.
    asyncio.TimeoutError
        If the snapshot takes longer than ``timeout``.
    """
    async def run():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(soupbintcp.login_request(username, password))
            framer, messages = soupbintcp.Framer(), []
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise SnapshotError("snapshot server closed before End of Snapshot")
                for kind, payload in framer.feed(data):
                    if kind == b"J":
                        reason = soupbintcp.decode_payload(kind, payload).reason
                        raise SnapshotError(f"snapshot login rejected ({reason})")
                    if kind != b"S":
                        continue
                    if payload[:1] == b"G":
                        writer.write(soupbintcp.logout_request())
                        await writer.drain()
                        end = END_OF_SNAPSHOT.decode(payload)
                        return messages, int(end.sequence_number)
                    messages.append(payload)
        finally:
            writer.close()

    return await asyncio.wait_for(run(), timeout)
