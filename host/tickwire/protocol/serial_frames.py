"""The serial link's frame format, defined once for the gateware and the host.

A frame on the wire is COBS-encoded and ends with a 0x00 delimiter. Decoded, it is::

    type (1 byte, ASCII letter) | payload | CRC-16 (2 bytes, big-endian)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection) over type and
payload; appended big-endian, the CRC register over the whole frame ends at 0 (the residue).
Multi-byte payload fields are little-endian, like the engine-link records.

Host → device frames:

=========  ======================================  ===========================================
type       payload                                 device's answer
=========  ======================================  ===========================================
``C``      link sequence (1), Command (53 bytes)   the command's EVENT frames; or NAK
``K``      grant (2): bytes the host can take      none; adds to the device's allowance
``Y``      allowance (2)                           sets the allowance, sends STATUS (hello)
``Q``      none                                    STATUS
``H``      none                                    none (host alive: the link LED)
``Z``      none                                    the feed's MoldUDP64 end-of-session packet
                                                   (an ``M`` frame), once; later ``Z``: none
=========  ======================================  ===========================================

Device → host frames: ``E`` Event (52 bytes); ``M`` one MoldUDP64 packet (raw bytes); ``T``
STATUS (:data:`STATUS_FIELDS`, then the engine's parameters, :func:`encode_params`); ``N`` NAK
(expected link sequence, reason); ``H`` heartbeat (no payload), sent after ``heartbeat``
cycles with nothing else sent.

Reliability. A command frame carries an 8-bit link sequence number; the device executes it only
if it is the one expected, else answers NAK ``S`` with the number it expects. A command frame
that fails its CRC, its COBS decoding or its length, or that lost a byte (UART overrun), is
dropped, counted and answered by NAK (reason ``C``, ``F`` or ``O``): the host sends it again.
So is a command frame that comes before the engine took the previous one (``B``): the receiver
never waits, so control frames always get through.
So a command runs once or not at all. Frames from the device carry no sequence number: one
failing its CRC is lost, and the host reports it as a failure (``LinkCorrupted``) instead of
guessing.

Flow control. The device sends a byte only while its *allowance* is not zero, and takes one
from it per byte (COBS bytes, delimiters included). The host grants what it has read (``K``),
so at most ``allowance`` bytes wait unread on the host side; ``Y`` resets it. A host that
stops reading stops the device's output, then the engine, then command intake; nothing is
dropped.
"""

from amaranth.lib import data
from tickwire.protocol.link import ModelParams

__all__ = [
    "COMMAND_FRAME",
    "CRC_BYTES",
    "HOST_FRAME_LENGTHS",
    "PARAMS_BYTES",
    "STATUS_BYTES",
    "STATUS_FIELDS",
    "STATUS_LAYOUT",
    "FrameType",
    "NakReason",
    "decode_params",
    "decode_status",
    "encode_params",
]


class FrameType:
    """Frame type bytes (ASCII letters, readable in a capture)."""
    COMMAND = ord("C")
    CREDIT = ord("K")
    HELLO = ord("Y")
    QUERY = ord("Q")
    HEARTBEAT = ord("H")
    END_SESSION = ord("Z")
    EVENT = ord("E")
    MOLD = ord("M")
    STATUS = ord("T")
    NAK = ord("N")


class NakReason:
    CRC = ord("C")
    FRAMING = ord("F")
    OVERFLOW = ord("O")
    SEQUENCE = ord("S")
    BUSY = ord("B")


CRC_BYTES = 2
COMMAND_FRAME = 1 + 1 + 53 + CRC_BYTES

#: Decoded length (type, payload and CRC) of every frame the device accepts.
HOST_FRAME_LENGTHS = {
    FrameType.COMMAND: COMMAND_FRAME,
    FrameType.CREDIT: 1 + 2 + CRC_BYTES,
    FrameType.HELLO: 1 + 2 + CRC_BYTES,
    FrameType.QUERY: 1 + CRC_BYTES,
    FrameType.HEARTBEAT: 1 + CRC_BYTES,
    FrameType.END_SESSION: 1 + CRC_BYTES,
}

#: The device's counters in a STATUS frame (16-bit counters wrap).
STATUS_FIELDS = (
    ("crc_errors", 16),       # frames dropped for a bad CRC
    ("framing_errors", 16),   # bad COBS, bad length or type, UART stop bit errors
    ("overflows", 16),        # frames that lost a byte (UART overrun), or commands while busy
    ("rx_frames", 16),        # good frames received
    ("tx_frames", 16),        # frames sent
    ("expected_seq", 8),      # the link sequence number of the next command
    ("allowance", 16),        # bytes the device may still send
    ("halted", 1),            # some symbol is halted (the halt LED)
    ("link_up", 1),           # a good frame came within the link timeout (the link LED)
    ("reserved", 6),
)
STATUS_LAYOUT = data.StructLayout(dict(STATUS_FIELDS))
STATUS_BYTES = STATUS_LAYOUT.size // 8

_PARAMS = (("max_orders", 4), ("max_symbols", 2), ("band_ticks", 4), ("max_qty", 4),
           ("max_levels", 4))
PARAMS_BYTES = sum(n for _, n in _PARAMS)


def encode_params(params):
    """``ModelParams`` → the bytes a STATUS frame carries after the counters."""
    out = b""
    for name, n in _PARAMS:
        value = getattr(params, name)
        out += (0 if value is None else value).to_bytes(n, "little")
    return out


def decode_params(raw):
    """Bytes from a STATUS frame → ``ModelParams``."""
    values, pos = {}, 0
    for name, n in _PARAMS:
        values[name] = int.from_bytes(raw[pos:pos + n], "little")
        pos += n
    values["max_levels"] = values["max_levels"] or None
    return ModelParams(**values)


def decode_status(payload):
    """A STATUS payload → (dict of counters, ``ModelParams`` or None if the device sent none)."""
    value = int.from_bytes(payload[:STATUS_BYTES], "little")
    fields, shift = {}, 0
    for name, width in STATUS_FIELDS:
        fields[name] = (value >> shift) & ((1 << width) - 1)
        shift += width
    fields.pop("reserved")
    rest = payload[STATUS_BYTES:]
    return fields, (decode_params(rest) if len(rest) >= PARAMS_BYTES else None)
