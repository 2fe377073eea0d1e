"""SoupBinTCP 3.0 packets and stream framing (protocols.md §3).

On the wire a packet is a U16 Packet Length (counting the type byte and the payload), the type
byte, then the payload. The fixed layouts (``L``, ``A``, ``J``) are :class:`~.fields.MessageSpec`
s whose ``length`` is the Packet Length value; their numeric fields are right-justified and
padded with spaces, as Nassau writes them.
"""

import enum
import struct

from tickwire.protocol.fields import A, C, MessageSet, MessageSpec, N

__all__ = [
    "PacketType", "LoginRejectReason", "SPECS", "MAX_LENGTH",
    "encode_packet", "decode_payload",
    "debug", "login_accepted", "login_rejected", "sequenced_data", "server_heartbeat",
    "end_of_session", "login_request", "unsequenced_data", "client_heartbeat", "logout_request",
    "Framer", "FramingError",
]

MAX_LENGTH = 0xFFFF
_LENGTH = struct.Struct(">H")


class PacketType(enum.StrEnum):
    """Packet Type byte."""

    DEBUG = "+"
    LOGIN_ACCEPTED = "A"
    LOGIN_REJECTED = "J"
    SEQUENCED_DATA = "S"
    SERVER_HEARTBEAT = "H"
    END_OF_SESSION = "Z"
    LOGIN_REQUEST = "L"
    UNSEQUENCED_DATA = "U"
    CLIENT_HEARTBEAT = "R"
    LOGOUT_REQUEST = "O"


class LoginRejectReason(enum.StrEnum):
    NOT_AUTHORIZED = "A"
    SESSION_NOT_AVAILABLE = "S"


SPECS = MessageSet([
    MessageSpec(b"L", "LoginRequest", [
        A("username", 6), A("password", 10), A("session", 10, default=""),
        N("sequence", 20, default=0)]),
    MessageSpec(b"A", "LoginAccepted", [A("session", 10), N("sequence", 20)]),
    MessageSpec(b"J", "LoginRejected", [C("reason")]),
], "SoupBinTCP")
"""Fixed-layout packets, from the type byte on (``SPECS[b"L"].length`` is 47)."""


def _type(packet_type):
    return packet_type.encode("ascii") if isinstance(packet_type, str) else bytes(packet_type)


def encode_packet(packet_type, payload=b""):
    """Frame ``payload`` as one packet of ``packet_type`` (``b"S"`` or ``"S"``)."""
    length = 1 + len(payload)
    if length > MAX_LENGTH:
        raise ValueError(f"SoupBinTCP: payload of {len(payload)} bytes exceeds {MAX_LENGTH - 1}")
    return _LENGTH.pack(length) + _type(packet_type) + bytes(payload)


def _encode_fixed(packet_type, **values):
    body = SPECS.encode(packet_type, **values)
    return _LENGTH.pack(len(body)) + body


def decode_payload(packet_type, payload):
    """Decode the payload of ``L``, ``A`` or ``J`` into a record, sessions fully stripped.

    Other packet types return ``payload`` unchanged.
    """
    packet_type = _type(packet_type)
    if packet_type not in SPECS:
        return payload
    record = SPECS[packet_type].decode(packet_type + bytes(payload))
    if "session" in record._fields:
        record = record._replace(session=record.session.strip(" "))
    return record


def debug(text):
    return encode_packet(b"+", _type(text))


def login_accepted(session, sequence):
    """Login Accepted: the session joined and the number of the next ``S`` packet."""
    return _encode_fixed(b"A", session=session, sequence=sequence)


def login_rejected(reason):
    return _encode_fixed(b"J", reason=reason)


def sequenced_data(message):
    return encode_packet(b"S", message)


def server_heartbeat():
    return encode_packet(b"H")


def end_of_session():
    return encode_packet(b"Z")


def login_request(username, password, session="", sequence=0):
    """Login Request; a blank session asks for the current one, sequence 0 for new messages."""
    return _encode_fixed(b"L", username=username, password=password, session=session,
                         sequence=sequence)


def unsequenced_data(message):
    return encode_packet(b"U", message)


def client_heartbeat():
    return encode_packet(b"R")


def logout_request():
    return encode_packet(b"O")


class FramingError(ValueError):
    """A Packet Length the stream cannot carry; ``packets`` are the complete packets that came
    before it in the same data (a receiver still answers those)."""

    def __init__(self, message, packets=()):
        super().__init__(message)
        self.packets = list(packets)


class Framer:
    """Splits a SoupBinTCP byte stream into packets, whatever the read boundaries.

    Parameters
    ----------
    max_length : int
        Largest Packet Length accepted; larger ones raise ValueError (the stream is then
        unusable).
    """

    def __init__(self, max_length=MAX_LENGTH):
        self._max_length = max_length
        self._buffer = bytearray()

    @property
    def buffered(self):
        """Bytes of an incomplete packet held back."""
        return len(self._buffer)

    def feed(self, data):
        """Add received bytes; return the completed packets as ``(type, payload)`` bytes pairs.

        Raises
        ------
        FramingError
            On a Packet Length of 0 or above ``max_length`` (a ValueError; it carries the
            packets completed before it).
        """
        buf = self._buffer
        buf += data
        packets, offset = [], 0
        while len(buf) - offset >= 2:
            (length,) = _LENGTH.unpack_from(buf, offset)
            if length == 0 or length > self._max_length:
                del buf[:offset]
                raise FramingError(
                    f"SoupBinTCP: packet length {length} not in 1…{self._max_length}", packets)
            end = offset + 2 + length
            if end > len(buf):
                break
            packets.append((bytes(buf[offset + 2:offset + 3]), bytes(buf[offset + 3:end])))
            offset = end
        del buf[:offset]
        return packets
