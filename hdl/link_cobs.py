"""COBS framing (Consistent Overhead Byte Stuffing) for the serial link.

A frame is encoded in blocks: a code byte ``n`` (1 … 255) followed by ``n − 1`` non-zero bytes,
meaning "these bytes, then a zero" (except for code 255, which has no zero, and the last block,
whose zero is the frame's end). The encoded frame has no 0x00 byte, so 0x00 delimits frames and
a receiver finds the next frame after any error at the next 0x00. Overhead: one byte per 254,
plus the delimiter. Encoding as in Cheshire and Baker (1999), byte for byte.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["DECODED_LAYOUT", "FRAME_LAYOUT", "CobsDecoder", "CobsEncoder"]

#: A frame's byte with its end marker.
FRAME_LAYOUT = data.StructLayout({"data": 8, "last": 1})

#: A decoded byte (``end`` = 0), or the end of a frame (``end`` = 1, ``data`` unused) with
#: ``error`` set if the frame's blocks did not add up.
DECODED_LAYOUT = data.StructLayout({"data": 8, "end": 1, "error": 1})


class CobsEncoder(wiring.Component):
    """Frames in (``last`` on the final byte), COBS bytes out, each frame followed by 0x00.

    A block is collected in a 254-byte block RAM buffer until its end is known, then sent:
    input waits while a block goes out. Empty frames cannot be expressed (``last`` comes with a
    byte).

    Members
    -------
    i_frame : In(stream.Signature(FRAME_LAYOUT))
    o_byte : Out(stream.Signature(8))
    """

    i_frame: In(stream.Signature(FRAME_LAYOUT))
    o_byte: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = Memory(shape=8, depth=256, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port()
        count = Signal(range(256))       # bytes in the block being collected
        index = Signal(range(256))       # next buffered byte to send
        code = Signal(8)
        end = Signal()                   # the frame ends after this block
        tail = Signal()                  # then one more empty block (the frame ended in a zero)
        inp, out = self.i_frame, self.o_byte

        m.d.comb += [wr.addr.eq(count), wr.data.eq(inp.payload.data), rd.addr.eq(index)]

        with m.FSM():
            with m.State("FILL"):
                m.d.comb += inp.ready.eq(1)
                with m.If(inp.valid):
                    zero = inp.payload.data == 0
                    with m.If(~zero):
                        m.d.comb += wr.en.eq(1)
                    filled = count + ~zero
                    m.d.sync += [index.eq(0), end.eq(inp.payload.last), tail.eq(0)]
                    with m.If(zero):
                        m.d.sync += [code.eq(count + 1), tail.eq(inp.payload.last)]
                        m.next = "CODE"
                    with m.Elif(inp.payload.last | (filled == 254)):
                        m.d.sync += code.eq(filled + 1)
                        m.next = "CODE"
                    with m.Else():
                        m.d.sync += count.eq(filled)
            with m.State("CODE"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(code)]
                with m.If(out.ready):
                    m.d.sync += count.eq(0)
                    with m.If(code == 1):
                        m.next = "AFTER"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(rd.data)]
                with m.If(out.ready):
                    m.d.comb += rd.addr.eq(index + 1)
                    m.d.sync += index.eq(index + 1)
                    with m.If(index + 2 == code):
                        m.next = "AFTER"
            with m.State("AFTER"):
                with m.If(tail):
                    m.d.sync += [code.eq(1), tail.eq(0)]
                    m.next = "CODE"
                with m.Elif(end):
                    m.next = "DELIMIT"
                with m.Else():
                    m.next = "FILL"
            with m.State("DELIMIT"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(0)]
                with m.If(out.ready):
                    m.next = "FILL"
        return m


class CobsDecoder(wiring.Component):
    """COBS bytes in, decoded bytes and frame ends out (:data:`DECODED_LAYOUT`).

    Repeated delimiters are skipped. A delimiter inside a block ends the frame with ``error``.

    Members
    -------
    i_byte : In(stream.Signature(8))
    o_data : Out(stream.Signature(DECODED_LAYOUT))
    """

    i_byte: In(stream.Signature(8))
    o_data: Out(stream.Signature(DECODED_LAYOUT))

    def elaborate(self, platform):
        m = Module()
        remaining = Signal(8)        # bytes left in the current block
        zero_next = Signal()         # the current block ends in a zero (code < 255)
        in_frame = Signal()
        inp, out = self.i_byte, self.o_data
        byte = inp.payload
        emit = Signal()

        with m.If(byte == 0):
            m.d.comb += [emit.eq(in_frame), out.payload.end.eq(1),
                         out.payload.error.eq(remaining != 0)]
        with m.Elif(remaining == 0):
            m.d.comb += [emit.eq(in_frame & zero_next), out.payload.data.eq(0)]
        with m.Else():
            m.d.comb += [emit.eq(1), out.payload.data.eq(byte)]

        m.d.comb += [out.valid.eq(inp.valid & emit), inp.ready.eq(~emit | out.ready)]
        with m.If(inp.valid & inp.ready):
            with m.If(byte == 0):
                m.d.sync += [in_frame.eq(0), remaining.eq(0), zero_next.eq(0)]
            with m.Elif(remaining == 0):
                m.d.sync += [in_frame.eq(1), remaining.eq(byte - 1), zero_next.eq(byte != 255)]
            with m.Else():
                m.d.sync += remaining.eq(remaining - 1)
        return m
