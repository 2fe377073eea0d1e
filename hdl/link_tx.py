"""Device → host frames: one frame at a time from events, MoldUDP64 packets and link control."""

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..protocol.link import EVENT_BYTES, EVENT_LAYOUT
from .link_cobs import FRAME_LAYOUT
from .link_protocol import STATUS_BYTES, STATUS_LAYOUT, FrameType
from .link_rx import LINK_CRC

__all__ = ["LinkTransmitter"]


class _Source(enum.Enum, shape=3):
    NAK = 0
    STATUS = 1
    EVENT = 2
    MOLD = 3
    HEARTBEAT = 4


class LinkTransmitter(wiring.Component):
    """Builds device frames (type, payload, CRC-16) on ``o_frame`` for the COBS encoder.

    Between frames the next one is chosen by priority: NAK, STATUS (both requested by a pulse
    and remembered until sent), EVENT, MOLD, and a HEARTBEAT once ``heartbeat_cycles`` cycles
    have passed since the last frame started. An event is read byte by byte from the held
    ``i_event`` payload and taken with its last byte; a MoldUDP64 packet streams through.

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
        m.submodules.crc = gen = LINK_CRC(8).create()
        out = self.o_frame
        source = Signal(_Source)
        index = Signal(range(max(EVENT_BYTES, STATUS_BYTES + len(self._info)) + 1))
        nak_pending = Signal()
        nak_reason = Signal(8)
        status_pending = Signal()
        idle = Signal(range(self._heartbeat_cycles + 1))

        with m.If(self.i_send_nak):
            m.d.sync += [nak_pending.eq(1), nak_reason.eq(self.i_nak_reason)]
        with m.If(self.i_send_status):
            m.d.sync += status_pending.eq(1)
        with m.If(idle != self._heartbeat_cycles):
            m.d.sync += idle.eq(idle + 1)
        m.d.sync += self.o_started.eq(0)

        event = self.i_event.payload.as_value()
        status = self.i_status.as_value()
        payloads = {
            _Source.NAK: [self.i_status.expected_seq, nak_reason],
            _Source.STATUS: ([status[8 * i:8 * i + 8] for i in range(STATUS_BYTES)]
                             + [Const(b, 8) for b in self._info]),
            _Source.EVENT: [event[8 * i:8 * i + 8] for i in range(EVENT_BYTES)],
        }
        type_codes = {_Source.NAK: FrameType.NAK, _Source.STATUS: FrameType.STATUS,
                      _Source.EVENT: FrameType.EVENT, _Source.MOLD: FrameType.MOLD,
                      _Source.HEARTBEAT: FrameType.HEARTBEAT}
        sent = out.valid & out.ready

        with m.FSM():
            with m.State("IDLE"):
                start = Signal()
                with m.If(nak_pending):
                    m.d.sync += [source.eq(_Source.NAK), nak_pending.eq(self.i_send_nak)]
                    m.d.comb += start.eq(1)
                with m.Elif(status_pending):
                    m.d.sync += [source.eq(_Source.STATUS),
                                 status_pending.eq(self.i_send_status)]
                    m.d.comb += start.eq(1)
                with m.Elif(self.i_event.valid):
                    m.d.sync += source.eq(_Source.EVENT)
                    m.d.comb += start.eq(1)
                with m.Elif(self.i_mold.valid):
                    m.d.sync += source.eq(_Source.MOLD)
                    m.d.comb += start.eq(1)
                with m.Elif(idle == self._heartbeat_cycles):
                    m.d.sync += source.eq(_Source.HEARTBEAT)
                    m.d.comb += start.eq(1)
                with m.If(start):
                    m.d.sync += [idle.eq(0), index.eq(0), self.o_started.eq(1)]
                    m.next = "TYPE"
            with m.State("TYPE"):
                m.d.comb += out.valid.eq(1)
                with m.Switch(source):
                    for src, code in type_codes.items():
                        with m.Case(src):
                            m.d.comb += out.payload.data.eq(code)
                m.d.comb += [gen.start.eq(1), gen.valid.eq(sent), gen.data.eq(out.payload.data)]
                with m.If(sent):
                    with m.If(source == _Source.HEARTBEAT):
                        m.next = "CRC_HI"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [gen.valid.eq(sent), gen.data.eq(out.payload.data)]
                with m.Switch(source):
                    for src, byte_list in payloads.items():
                        with m.Case(src):
                            final = index == len(byte_list) - 1
                            m.d.comb += [out.valid.eq(1),
                                         out.payload.data.eq(Array(byte_list)[index])]
                            if src == _Source.EVENT:
                                m.d.comb += self.i_event.ready.eq(out.ready & final)
                            with m.If(sent):
                                m.d.sync += index.eq(index + 1)
                                with m.If(final):
                                    m.next = "CRC_HI"
                    with m.Case(_Source.MOLD):
                        m.d.comb += [out.valid.eq(self.i_mold.valid),
                                     out.payload.data.eq(self.i_mold.payload.data),
                                     self.i_mold.ready.eq(out.ready)]
                        with m.If(sent & self.i_mold.payload.last):
                            m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += [out.valid.eq(1), out.payload.data.eq(gen.crc[8:])]
                with m.If(sent):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += [out.valid.eq(1), out.payload.data.eq(gen.crc[:8]),
                             out.payload.last.eq(1)]
                with m.If(sent):
                    m.next = "IDLE"
        return m
