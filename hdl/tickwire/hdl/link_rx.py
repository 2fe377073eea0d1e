"""Host → device frames: CRC and length check, command assembly, control requests."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import crc, stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.link_cobs import DECODED_LAYOUT
from tickwire.protocol.link import COMMAND_BYTES, COMMAND_LAYOUT
from tickwire.protocol.serial_frames import HOST_FRAME_LENGTHS, FrameType, NakReason

__all__ = ["LINK_CRC", "LinkCrc", "LinkReceiver"]

#: The link's CRC (see :mod:`tickwire.protocol.serial_frames`), as the gateware computes it in :class:`LinkCrc`.
LINK_CRC = crc.catalog.CRC16_CCITT_FALSE


def _crc_step_terms():
    """For each bit of the next CRC register: the register bits and data bits XORed into it.

    One byte of CRC-16/CCITT-FALSE (polynomial 0x1021, no reflection), bit by bit from the
    most significant data bit, kept as sets over GF(2) so that repeated terms cancel.
    """
    reg = [frozenset({("crc", i)}) for i in range(16)]
    for k in range(8):
        feedback = reg[15] ^ {("data", 7 - k)}
        reg = [frozenset()] + reg[:15]
        reg = [bits ^ feedback if (0x1021 >> i) & 1 else bits for i, bits in enumerate(reg)]
    return reg


_CRC_STEP = _crc_step_terms()


class LinkCrc(wiring.Component):
    """The link's CRC register, stepped a byte at a time by XORs only.

    The register's high byte always meets the data bit for bit (``reg[8 + j] ^ data[j]``),
    which the XORs share. ``amaranth.lib.crc`` puts a start multiplexer in front of them;
    here ``i_clear`` resets the register between frames. The register is kept complemented,
    so that its initial 0xFFFF is 0, which an iCE40 flip-flop starts at and resets to for
    free. About 23 LUT4 (the flat XORs of each bit from the register and data map to 39, and
a register that starts at 0xFFFF needs more).

    Members
    -------
    i_data : In(8)
    i_step : In(1)
        Process ``i_data``.
    i_clear : In(1)
        Back to the initial value (0xFFFF), overriding ``i_step``.
    o_crc_n : Out(16)
        The CRC of the bytes since the last clear, complemented (the consumer's LUT4s absorb
        the inversion; 16 more here otherwise): 0xFFFF after a whole frame with its CRC.
    """

    i_data: In(8)
    i_step: In(1)
    i_clear: In(1)
    o_crc_n: Out(16)

    def elaborate(self, platform):
        m = Module()
        reg_n = Signal(16)
        reg = ~reg_n
        mixed = Signal(8)
        m.d.comb += [mixed.eq(reg[8:] ^ self.i_data), self.o_crc_n.eq(reg_n)]
        bits = []
        for terms in _CRC_STEP:
            bit = 0
            for j in range(8):
                if ("crc", 8 + j) in terms and ("data", j) in terms:
                    terms = terms - {("crc", 8 + j), ("data", j)}
                    bit = bit ^ mixed[j]
            for name, i in sorted(terms):
                bit = bit ^ (reg if name == "crc" else self.i_data)[i]
            bits.append(bit)
        with m.If(self.i_step):
            m.d.sync += reg_n.eq(~Cat(*bits))
        with m.If(self.i_clear):
            m.d.sync += reg_n.eq(0)
        return m


class LinkReceiver(wiring.Component):
    """Checks decoded host frames and acts on them.

    Takes a decoded byte every cycle (``i_data.ready`` is always high). A command frame's
    record is shifted into the ``o_cmd`` register as it arrives (a shift register: no write
    decoder). A command frame that comes while the previous command has not been taken is
    refused (NAK ``B``, counted as an overflow): input never waits for the engine, so credit
    and status frames always get through, whatever the engine and the host are doing. Each
    frame ends in exactly one of: good (``o_good``, then its action), or dropped and answered
    by a NAK (``o_nak`` with ``o_nak_reason``, held until the next NAK), counted by reason:
    ``o_overflow`` (``i_lost`` pulsed since the last frame end, or busy), ``o_framing_error``
    (COBS, UART stop bit via ``i_line_error``, length or type), ``o_crc_error``. Outcome and
    action come the cycle after the frame end.

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
    o_end_session : Out(1)
        A good END_SESSION frame came: end the feed's session.
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
    o_end_session: Out(1)
    o_good: Out(1)
    o_nak: Out(1)
    o_nak_reason: Out(8)
    o_crc_error: Out(1)
    o_framing_error: Out(1)
    o_overflow: Out(1)

    def elaborate(self, platform):
        m = Module()
        beat = self.i_data.payload
        m.submodules.crc = check = LinkCrc()
        index = Signal(range(64))          # bytes of this frame so far, stops at 63
        # The frame's type, one flag per type the device accepts (none: unknown type).
        kinds = {code: Signal(name=f"is_{chr(code)}") for code in HOST_FRAME_LENGTHS}
        arg = Signal(16)                   # bytes 1-2: a command's sequence number, a grant
        lost = Signal()
        line_error = Signal()
        # The layout is not a whole number of bytes: shift whole bytes, use the low bits.
        cmd = Signal(8 * COMMAND_BYTES)
        m.d.comb += self.o_cmd.payload.eq(cmd[:COMMAND_LAYOUT.size])

        with m.If(self.o_cmd.ready):
            m.d.sync += self.o_cmd.valid.eq(0)
        for pulse in (self.o_credit, self.o_hello, self.o_query, self.o_end_session,
                      self.o_good, self.o_nak,
                      self.o_crc_error, self.o_framing_error, self.o_overflow):
            m.d.sync += pulse.eq(0)
        with m.If(self.i_lost):
            m.d.sync += lost.eq(1)
        with m.If(self.i_line_error):
            m.d.sync += line_error.eq(1)

        busy = Signal()
        m.d.comb += self.i_data.ready.eq(1)
        take = self.i_data.valid & self.i_data.ready
        m.d.comb += self.o_grant.eq(arg)

        m.d.comb += [check.i_data.eq(beat.data), check.i_step.eq(take & ~beat.end),
                     check.i_clear.eq(take & beat.end)]
        with m.If(take & ~beat.end):
            with m.If(index != 63):
                m.d.sync += index.eq(index + 1)
            with m.If(index == 0):
                for code, flag in kinds.items():
                    m.d.sync += flag.eq(beat.data == code)
            with m.If(index == 1):
                m.d.sync += arg[:8].eq(beat.data)
            with m.If(index == 2):
                m.d.sync += arg[8:].eq(beat.data)
            # Every byte up to the record's last is shifted in: the type and sequence bytes
            # fall out at the far end. A byte of the record while the register is full marks
            # the frame as refused.
            with m.If(index < 2 + COMMAND_BYTES):
                with m.If(~self.o_cmd.valid):
                    m.d.sync += cmd.eq(Cat(cmd[8:], beat.data))
                with m.Elif(index >= 2):
                    m.d.sync += busy.eq(1)

        with m.If(take & beat.end):
            m.d.sync += [index.eq(0), lost.eq(0), line_error.eq(0), busy.eq(0),
]
            m.d.sync += [flag.eq(0) for flag in kinds.values()]
            length_ok = 0
            for code, length in HOST_FRAME_LENGTHS.items():
                length_ok |= kinds[code] & (index == length)
            is_command = kinds[FrameType.COMMAND]
            with m.If(lost | self.i_lost):
                m.d.sync += [self.o_overflow.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.OVERFLOW)]
            with m.Elif(busy & is_command & length_ok):
                m.d.sync += [self.o_overflow.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.BUSY)]
            with m.Elif(beat.error | line_error | ~length_ok):
                m.d.sync += [self.o_framing_error.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.FRAMING)]
            with m.Elif(check.o_crc_n != 0xFFFF):
                m.d.sync += [self.o_crc_error.eq(1), self.o_nak.eq(1),
                             self.o_nak_reason.eq(NakReason.CRC)]
            with m.Else():
                m.d.sync += self.o_good.eq(1)
                with m.If(is_command):
                    with m.If(arg[:8] == self.o_expected_seq):
                        m.d.sync += [self.o_cmd.valid.eq(1),
                                     self.o_expected_seq.eq(self.o_expected_seq + 1)]
                    with m.Else():
                        m.d.sync += [self.o_nak.eq(1),
                                     self.o_nak_reason.eq(NakReason.SEQUENCE)]
                m.d.sync += [self.o_credit.eq(kinds[FrameType.CREDIT]),
                             self.o_hello.eq(kinds[FrameType.HELLO]),
                             self.o_query.eq(kinds[FrameType.QUERY]),
                             self.o_end_session.eq(kinds[FrameType.END_SESSION])]
        return m
