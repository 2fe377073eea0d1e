"""Device → host frames: one frame at a time from events, MoldUDP64 packets and link control."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.link_cobs import FRAME_LAYOUT
from tickwire.hdl.link_rx import LinkCrc
from tickwire.protocol.link import EVENT_BYTES, EVENT_LAYOUT
from tickwire.protocol.serial_frames import STATUS_BYTES, STATUS_LAYOUT, FrameType

__all__ = ["LinkTransmitter", "countdown"]

# Taps (1-based bit positions) of maximal-length LFSRs by width, from Xilinx XAPP052.
_LFSR_TAPS = {
    3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5),
    10: (10, 7), 11: (11, 9), 12: (12, 6, 4, 1), 13: (13, 4, 3, 1), 14: (14, 5, 3, 1),
    15: (15, 14), 16: (16, 15, 13, 4), 17: (17, 14), 18: (18, 11), 19: (19, 6, 2, 1),
    20: (20, 17), 21: (21, 19), 22: (22, 21), 23: (23, 18), 24: (24, 23, 22, 17),
    25: (25, 22), 26: (26, 6, 2, 1), 27: (27, 5, 2, 1), 28: (28, 25), 29: (29, 27),
    30: (30, 6, 4, 1), 31: (31, 28), 32: (32, 22, 2, 1),
}


def lfsr_step(state, width):
    """The next state of the ``width``-bit LFSR: shifted left, the taps' XNOR shifted in
    (as in XAPP052: all ones is the state it never leaves, 0 is an ordinary state)."""
    feedback = 1
    for tap in _LFSR_TAPS[width]:
        feedback ^= (state >> (tap - 1)) & 1
    return ((state << 1) | feedback) & ((1 << width) - 1)


def lfsr_jump(state, width, steps):
    """The LFSR state ``steps`` steps after ``state``.

    A step is affine over GF(2), ``x → Ax + b``; as the linear map ``(x, 1) → (Ax + b, 1)``
    on ``width + 1`` bits it is squared and applied bit by bit.
    """
    one = 1 << width                              # the extra constant coordinate

    def step(vector):
        image = lfsr_step(vector & (one - 1), width) ^ lfsr_step(0, width)   # A x
        return image ^ (lfsr_step(0, width) if vector & one else 0) | (vector & one)

    def apply(columns, vector):
        out = 0
        for i, column in enumerate(columns):
            if (vector >> i) & 1:
                out ^= column
        return out
    power = [step(1 << i) for i in range(width + 1)]
    state |= one
    while steps:
        if steps & 1:
            state = apply(power, state)
        power = [apply(power, column) for column in power]
        steps >>= 1
    return state & (one - 1)


def countdown(m, cycles, restart, *, running=True, name="timer"):
    """An exact timer: ``expired`` rises ``cycles`` cycles after a cycle with ``restart`` high
    (or after reset if ``running``, else it starts expired) and stays high until the next.

    The count is an LFSR from 0 to the state ``cycles`` steps later: its bits only shift
    (flip-flops with enable and synchronous reset, no LUT4 each as a binary counter's adder
    needs), and the end is one compare with a constant.
    """
    if cycles < 1:
        raise ValueError("cycles must be positive")
    width = max(3, (cycles + 1).bit_length())      # period 2**width - 1 > cycles: no repeats
    final = lfsr_jump(0, width, cycles)
    state = Signal(width, name=name)
    expired = Signal(name=f"{name}_expired")
    feedback = 1
    for tap in _LFSR_TAPS[width]:
        feedback ^= state[tap - 1]
    if running:
        m.d.comb += expired.eq(state == final)
    else:
        # Expired until the first restart, without a non-zero initial state (which costs
        # LUT4s on iCE40).
        started = Signal(name=f"{name}_started")
        with m.If(restart):
            m.d.sync += started.eq(1)
        m.d.comb += expired.eq(~started | (state == final))
    with m.If(~expired):
        m.d.sync += state.eq(Cat(feedback, state[:-1]))
    with m.If(restart):
        m.d.sync += state.eq(0)
    return expired


class LinkTransmitter(wiring.Component):
    """Builds device frames (type, payload, CRC-16) on ``o_frame`` for the COBS encoder.

    Between frames the next one is chosen by priority: NAK, STATUS (both requested by a pulse
    and remembered until sent), EVENT, MOLD, and a HEARTBEAT once ``heartbeat_cycles`` cycles
    have passed since the last frame started. An event is read byte by byte from the held
    ``i_event`` payload and taken with its last byte; a MoldUDP64 packet streams through.
    STATUS and NAK frames read ``i_status`` and ``i_nak_reason`` as their bytes are made, so
    ``i_nak_reason`` must hold until the NAK is sent (the receiver keeps its last reason).

    Every byte of the NAK, STATUS and EVENT frames, type bytes included, has its own bit in a
    one-hot position register (a shift register, no decoder), and the byte out is the OR of
    each position's byte ANDed with its bit: about two bits of input per LUT4, where a binary
    indexed multiplexer costs more than one. ``o_frame`` is a register, where the byte
    multiplexer ends; the CRC takes each byte from it a cycle later, so a frame's CRC comes
    two cycles after its last payload byte. Otherwise a byte per cycle while the encoder
    takes them. A frame starts one cycle after it is chosen. The heartbeat's quiet time is
    counted by :func:`countdown`.

    Parameters
    ----------
    heartbeat_cycles : int
    info : bytes
        Constant bytes appended to every STATUS frame (the engine's parameters).

    Members
    -------
    i_event : In(stream.Signature(EVENT_LAYOUT))
    i_mold : In(stream.Signature(FRAME_LAYOUT))
    i_status : In(STATUS_LAYOUT)
    i_send_status, i_send_nak : In(1)
    i_nak_reason : In(8)
    o_frame : Out(stream.Signature(FRAME_LAYOUT))
    o_started : Out(1)
        Pulses as each frame starts.
    o_event_byte : Out(stream.Signature(8, always_ready=True))
        Each byte of an EVENT frame's payload (the event, least significant byte first), in
        the cycle it is in ``o_frame``'s register: the boards' ITCH encoder takes the event's
        bytes from here instead of selecting them again.
    """

    i_event: In(stream.Signature(EVENT_LAYOUT))
    i_mold: In(stream.Signature(FRAME_LAYOUT))
    i_status: In(STATUS_LAYOUT)
    i_send_status: In(1)
    i_send_nak: In(1)
    i_nak_reason: In(8)
    o_frame: Out(stream.Signature(FRAME_LAYOUT))
    o_started: Out(1)
    o_event_byte: Out(stream.Signature(8, always_ready=True))

    def __init__(self, heartbeat_cycles, info=b""):
        if heartbeat_cycles < 1:
            raise ValueError("heartbeat_cycles must be positive")
        self._heartbeat_cycles = heartbeat_cycles
        self._info = bytes(info)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        out = self.o_frame
        event = self.i_event.payload.as_value()
        status = self.i_status.as_value()

        # The frames with a fixed length, byte by byte (Values or constant ints), the type byte
        # first; each byte gets a position bit. MOLD and HEARTBEAT frames have only their type
        # byte here: a MoldUDP64 packet streams after it, a heartbeat has no payload.
        frames = {
            "nak": [FrameType.NAK, self.i_status.expected_seq, self.i_nak_reason],
            "status": ([FrameType.STATUS] + [status[8 * i:8 * i + 8] for i in range(STATUS_BYTES)]
                       + list(self._info)),
            "event": [FrameType.EVENT] + [event[8 * i:8 * i + 8] for i in range(EVENT_BYTES)],
            "mold": [FrameType.MOLD],
            "heartbeat": [FrameType.HEARTBEAT],
        }
        first, final, slots = {}, {}, []
        for name, content in frames.items():
            first[name] = len(slots)
            slots += content
            final[name] = len(slots) - 1
        pos = Signal(len(slots))           # one-hot: the next byte to make; 0 between frames
        streaming = Signal()               # a MoldUDP64 packet's bytes
        crc_hi = Signal()                  # then the CRC, high byte first
        crc_lo = Signal()
        busy = Signal()                    # a frame is chosen and not all made
        m.submodules.crc = gen = LinkCrc()
        crc = ~gen.o_crc_n

        # The byte made now: each position's byte ANDed with its bit, all ORed; constant bytes
        # (types, ``info``) are ORs of position bits.
        byte = Signal(8)
        terms = []
        for i, content in enumerate(slots):
            if isinstance(content, int):
                terms.append(Cat(pos[i] if (content >> b) & 1 else Const(0) for b in range(8)))
            else:
                terms.append(content & pos[i].replicate(8))
        terms += [self.i_mold.payload.data & streaming.replicate(8),
                  crc[8:] & crc_hi.replicate(8), crc[:8] & crc_lo.replicate(8)]
        acc = terms[0]
        for term in terms[1:]:
            acc = acc | term
        m.d.comb += byte.eq(acc)


        # A byte is made when the output register is empty or being emptied (and, streaming,
        # when the packet has one).
        room = ~out.valid | out.ready
        make = Signal()
        # The CRC takes each byte from the output register, the cycle after it is made (the
        # byte multiplexer and the CRC's XORs are separate paths): its high byte waits for the
        # last payload byte to be in.
        fresh = Signal()
        m.d.comb += [make.eq(busy & room & (~streaming | self.i_mold.valid) & ~(crc_hi & fresh)),
                     self.i_mold.ready.eq(streaming & room),
                     self.i_event.ready.eq(make & pos[final["event"]])]
        # The CRC covers every byte made but its own, and clears with the frame's last.
        m.d.sync += fresh.eq(make & ~crc_hi & ~crc_lo)
        m.d.comb += [gen.i_data.eq(out.payload.data), gen.i_step.eq(fresh),
                     gen.i_clear.eq(make & crc_lo)]
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(make):
            m.d.sync += [out.valid.eq(1), out.payload.data.eq(byte),
                         out.payload.last.eq(crc_lo)]
            # Positions shift within a frame's bytes; a frame's last byte hands over to the
            # packet stream (MOLD), or to the CRC.
            for i in range(len(slots)):
                if i not in first.values():
                    m.d.sync += pos[i].eq(pos[i - 1])
                else:
                    m.d.sync += pos[i].eq(0)
            ends = [pos[final[name]] for name in ("nak", "status", "event", "heartbeat")]
            m.d.sync += [streaming.eq(pos[final["mold"]]
                                      | (streaming & ~self.i_mold.payload.last)),
                         crc_hi.eq(Cat(*ends).any() | (streaming & self.i_mold.payload.last)),
                         crc_lo.eq(crc_hi)]
            with m.If(crc_lo):
                m.d.sync += busy.eq(0)

        # The event's bytes for the ITCH encoder: those made after the EVENT type byte up to
        # the frame's last payload byte (a flag, not an OR of 51 position bits).
        event_payload = Signal()
        with m.If(make & pos[first["event"]]):
            m.d.sync += event_payload.eq(1)
        with m.If(make & pos[final["event"]]):
            m.d.sync += event_payload.eq(0)
        m.d.sync += self.o_event_byte.valid.eq(make & event_payload)
        m.d.comb += self.o_event_byte.payload.eq(out.payload.data)

        # Choosing the next frame.
        nak_pending = Signal()
        status_pending = Signal()
        with m.If(self.i_send_nak):
            m.d.sync += nak_pending.eq(1)
        with m.If(self.i_send_status):
            m.d.sync += status_pending.eq(1)
        start = Signal()
        due = countdown(m, self._heartbeat_cycles, start, name="quiet")
        m.d.sync += self.o_started.eq(0)
        with m.If(~busy):
            choice = [("nak", nak_pending), ("status", status_pending),
                      ("event", self.i_event.valid), ("mold", self.i_mold.valid),
                      ("heartbeat", due)]
            earlier = Const(0)
            for name, request in choice:
                chosen = request & ~earlier
                m.d.sync += pos[first[name]].eq(chosen)
                earlier = earlier | request
            m.d.comb += start.eq(earlier)
            with m.If(nak_pending):
                m.d.sync += nak_pending.eq(self.i_send_nak)
            with m.Elif(status_pending):
                m.d.sync += status_pending.eq(self.i_send_status)
            with m.If(start):
                m.d.sync += [busy.eq(1), self.o_started.eq(1)]
        return m
