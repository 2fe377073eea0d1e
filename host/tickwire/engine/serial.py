"""The engine over a serial link: a board on USB, or its simulation on a pseudo-terminal.

``SerialEngine(url)`` speaks the link protocol of :mod:`tickwire.protocol.serial_frames` (COBS
frames with CRC-16, link sequence numbers, byte credits, heartbeats) through
``serial.serial_for_url``: a device path (``/dev/ttyUSB1``, ``/dev/pts/5``),
``socket://host:port`` or anything else pyserial opens. It is an engine like the others
(``params``, ``process(command) -> [Event]``, ``close()``), plus the MoldUDP64 packets the
board's feed encoder produced (``feed_packets()``), the device's error counters
(``device_status()``) and the host's link counters (``counters``).

The board reports its book (engine parameters) in its STATUS frame; a book asked for (``params``,
or a board's name: ``board=``) that differs is refused (:class:`BookMismatch`).

Timeouts. Unless given, they are derived when the link comes up from the baud rate and the
time the device takes to answer HELLO (a board on USB answers within milliseconds, a board
simulated behind a pseudo-terminal in seconds: the answer is a few thousand cycles of a slow
simulation): the retransmit timeout is the longest of 0.25 s, the wire time of the longest
exchange and :data:`RTT_FACTOR` round trips; the link timeout (no byte at all, not even a
heartbeat) two retransmit timeouts, at least 1 s. Silence is counted from the last *byte*
received, so a long frame in flight is not silence, and an idle device sends heartbeats far
more often than that (a simulated one every few hundred cycles), so a clean link never
reaches the retransmit timeout.

Failures are never silent; each is a :class:`LinkError` whose one-line message says what happened
and what to check:

* a command frame the device could not read (CRC, framing, overflow) is NAKed by the device and
  sent again, at most ``max_retries`` times; the link sequence number makes sure it runs once;
* a frame from the device that fails its CRC or its COBS decoding raises :class:`LinkCorrupted`:
  device frames carry no sequence number, so whatever it held (events, a feed packet) is lost
  and the session must stop rather than go on with a hole;
* nothing at all from the device (not even a heartbeat) for ``heartbeat_timeout`` seconds
  raises :class:`LinkDown`. After ``retransmit_timeout`` of silence the host first sends HELLO
  (which restores the device's allowance, in case a credit frame was lost) and asks for the
  status, from which it learns whether its command arrived. A status answers the HELLOs
  sent after the command's latest copy only; older ones (from a slow start) are not taken for
  a refusal, so a clean link needs no resends;
* a port that does not open is a :class:`LinkError` too.
"""

import time

import serial
from tickwire.engine.registry import EngineSpecError
from tickwire.protocol.boards import board_book, describe_book
from tickwire.protocol import moldudp64
from tickwire.protocol.feed import MAX_PAYLOAD
from tickwire.protocol.link import EVENT_BYTES, Event
from tickwire.protocol.serial_frames import (
    COMMAND_FRAME,
    HOST_FRAME_LENGTHS,
    FrameType,
    decode_status,
)

