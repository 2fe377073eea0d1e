"""The engine over a serial link: a board on USB, or its simulation on a pseudo-terminal.

``SerialEngine(url)`` speaks the link protocol of :mod:`tickwire.protocol.serial_frames` (COBS frames
with CRC-16, link sequence numbers, byte credits, heartbeats) through
``serial.serial_for_url``: a device path (``/dev/ttyUSB1``, ``/dev/pts/5``), ``socket://host:port``
or anything else pyserial opens. It is an engine like the others (``params``,
``process(command) -> [Event]``, ``close()``), plus the raw MoldUDP64 packets the board's feed
encoder produced (``mold_packets``) and the device's error counters (``device_status()``).

Failures are never silent:

* a command frame the device could not read (CRC, framing, overflow) is NAKed by the device and
  sent again, at most ``max_retries`` times; the link sequence number makes sure it runs once;
* a frame from the device that fails its CRC or its COBS decoding raises :class:`LinkCorrupted`:
  device frames carry no sequence number, so whatever it held (events, a feed packet) is lost
  and the session must stop rather than go on with a hole;
* nothing at all from the device (not even a heartbeat) for ``heartbeat_timeout`` seconds
  raises :class:`LinkDown`. After ``retransmit_timeout`` of silence the host first sends HELLO
  (which restores the device's allowance, in case a credit frame was lost) and asks for the
  status, from which it learns whether its command arrived.
"""

import time

import serial
from tickwire.protocol.link import EVENT_BYTES, Event
from tickwire.protocol.serial_frames import HOST_FRAME_LENGTHS, FrameType, decode_status

__all__ = [
    "FrameReader",
    "LinkCorrupted",
    "LinkDown",
    "LinkError",
    "SerialEngine",
    "cobs_decode",
    "cobs_encode",
    "crc16",
    "decode_frame",
    "encode_frame",
]


class LinkError(RuntimeError):
    """The serial link failed; the message says how."""


class LinkDown(LinkError):
    """Nothing came from the device within the heartbeat timeout."""


class LinkCorrupted(LinkError):
    """A frame from the device failed its CRC or framing: its content is lost."""


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data`` (the link's CRC; ``crc16(b"123456789") == 0x29B1``)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def cobs_encode(data):
    """COBS encoding of ``data``, without the 0x00 delimiter (Cheshire and Baker, 1999)."""
    out = bytearray()
    block = bytearray()
    full = False            # the last block written was a full one (code 255): no zero follows
    for byte in data:
        full = False
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
                full = True
    if not full:
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(raw):
    """The data of one COBS-encoded frame (delimiter removed); ``ValueError`` if malformed."""
    out = bytearray()
    pos = 0
    while pos < len(raw):
        code = raw[pos]
        if code == 0:
            raise ValueError("zero byte inside a COBS frame")
        end = pos + code
        if end > len(raw):
            raise ValueError("COBS block runs past the end of the frame")
        block = raw[pos + 1:end]
        if 0 in block:
            raise ValueError("zero byte inside a COBS frame")
        out += block
        pos = end
        if code != 255 and pos < len(raw):
            out.append(0)
    return bytes(out)


def encode_frame(ftype, payload=b""):
    """A whole frame on the wire: COBS(type, payload, CRC-16 big-endian) and the delimiter."""
    body = bytes([ftype]) + bytes(payload)
    return cobs_encode(body + crc16(body).to_bytes(2, "big")) + b"\x00"


def decode_frame(raw):
    """An encoded frame (no delimiter) → ``(type, payload)``; ``ValueError`` if bad."""
    body = cobs_decode(raw)
    if len(body) < 3:
        raise ValueError(f"frame of {len(body)} bytes is too short")
    if crc16(body) != 0:
        raise ValueError("CRC mismatch")
    return body[0], body[1:-2]


_DEVICE_FRAMES = {FrameType.EVENT, FrameType.MOLD, FrameType.STATUS, FrameType.NAK,
                  FrameType.HEARTBEAT}


class FrameReader:
    """Splits a byte stream at the 0x00 delimiters into encoded frames."""

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data):
        """Add bytes; return the complete encoded frames (empty ones skipped)."""
        self._buffer += data
        *frames, rest = self._buffer.split(b"\x00")
        self._buffer = bytearray(rest)
        return [bytes(f) for f in frames if f]


