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

    A block is collected in a block RAM buffer until its end is known, then sent: input waits
    while a block goes out. Empty frames cannot be expressed (``last`` comes with a byte).
    One byte per cycle both ways (in while collecting; out while sending the code byte, the
    block's bytes, an empty block for a frame ending in a zero, and the delimiter).

    One counter, ``code``, is both the block's code byte (1 + its non-zero bytes) and the
    next write address: non-zero bytes go to addresses 1 … 254 of the buffer. Sending, the
    read address counts from 1 and the block ends when it reaches ``code``; a frame that ends
    in a zero gets one more block, code 1 alone, sent by the same state.

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
        # Reads (sending) and writes (collecting) never share a cycle, so transparency changes
        # nothing; asking for it spares Yosys's read-first emulation (write port registers).
        rd = buffer.read_port(transparent_for=(wr,))
        code = Signal(8, init=1)        # 1 + non-zero bytes collected; the next write address
        addr = Signal(8, init=1)        # the next buffered byte to read
        end = Signal()                  # the frame ends after this block
        tail = Signal()                 # then one more empty block (the frame ended in a zero)
        inp, out = self.i_frame, self.o_byte
        sent = out.valid & out.ready

        m.d.comb += [wr.addr.eq(code), wr.data.eq(inp.payload.data), rd.addr.eq(addr),
                     rd.en.eq(0)]

        with m.FSM():
            with m.State("FILL"):
                m.d.comb += inp.ready.eq(1)
                with m.If(inp.valid):
                    nonzero = inp.payload.data != 0
                    m.d.comb += wr.en.eq(nonzero)
                    m.d.sync += [code.eq(code + nonzero), end.eq(inp.payload.last),
                                 tail.eq(~nonzero & inp.payload.last)]
                    with m.If(~nonzero | inp.payload.last | (code == 254)):
                        m.next = "CODE"
            # The code byte, then the block's bytes: each byte sent fetches the next (the read
            # port holds its data while ``en`` is low).
            def send_block():
                with m.If(sent):
                    m.d.comb += rd.en.eq(1)
                    m.d.sync += addr.eq(addr + 1)
                    with m.If(addr == code):
                        m.d.sync += [code.eq(1), addr.eq(1), tail.eq(0)]
                        with m.If(tail):
                            m.next = "CODE"
                        with m.Elif(end):
                            m.next = "DELIMIT"
                        with m.Else():
                            m.next = "FILL"
                    with m.Else():
                        m.next = "DATA"
            with m.State("CODE"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(code)]
                send_block()
            with m.State("DATA"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(rd.data)]
                send_block()
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
        # One more than the bytes left in the current block, so that a code byte loads as it
        # is: 1 at a block boundary (and outside frames).
        left = Signal(8, init=1)
        zero_next = Signal()         # the current block ends in a zero (code < 255)
        in_frame = Signal()
        inp, out = self.i_byte, self.o_data
        byte = inp.payload
        emit = Signal()
        boundary = left == 1

        with m.If(byte == 0):
            m.d.comb += [emit.eq(in_frame), out.payload.end.eq(1),
                         out.payload.error.eq(~boundary)]
        with m.Elif(boundary):
            m.d.comb += [emit.eq(in_frame & zero_next), out.payload.data.eq(0)]
        with m.Else():
            m.d.comb += [emit.eq(1), out.payload.data.eq(byte)]

        m.d.comb += [out.valid.eq(inp.valid & emit), inp.ready.eq(~emit | out.ready)]
        with m.If(inp.valid & inp.ready):
            with m.If(byte == 0):
                m.d.sync += [in_frame.eq(0), left.eq(1), zero_next.eq(0)]
            with m.Elif(boundary):
                m.d.sync += [in_frame.eq(1), left.eq(byte), zero_next.eq(byte != 255)]
            with m.Else():
                m.d.sync += left.eq(left - 1)
        return m