__all__ = [
    "BookMismatch",
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


class BookMismatch(LinkError):
    """The device's book (engine parameters) is not the one asked for."""


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


#: Round trips of HELLO → STATUS in the derived retransmit timeout.
RTT_FACTOR = 4

#: Seconds to wait for the device's first answer when no link timeout is given: the simulated
#: iCEBreaker, UARTs at bit level, took 8 s to answer HELLO on a busy machine.
CONNECT_TIMEOUT = 30.0

#: Bytes on the wire of the longest exchange: a command out, a full feed packet back (COBS adds
#: a byte per 254, the frame its type, CRC and delimiter).
_LONGEST_EXCHANGE = COMMAND_FRAME + 2 + MAX_PAYLOAD + MAX_PAYLOAD // 254 + 5

_NAK_TEXT = {ord("C"): "NAK: CRC error", ord("F"): "NAK: framing error",
             ord("O"): "NAK: overrun", ord("S"): "NAK: sequence", ord("B"): "NAK: busy"}


class SerialEngine:
    """An engine behind a serial link (see the module's documentation).

    Parameters
    ----------
    url : str
        Anything ``serial.serial_for_url`` opens.
    params : ModelParams, optional
        The book asked for, checked against what the device reports; ``None`` takes the
        device's.
    baudrate : int
    heartbeat_timeout : float, optional
        Seconds of complete silence from the device before :class:`LinkDown` (the link
        timeout); ``None``: derived (see the module).
    retransmit_timeout : float, optional
        Seconds of silence after a command before the host checks the device's status;
        ``None``: derived.
    window : int
        Bytes the device may send ahead of what the host has read.
    max_retries : int
        Times one command frame is sent again before :class:`LinkError`.
    board : str, optional
        A board name (``tickwire.protocol.boards.BOARD_BOOKS``): its book is checked too.

    Attributes
    ----------
    mold_packets : list of bytes
        Every MoldUDP64 packet the device sent, in order (``take_mold_packets()`` empties it).
    counters : dict
        Host-side counts: ``retransmits``, ``naks``, ``heartbeats``, ``bytes_in``.
    round_trip : float
        Seconds the device took to answer the first HELLO.
    """

    name = "serial"

    def __init__(self, url, params=None, baudrate=3_000_000, heartbeat_timeout=None,
                 retransmit_timeout=None, window=4096, max_retries=8, board=None):
        self.url = url
        self.baudrate = baudrate
        self.window = window
        self.max_retries = max_retries
        self.mold_packets = []
        self.counters = {"retransmits": 0, "naks": 0, "heartbeats": 0, "bytes_in": 0}
        self._reader = FrameReader()
        self._unacked = 0
        self._seq = 0
        self._status = None         # (counters, params, request id, command copies before it)
        self._asked = []            # (request id, command copies) of unanswered requests
        self._requests = 0
        self._copies = 0            # command frames sent so far
        self._last_rx = time.monotonic()
        self.heartbeat_timeout = heartbeat_timeout or CONNECT_TIMEOUT
        self.retransmit_timeout = retransmit_timeout or 1.0
        self.port = self._open(url, baudrate)
        try:
            started = time.monotonic()
            status, device_params = self._hello()
            self.round_trip = time.monotonic() - started
            wire = 10 * _LONGEST_EXCHANGE / baudrate
            self.retransmit_timeout = retransmit_timeout or max(0.25, wire,
                                                                RTT_FACTOR * self.round_trip)
            self.heartbeat_timeout = heartbeat_timeout or max(1.0, 2 * self.retransmit_timeout)
            self.params = self._check_book(device_params, params, board)
            self._seq = status["expected_seq"]
        except BaseException:
            self.port.close()
            raise

    @classmethod
    def from_spec(cls, option, params=None):
        """From what follows ``serial:`` on the command line:
        ``URL[,baud=N][,retransmit=SECONDS][,timeout=SECONDS][,board=NAME]``."""
        url, *options = option.split(",")
        if not url:
            raise EngineSpecError("serial engine needs a port: serial:/dev/ttyUSB1, "
                                  "serial:/dev/pts/N (make board-pty), serial:socket://HOST:PORT")
        kwargs = {}
        for item in options:
            key, _, value = item.partition("=")
            if key not in _SPEC_OPTIONS:
                raise EngineSpecError(f"unknown serial option {key!r} "
                                      f"({', '.join(k + '=' for k in _SPEC_OPTIONS)})")
            name, parse = _SPEC_OPTIONS[key]
            try:
                kwargs[name] = parse(value)
            except ValueError as error:
                raise EngineSpecError(f"serial option {key}={value!r}: {error}") from None
        return cls(url, params=params, **kwargs)

    @staticmethod
    def _open(url, baudrate):
        try:
            return serial.serial_for_url(url, baudrate=baudrate, timeout=0.02)
        except (serial.SerialException, ValueError) as error:
            raise LinkError(f"{url}: cannot open the port ({error}): is the board plugged in, "
                            f"or make board-pty running and this the path it printed?") from None

    def _check_book(self, device_params, params, board):
        if device_params is None:
            raise LinkError(f"{self.url}: the device did not report its book (engine "
                            f"parameters): not a tickwire board, or gateware older than the host")
        wanted = [(params, "one asked for")]
        if board is not None:
            wanted.append((board_book(board), f"{board} build's"))
        for expected, whose in wanted:
            if expected is not None and expected != device_params:
                raise BookMismatch(
                    f"{self.url}: the board's book is {describe_book(device_params)}, not the "
                    f"{whose} ({describe_book(expected)}): leave out the capacity options to "
                    f"take the board's, or load the board built with that book")
        return device_params

    # -- frames ------------------------------------------------------------------------------

    def _send(self, ftype, payload=b""):
        assert len(payload) + 3 == HOST_FRAME_LENGTHS[ftype]
        self.port.write(encode_frame(ftype, payload))
        self.port.flush()

    def _grant(self, count):
        self._send(FrameType.CREDIT, count.to_bytes(2, "little"))

    def _ask_status(self, ftype):
        """Send HELLO (restoring the device's allowance) or QUERY; returns the request's id."""
        if ftype == FrameType.HELLO:
            self._unacked = 0
            self._send(ftype, self.window.to_bytes(2, "little"))
        else:
            self._send(ftype)
        self._requests += 1
        self._asked.append((self._requests, self._copies))
        return self._requests

    def _send_command(self, frame):
        self._send(FrameType.COMMAND, frame)
        self._copies += 1

    def _frames(self):
        """Frames read now (waits up to the port's timeout): a list of (type, payload)."""
        data = self.port.read(max(1, self.port.in_waiting))
        if not data:
            return []
        self._last_rx = time.monotonic()
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
                                    f"its content (events or a feed packet) is lost: check the "
                                    f"cable and the baud rate (baud=)") from None
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
            request, copies = self._asked.pop(0) if self._asked else (None, None)
            self._status = (*decode_status(payload), request, copies)
            return False
        else:
            return False
        return True

    def _check_alive(self):
        if time.monotonic() - self._last_rx > self.heartbeat_timeout:
            raise LinkDown(f"{self.url}: nothing from the device for {self.heartbeat_timeout:g} s "
                           f"(no heartbeat): is the board powered and loaded, or make board-pty "
                           f"running and not stopped? (a slow simulation: raise timeout=)")

    def _hello(self):
        """Reset the device's allowance and read its status: ``(counters, params)``."""
        self._status = None
        self._last_rx = time.monotonic()
        self._ask_status(FrameType.HELLO)
        asked = time.monotonic()
        while True:
            for ftype, payload in self._frames():
                self._handle_common(ftype, payload)
                if self._status is not None:
                    return self._status[:2]
            self._check_alive()
            if time.monotonic() - asked > self.retransmit_timeout:
                self._ask_status(FrameType.HELLO)
                asked = time.monotonic()

    # -- engine interface --------------------------------------------------------------------

    def process(self, command):
        """Send one command; return its events, up to the one with ``last``."""
        seq = self._seq
        frame = bytes([seq]) + command.to_bytes()
        # Silence while the host was not listening does not count.
        self._last_rx = time.monotonic()
        self._send_command(frame)
        asked = time.monotonic()
        retries = 0
        taken = False
        events = []
        while True:
            for ftype, payload in self._frames():
                if self._handle_common(ftype, payload):
                    continue
                if ftype == FrameType.EVENT:
                    events.append(self._event(payload, command))
                    taken = True
                    if events[-1].last:
                        self._seq = (seq + 1) & 0xFF
                        return events
                    continue
                if ftype == FrameType.NAK:
                    self.counters["naks"] += 1
                    expected, why = payload[0], _NAK_TEXT.get(payload[1], chr(payload[1]))
                else:
                    fields, _, _, copies = self._status
                    if copies != self._copies:
                        continue        # asked before the command's latest copy went out
                    expected, why = fields["expected_seq"], "the device's status: not received"
                if expected == (seq + 1) & 0xFF:
                    taken = True
                elif expected == seq and not taken:
                    retries += 1
                    if retries > self.max_retries:
                        raise LinkError(f"{self.url}: command {command.seq} refused {retries} "
                                        f"times (last: {why}): check the cable and the baud "
                                        f"rate (baud=), and that nothing else uses the port")
                    self.counters["retransmits"] += 1
                    self._send_command(frame)
                    asked = time.monotonic()
                elif expected != seq:
                    raise LinkError(f"{self.url}: link sequence out of step: device expects "
                                    f"{expected}, host sent {seq} (another host on the port?)")
            self._check_alive()
            if time.monotonic() - max(asked, self._last_rx) > self.retransmit_timeout:
                # Silence: maybe a lost credit; restore the allowance and ask where we are.
                self._ask_status(FrameType.HELLO)
                asked = time.monotonic()

    def _event(self, payload, command):
        if len(payload) != EVENT_BYTES:
            raise LinkError(f"{self.url}: event frame of {len(payload)} bytes, not "
                            f"{EVENT_BYTES}: gateware and host disagree on the event record")
        event = Event.from_bytes(payload)
        if event.seq != command.seq:
            raise LinkError(f"{self.url}: event for command {event.seq} while waiting for "
                            f"{command.seq}")
        return event

    def device_status(self):
        """The device's counters (``crc_errors``, ``framing_errors``, ``overflows``, …)."""
        request = self._ask_status(FrameType.QUERY)
        asked = self._last_rx = time.monotonic()
        while self._status is None or self._status[2] is None or self._status[2] < request:
            for ftype, payload in self._frames():
                if not self._handle_common(ftype, payload) and ftype not in (
                        FrameType.STATUS, FrameType.NAK):
                    raise LinkError(f"{self.url}: unexpected frame {chr(ftype)!r} between "
                                    f"commands")
            self._check_alive()
            if time.monotonic() - max(asked, self._last_rx) > self.retransmit_timeout:
                request = self._ask_status(FrameType.QUERY)
                asked = time.monotonic()
        return self._status[0]

    def drain(self):
        """Read until the device has sent two heartbeats in a row with no feed packet since:
        everything it had to send (feed packets that follow a command's last event) has then
        arrived. One heartbeat is not enough: one already on its way when the command's last
        event was read may come before that command's feed packet."""
        seen, packets = self.counters["heartbeats"], len(self.mold_packets)
        self._last_rx = time.monotonic()
        while self.counters["heartbeats"] - seen < 2:
            for ftype, payload in self._frames():
                if not self._handle_common(ftype, payload) and ftype != FrameType.STATUS:
                    raise LinkError(f"{self.url}: unexpected frame {chr(ftype)!r} between "
                                    f"commands")
            if len(self.mold_packets) != packets:
                seen, packets = self.counters["heartbeats"], len(self.mold_packets)
            self._check_alive()

    def take_mold_packets(self):
        """The MoldUDP64 packets received so far, emptying the list (:meth:`drain` first to
        have those of the last command)."""
        packets, self.mold_packets = self.mold_packets, []
        return packets

    def end_session(self):
        """End the board feed's session: once everything it had is in (:meth:`drain`), send
        END_SESSION and read until its MoldUDP64 end-of-session packet has come. Sent again
        after silence or a refusal (the board answers only the first it takes)."""
        self.drain()
        self._last_rx = time.monotonic()
        packets, tries, why = len(self.mold_packets), 0, "no answer"
        while True:
            if tries > self.max_retries:
                raise LinkError(f"{self.url}: no end of session from the board's feed after "
                                f"{tries} requests (last: {why}): a bitstream older than "
                                f"this host? rebuild it (make bitstream)")
            self._send(FrameType.END_SESSION)
            tries += 1
            asked = time.monotonic()
            while time.monotonic() - asked <= self.retransmit_timeout:
                frames = self._frames()
                for ftype, payload in frames:
                    if self._handle_common(ftype, payload):
                        continue
                    if ftype != FrameType.NAK:
                        raise LinkError(f"{self.url}: unexpected frame {chr(ftype)!r} while "
                                        f"ending the feed's session")
                    self.counters["naks"] += 1
                    why = _NAK_TEXT.get(payload[1], chr(payload[1]))
                    break
                else:
                    if (len(self.mold_packets) > packets
                            and _is_end_of_session(self.mold_packets[-1])):
                        return
                    self._check_alive()
                    continue
                break       # refused: ask again

    def feed_packets(self):
        """The board feed's whole session (the engine interface of a device that runs the
        feed too): every MoldUDP64 packet it sent since the last call, the last its end of
        session (:meth:`end_session`)."""
        self.end_session()
        return self.take_mold_packets()

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


def _is_end_of_session(packet):
    try:
        return moldudp64.decode_packet(packet).is_end_of_session
    except ValueError:
        return False        # device_frames names a malformed packet


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise ValueError("not a positive number")
        return value
    return parse


def _board(name):
    board_book(name)
    return name


#: ``serial:`` spec options → (keyword, parser raising ValueError).
_SPEC_OPTIONS = {"baud": ("baudrate", _positive(int)),
                 "retransmit": ("retransmit_timeout", _positive(float)),
                 "timeout": ("heartbeat_timeout", _positive(float)), "board": ("board", _board)}
