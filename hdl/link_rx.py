"""Host → device frames: CRC and length check, command assembly, control requests."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import crc, stream, wiring
from amaranth.lib.wiring import In, Out

from ..protocol.link import COMMAND_BYTES, COMMAND_LAYOUT
from .link_cobs import DECODED_LAYOUT
from .link_protocol import HOST_FRAME_LENGTHS, FrameType, NakReason

__all__ = ["LINK_CRC", "LinkReceiver"]

#: The link's CRC (see :mod:`.link_protocol`).
LINK_CRC = crc.catalog.CRC16_CCITT_FALSE


class LinkReceiver(wiring.Component):
    """Checks decoded host frames and acts on them.

    A command frame's record is shifted into the ``o_cmd`` register as it arrives. A command
    frame that comes while the previous command has not been taken is refused (NAK ``B``,
    counted as an overflow): input never waits for the engine, so credit and status frames
    always get through, whatever the engine and the host are doing. Each frame ends in exactly
    one of: good (``o_good``, then its action), or dropped and answered by a NAK (``o_nak``
    with ``o_nak_reason``), counted by reason: ``o_overflow`` (``i_lost`` pulsed since the last
    frame end, or busy), ``o_framing_error`` (COBS, UART stop bit via ``i_line_error``, length
    or type), ``o_crc_error``.

    Members
    -------
    i_data : In(stream.Signature(DECODED_LAYOUT))
    i_lost, i_line_error : In(1)
        A received byte was lost before decoding / had a bad stop bit.
    o_cmd : Out(stream.Signature(COMMAND_LAYOUT))
    o_expected_seq : Out(8)
    o_grant : Out(16)
        The argument of a CREDIT or HELLO frame, valid with ``o_credit`` / ``o_hello``.
    o_credit, o_hello, o_query, o_good, o_nak : Out(1)
    o_nak_reason : Out(8)
    o_crc_error, o_framing_error, o_overflow : Out(1)
    """

    i_data: In(stream.Signature(DECODED_LAYOUT))
    i_lost: In(1)
    i_line_error: In(1)
    o_cmd: Out(stream.Signature(COMMAND_LAYOUT))
    o_expected_seq: Out(8)
    o_grant: Out(16)
    o_credit: Out(1)
    o_hello: Out(1)
    o_query: Out(1)
    o_good: Out(1)
    o_nak: Out(1)
    o_nak_reason: Out(8)
    o_crc_error: Out(1)
    o_framing_error: Out(1)
    o_overflow: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = check = LINK_CRC(8).create()
        beat = self.i_data.payload
        index = Signal(range(64))
        ftype = Signal(8)
        seq = Signal(8)
        arg = Signal(16)
        lost = Signal()
        line_error = Signal()
        # The layout is not a whole number of bytes: shift whole bytes, use the low bits.
        cmd = Signal(8 * COMMAND_BYTES)
        m.d.comb += self.o_cmd.payload.eq(cmd[:COMMAND_LAYOUT.size])

        with m.If(self.o_cmd.ready):
            m.d.sync += self.o_cmd.valid.eq(0)
        for pulse in (self.o_credit, self.o_hello, self.o_query, self.o_good, self.o_nak,
                      self.o_crc_error, self.o_framing_error, self.o_overflow):
            m.d.sync += pulse.eq(0)
        with m.If(self.i_lost):
            m.d.sync += lost.eq(1)
        with m.If(self.i_line_error):
            m.d.sync += line_error.eq(1)

        busy = Signal()
        in_record = (index >= 2) & (index < 2 + COMMAND_BYTES)
        m.d.comb += self.i_data.ready.eq(1)
        take = self.i_data.valid & self.i_data.ready
        m.d.comb += self.o_grant.eq(arg)

        with m.If(take & ~beat.end):
            m.d.comb += [check.valid.eq(1), check.data.eq(beat.data), check.start.eq(index == 0)]
            with m.If(index != 63):
                m.d.sync += index.eq(index + 1)
            with m.Switch(index):
                with m.Case(0):
                    m.d.sync += ftype.eq(beat.data)
                with m.Case(1):
                    m.d.sync += [seq.eq(beat.data), arg[:8].eq(beat.data)]
                with m.Case(2):
                    m.d.sync += arg[8:].eq(beat.data)
            with m.If(in_record):
                with m.If(self.o_cmd.valid):
                    m.d.sync += busy.eq(1)
                with m.Else():
                    m.d.sync += cmd.eq(Cat(cmd[8:], beat.data))

        with m.If(take & beat.end):
            m.d.sync += [index.eq(0), lost.eq(0), line_error.eq(0), ftype.eq(0), busy.eq(0)]
            length_ok = 0
            for code, length in HOST_FRAME_LENGTHS.items():
                length_ok |= (ftype == code) & (index == length)
            with m.If(lost | self.i_lost):
                m.d.sync += [self.o_overflow.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.OVERFLOW)]
            with m.Elif(busy & (ftype == FrameType.COMMAND) & length_ok):
                m.d.sync += [self.o_overflow.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.BUSY)]
            with m.Elif(beat.error | line_error | ~length_ok):
                m.d.sync += [self.o_framing_error.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.FRAMING)]
            with m.Elif(~check.match_detected):
                m.d.sync += [self.o_crc_error.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.CRC)]
            with m.Else():
                m.d.sync += self.o_good.eq(1)
                with m.Switch(ftype):
                    with m.Case(FrameType.COMMAND):
                        with m.If(seq == self.o_expected_seq):
                            m.d.sync += [self.o_cmd.valid.eq(1),
                                         self.o_expected_seq.eq(self.o_expected_seq + 1)]
                        with m.Else():
                            m.d.sync += [self.o_nak.eq(1),
                                         self.o_nak_reason.eq(NakReason.SEQUENCE)]
                    with m.Case(FrameType.CREDIT):
                        m.d.sync += self.o_credit.eq(1)
                    with m.Case(FrameType.HELLO):
                        m.d.sync += self.o_hello.eq(1)
                    with m.Case(FrameType.QUERY):
                        m.d.sync += self.o_query.eq(1)
        return m
