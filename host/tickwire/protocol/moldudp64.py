"""MoldUDP64 downstream and request packets, and a packetizer (protocols.md §2).

A packet is the 20-byte :data:`HEADER` (session A10, sequence number U64, message count U16)
followed by ``count`` blocks of a U16 length and the message bytes. Count 0 is a heartbeat and
0xFFFF the end of session; both carry the next sequence number and no blocks. A request has the
same 20 bytes, with the first sequence number wanted and the number of messages wanted.
"""

import struct
from typing import NamedTuple

from tickwire.protocol.fields import U16, U64, A, MessageSpec

__all__ = [
    "HEADER", "HEADER_LENGTH", "HEARTBEAT", "END_OF_SESSION", "MAX_MESSAGE_COUNT",
    "Packet", "encode_packet", "encode_heartbeat", "encode_end_of_session", "encode_request",
    "decode_packet", "decode_request", "Packetizer",
]

HEADER = MessageSpec(b"", "MoldHeader", [A("session", 10), U64("sequence"), U16("count")])
HEADER_LENGTH = HEADER.length
HEARTBEAT = 0
END_OF_SESSION = 0xFFFF
MAX_MESSAGE_COUNT = 0xFFFE

_BLOCK_LENGTH = struct.Struct(">H")


class Packet(NamedTuple):
    """A decoded downstream packet.

    Members
    -------
    session : str
        Session name without its padding.
    sequence : int
        Sequence number of ``messages[0]``, or the next one for heartbeat and end of session.
    count : int
        Message count field (0 heartbeat, 0xFFFF end of session).
    messages : tuple of bytes
    """

    session: str
    sequence: int
    count: int
    messages: tuple

    @property
    def is_heartbeat(self):
        return self.count == HEARTBEAT

    @property
    def is_end_of_session(self):
        return self.count == END_OF_SESSION


def _header(session, sequence, count):
    return HEADER.encode(session=session, sequence=sequence, count=count)


def encode_packet(session, sequence, messages):
    """Encode a data packet; an empty ``messages`` gives a heartbeat.

    Raises
    ------
    ValueError
        If there are more than 0xFFFE messages or one is longer than 65,535 bytes.
    """
    if len(messages) > MAX_MESSAGE_COUNT:
        raise ValueError(f"MoldUDP64: {len(messages)} messages, at most {MAX_MESSAGE_COUNT}")
    parts = [_header(session, sequence, len(messages))]
    for message in messages:
        if len(message) > 0xFFFF:
            raise ValueError(f"MoldUDP64: message of {len(message)} bytes, at most 65535")
        parts += (_BLOCK_LENGTH.pack(len(message)), message)
    return b"".join(parts)


def encode_heartbeat(session, next_sequence):
    """Encode a heartbeat carrying the next sequence number of the stream."""
    return _header(session, next_sequence, HEARTBEAT)


def encode_end_of_session(session, next_sequence):
    """Encode an end-of-session packet carrying the next sequence number of the stream."""
    return _header(session, next_sequence, END_OF_SESSION)


def encode_request(session, sequence, count):
    """Encode a re-request for ``count`` (1…0xFFFE) messages from ``sequence`` on."""
    if not 1 <= count <= MAX_MESSAGE_COUNT:
        raise ValueError(f"MoldUDP64 request: count {count} not in 1…{MAX_MESSAGE_COUNT}")
    return _header(session, sequence, count)


def _decode_header(buf, what):
    if len(buf) < HEADER_LENGTH:
        raise ValueError(f"MoldUDP64 {what}: {len(buf)} bytes, shorter than the 20-byte header")
    return HEADER.decode(bytes(buf[:HEADER_LENGTH]))


