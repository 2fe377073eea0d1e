"""Device → host frames: one frame at a time from events, MoldUDP64 packets and link control."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..protocol.link import EVENT_BYTES, EVENT_LAYOUT
from .link_cobs import FRAME_LAYOUT
from .link_protocol import STATUS_BYTES, STATUS_LAYOUT, FrameType
from .link_rx import LINK_CRC_INIT, crc_step

__all__ = ["LinkTransmitter"]


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
    indexed multiplexer costs more than one. ``o_frame`` is a register (one frame byte per
    cycle while the encoder takes them), so the byte multiplexer and the CRC end there.
    A frame starts one cycle after it is chosen.

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
    """

    i_event: In(stream.Signature(EVENT_LAYOUT))
    i_mold: In(stream.Signature(FRAME_LAYOUT))
    i_status: In(STATUS_LAYOUT)
    i_send_status: In(1)
    i_send_nak: In(1)
    i_nak_reason: In(8)
    o_frame: Out(stream.Signature(FRAME_LAYOUT))
    o_started: Out(1)

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
        crc = Signal(16, init=LINK_CRC_INIT)

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
        m.d.comb += [make.eq(busy & room & (~streaming | self.i_mold.valid)),
                     self.i_mold.ready.eq(streaming & room),
                     self.i_event.ready.eq(make & pos[final["event"]])]
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
                m.d.sync += [busy.eq(0), crc.eq(LINK_CRC_INIT)]
            with m.Elif(~crc_hi):
                m.d.sync += crc.eq(crc_step(crc, byte))

        # Choosing the next frame.
        nak_pending = Signal()
        status_pending = Signal()
        with m.If(self.i_send_nak):
            m.d.sync += nak_pending.eq(1)
        with m.If(self.i_send_status):
            m.d.sync += status_pending.eq(1)
        # Counts down from heartbeat_cycles - 1 after each frame start; the heartbeat is due
        # once it passes 0, i.e. heartbeat_cycles cycles after the start (the sign bit).
        quiet = Signal(range(-1, self._heartbeat_cycles), init=self._heartbeat_cycles - 1)
        due = quiet[-1]
        with m.If(~due):
            m.d.sync += quiet.eq(quiet - 1)
        m.d.sync += self.o_started.eq(0)
        with m.If(~busy):
            start = Signal()
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
                m.d.sync += [busy.eq(1), quiet.eq(self._heartbeat_cycles - 1),
                             self.o_started.eq(1)]
        return m