class SerialEngine:
    """An engine behind a serial link (see the module's documentation).

    Parameters
    ----------
    url : str
        Anything ``serial.serial_for_url`` opens.
    params : ModelParams, optional
        Checked against what the device reports; ``None`` takes the device's.
    baudrate : int
    heartbeat_timeout : float
        Seconds of complete silence from the device before :class:`LinkDown`.
    retransmit_timeout : float
        Seconds without an answer to a command before the host checks the device's status.
    window : int
        Bytes the device may send ahead of what the host has read.
    max_retries : int
        Times one command frame is sent again after a NAK before :class:`LinkError`.

    Attributes
    ----------
    mold_packets : list of bytes
        Every MoldUDP64 packet the device sent, in order (``take_mold_packets()`` empties it).
    counters : dict
        Host-side counts: ``retransmits``, ``naks``, ``heartbeats``, ``bytes_in``.
    """

    name = "serial"

    def __init__(self, url, params=None, baudrate=3_000_000, heartbeat_timeout=1.0,
                 retransmit_timeout=0.25, window=4096, max_retries=8):
        self.url = url
        self.heartbeat_timeout = heartbeat_timeout
        self.retransmit_timeout = retransmit_timeout
        self.window = window
        self.max_retries = max_retries
        self.mold_packets = []
        self.counters = {"retransmits": 0, "naks": 0, "heartbeats": 0, "bytes_in": 0}
        self._reader = FrameReader()
        self._unacked = 0
        self._seq = 0
        self._status = None
        self._last_rx = time.monotonic()
        self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.02)
        if hasattr(self.port, "reset_input_buffer"):
            self.port.reset_input_buffer()
        try:
            status, device_params = self._hello()
            if device_params is None:
                raise LinkError(f"{url}: the device did not report its engine parameters")
            if params is not None and params != device_params:
                raise ValueError(f"{url}: the device's engine has {device_params}, "
                                 f"not {params}: build it with those parameters or pass them")
            self.params = device_params
            self._seq = status["expected_seq"]
        except BaseException:
            self.port.close()
            raise

    @classmethod
    def from_spec(cls, option, params=None):
        """From what follows ``serial:`` on the command line: ``URL[,baud=N][,timeout=SECONDS]``."""
        url, *options = option.split(",")
        if not url:
            raise ValueError("serial engine needs a port: serial:/dev/ttyUSB1, "
                             "serial:socket://HOST:PORT, …")
        kwargs = {}
        for option in options:
            key, _, value = option.partition("=")
            if key == "baud":
                kwargs["baudrate"] = int(value)
            elif key == "timeout":
                kwargs["heartbeat_timeout"] = float(value)
            else:
                raise ValueError(f"unknown serial option {key!r} (baud=, timeout=)")
        return cls(url, params=params, **kwargs)

    # -- frames ------------------------------------------------------------------------------

    def _send(self, ftype, payload=b""):
        assert len(payload) + 3 == HOST_FRAME_LENGTHS[ftype]
        self.port.write(encode_frame(ftype, payload))
        self.port.flush()

    def _grant(self, count):
        self._send(FrameType.CREDIT, count.to_bytes(2, "little"))

    def _frames(self):
        """Frames read now (waits up to the port's timeout): a list of (type, payload)."""
        data = self.port.read(max(1, self.port.in_waiting))
        if not data:
            return []
        now = time.monotonic()
        self._last_rx = now
        self.counters["bytes_in"] += len(data)
        self._unacked += len(data)
        if self._unacked >= self.window // 2:
            self._grant(self._unacked)
            self._unacked = 0
        frames = []
        for raw in self._reader.feed(data):
            try:
                ftype, payload = decode_frame(raw)
            except ValueError as error:
                raise LinkCorrupted(f"{self.url}: a frame from the device is corrupt ({error}); "
                                    f"its content (events or a feed packet) is lost") from None
            if ftype not in _DEVICE_FRAMES:
                raise LinkError(f"{self.url}: frame type {ftype:#04x} is not one a tickwire "
                                f"board sends (a loopback, or another device?)")
            frames.append((ftype, payload))
        return frames

    def _handle_common(self, ftype, payload):
        """Frames that may come at any time; returns False for the caller's own frames."""
        if ftype == FrameType.MOLD:
            self.mold_packets.append(bytes(payload))
        elif ftype == FrameType.HEARTBEAT:
            self.counters["heartbeats"] += 1
        elif ftype == FrameType.STATUS:
            self._status = decode_status(payload)
            return False
        else:
            return False
        return True

    def _check_alive(self):
        if time.monotonic() - self._last_rx > self.heartbeat_timeout:
            raise LinkDown(f"{self.url}: nothing from the device for {self.heartbeat_timeout} s "
                           f"(no heartbeat): the link or the board is down")

    def _hello(self):
        """Reset the device's allowance and read its status."""
        self._status = None
        self._last_rx = time.monotonic()
        self._unacked = 0
        self._send(FrameType.HELLO, self.window.to_bytes(2, "little"))
        asked = time.monotonic()
        while True:
            for ftype, payload in self._frames():
                self._handle_common(ftype, payload)
                if self._status is not None:
                    return self._status
            self._check_alive()
            if time.monotonic() - asked > self.retransmit_timeout:
                self._send(FrameType.HELLO, self.window.to_bytes(2, "little"))
                asked = time.monotonic()

    # -- engine interface --------------------------------------------------------------------

    def process(self, command):
        """Send one command; return its events, up to the one with ``last``."""
        seq = self._seq
        frame = bytes([seq]) + command.to_bytes()
        # Silence while the host was not listening does not count.
        self._last_rx = time.monotonic()
        self._send(FrameType.COMMAND, frame)
        sent_at = time.monotonic()
        retries = 0
        taken = False
        events = []
        while True:
            frames = self._frames()
            if frames:
                sent_at = time.monotonic()
            for ftype, payload in frames:
                if self._handle_common(ftype, payload):
                    continue
                if ftype == FrameType.EVENT:
                    if len(payload) != EVENT_BYTES:
                        raise LinkError(f"event frame of {len(payload)} bytes")
                    event = Event.from_bytes(payload)
                    if event.seq != command.seq:
                        raise LinkError(f"event for command {event.seq} while waiting for "
                                        f"{command.seq}")
                    events.append(event)
                    taken = True
                    if event.last:
                        self._seq = (seq + 1) & 0xFF
                        return events
                elif ftype == FrameType.NAK or ftype == FrameType.STATUS:
                    if ftype == FrameType.NAK:
                        self.counters["naks"] += 1
                        expected = payload[0]
                    else:
                        expected = self._status[0]["expected_seq"]
                    if expected == (seq + 1) & 0xFF:
                        taken = True
                    elif expected == seq and not taken:
                        retries += 1
                        if retries > self.max_retries:
                            raise LinkError(f"{self.url}: command {command.seq} refused "
                                            f"{retries} times; last NAK reason "
                                            f"{chr(payload[1]) if ftype == FrameType.NAK else '-'}")
                        self.counters["retransmits"] += 1
                        self._send(FrameType.COMMAND, frame)
                    elif expected != seq:
                        raise LinkError(f"{self.url}: link sequence out of step: device expects "
                                        f"{expected}, host sent {seq}")
            self._check_alive()
            if not frames and time.monotonic() - sent_at > self.retransmit_timeout:
                # Silence: maybe a lost credit; restore the allowance and ask where we are.
                self._unacked = 0
                self._send(FrameType.HELLO, self.window.to_bytes(2, "little"))
                sent_at = time.monotonic()

    def device_status(self):
        """The device's counters (``crc_errors``, ``framing_errors``, ``overflows``, …)."""
        self._status = None
        self._send(FrameType.QUERY)
        asked = self._last_rx = time.monotonic()
        while self._status is None:
            for ftype, payload in self._frames():
                if not self._handle_common(ftype, payload) and ftype not in (
                        FrameType.STATUS, FrameType.NAK):
                    raise LinkError(f"unexpected frame {chr(ftype)!r} between commands")
            self._check_alive()
            if self._status is None and time.monotonic() - asked > self.retransmit_timeout:
                self._send(FrameType.QUERY)
                asked = time.monotonic()
        return self._status[0]

    def drain(self):
        """Read until the device's next heartbeat: everything it had to send (feed packets
        that follow a command's last event) has then arrived."""
        seen = self.counters["heartbeats"]
        self._last_rx = time.monotonic()
        while self.counters["heartbeats"] == seen:
            for ftype, payload in self._frames():
                if not self._handle_common(ftype, payload) and ftype != FrameType.STATUS:
                    raise LinkError(f"unexpected frame {chr(ftype)!r} between commands")
            self._check_alive()

    def take_mold_packets(self):
        """The MoldUDP64 packets received so far, emptying the list (:meth:`drain` first to
        have those of the last command)."""
        packets, self.mold_packets = self.mold_packets, []
        return packets

    def heartbeat(self):
        """Tell the device the host is alive (its link LED) and read what is waiting."""
        self._send(FrameType.HEARTBEAT)
        for ftype, payload in self._frames():
            self._handle_common(ftype, payload)

    def close(self):
        if self.port.is_open:
            self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