def decode_packet(buf):
    """Decode a downstream packet (data, heartbeat or end of session).

    Raises
    ------
    ValueError
        If the header is truncated, a block runs past the end, the count does not match the
        blocks, or bytes follow the last block.
    """
    session, sequence, count = _decode_header(buf, "packet")
    buf = memoryview(buf)
    offset, messages = HEADER_LENGTH, []
    expected = 0 if count in (HEARTBEAT, END_OF_SESSION) else count
    while offset < len(buf):
        if len(messages) == expected:
            raise ValueError(f"MoldUDP64 packet: invalid message count (claimed {count}, "
                             f"found more blocks or {len(buf) - offset} trailing bytes)")
        if offset + 2 > len(buf):
            raise ValueError(f"MoldUDP64 packet: truncated block length at offset {offset}")
        (length,) = _BLOCK_LENGTH.unpack_from(buf, offset)
        offset += 2
        if offset + length > len(buf):
            raise ValueError(f"MoldUDP64 packet: block {len(messages)} of {length} bytes runs "
                             f"{offset + length - len(buf)} bytes past the end")
        messages.append(bytes(buf[offset:offset + length]))
        offset += length
    if len(messages) != expected:
        raise ValueError(
            f"MoldUDP64 packet: invalid message count (claimed {count}, found {len(messages)})")
    return Packet(session, sequence, count, tuple(messages))


def decode_request(buf):
    """Decode a request packet into the header record (``session``, ``sequence``, ``count``)."""
    if len(buf) != HEADER_LENGTH:
        raise ValueError(f"MoldUDP64 request: {len(buf)} bytes, expected {HEADER_LENGTH}")
    header = _decode_header(buf, "request")
    if not 1 <= header.count <= MAX_MESSAGE_COUNT:
        raise ValueError(f"MoldUDP64 request: count {header.count} not in 1…{MAX_MESSAGE_COUNT}")
    return header


class Packetizer:
    """Packs a stream of messages into MoldUDP64 packets of at most ``max_payload`` bytes.

    Parameters
    ----------
    session : str
        Session name (at most 10 ASCII characters).
    max_payload : int
        Largest UDP payload, header included (Nassau uses 1,400).
    first_sequence : int
        Sequence number of the first message.

    Heartbeats and end of session carry the sequence number of the next message to go on the
    wire, which is :attr:`next_sequence` once :meth:`flush` has been called.
    """

    def __init__(self, session, max_payload=1400, first_sequence=1):
        HEADER.encode(session=session, sequence=first_sequence, count=0)
        if max_payload < HEADER_LENGTH + 2:
            raise ValueError(f"MoldUDP64: max_payload {max_payload} leaves no room for a block")
        self._session = session
        self._max_payload = max_payload
        self._sequence = first_sequence
        self._pending = []
        self._size = HEADER_LENGTH

    @property
    def next_sequence(self):
        """Sequence number the next added message will get."""
        return self._sequence + len(self._pending)

    def add(self, message):
        """Queue one message and return the packets this completes (0, 1 or 2).

        Raises
        ------
        ValueError
            If the message alone does not fit in a packet.
        """
        block = 2 + len(message)
        if HEADER_LENGTH + block > self._max_payload or len(message) > 0xFFFF:
            raise ValueError(f"MoldUDP64: message of {len(message)} bytes does not fit a "
                             f"{self._max_payload}-byte payload")
        done = self.flush() if self._size + block > self._max_payload else []
        self._pending.append(bytes(message))
        self._size += block
        if self._size == self._max_payload or len(self._pending) == MAX_MESSAGE_COUNT:
            done += self.flush()
        return done

    def flush(self):
        """Close the current packet, if it holds any message, and return it in a list."""
        if not self._pending:
            return []
        packet = encode_packet(self._session, self._sequence, self._pending)
        self._sequence += len(self._pending)
        self._pending, self._size = [], HEADER_LENGTH
        return [packet]

    def heartbeat(self):
        """Return a heartbeat carrying the sequence number of the next message to be sent."""
        return encode_heartbeat(self._session, self._sequence)

    def end_of_session(self):
        """Return an end-of-session packet; call :meth:`flush` first so nothing is lost."""
        if self._pending:
            raise ValueError("MoldUDP64: flush() pending messages before end of session")
        return encode_end_of_session(self._session, self._sequence)
