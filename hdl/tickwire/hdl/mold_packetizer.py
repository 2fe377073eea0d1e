"""ITCH messages → MoldUDP64 packets, buffered in block RAM (gateware of ``moldudp64.Packetizer``)."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from tickwire.hdl.itch_encoder import MAX_MESSAGE, MESSAGE_LAYOUT, ItchType, spec_bytes
from tickwire.protocol import itch, moldudp64

__all__ = ["PACKET_LAYOUT", "MOLD_LAYOUT", "MoldPacketizer"]

HEADER_LENGTH = moldudp64.HEADER_LENGTH

#: The shortest message the ITCH encoder sends, which bounds the count of a packet.
MIN_MESSAGE = min(itch.SPECS[t.name[:1].encode()].length
                  for t in ItchType if t is not ItchType.NONE)

#: Block RAM depth in 8-bit mode: the second packet buffer starts at a multiple of it, so that
#: only the address bits above it need an adder.
_EBR_DEPTH = 512

#: A MoldUDP64 payload byte with its packet's ``length`` and ``sum`` (RFC 1071 ones' complement
#: sum of the payload as 16-bit big-endian words, not complemented), valid on every beat, so a
#: UDP frame builder can write its lengths and checksum before the payload.
PACKET_LAYOUT = data.StructLayout({"data": 8, "last": 1, "length": 16, "sum": 16})

#: A MoldUDP64 payload byte alone (the serial link's stream).
MOLD_LAYOUT = data.StructLayout({"data": 8, "last": 1})


class _Write(enum.Enum, shape=2):
    IDLE = 0      # between messages
    LEN_LO = 1    # the block's length high byte is written, now the low byte
    DATA = 2      # writing the message
    CLOSE = 3     # the packet is complete, waiting for the readers


def _words_sum(value, width):
    """Sum of the 16-bit words of ``value`` (``width`` bits, a multiple of 16)."""
    total = 0
    for i in range(0, width, 16):
        total = total + value[i:i + 16]
    return total


def _fold(value):
    """Ones' complement fold of a sum of at most 24 bits to 16 bits."""
    once = value[:16] + value[16:24]
    return (once[:16] + once[16])[:16]


class MoldPacketizer(wiring.Component):
    """Packs the ITCH message stream into MoldUDP64 packets, as ``tickwire.feed.FeedPublisher``.

    A packet closes after a message flagged ``flush`` (or an ``empty`` flush marker), when it
    reaches ``max_payload`` bytes exactly, or before a message that would pass ``max_payload``.
    Blocks (length and message) are written into one of two block RAM buffers while the other
    is being read out, because the header's count is known only at the close. Each buffer
    holds a packet at its own byte offsets (the first 20 bytes, the header's, are not written
    by blocks), so a write or read position is the byte's offset in the packet; the second
    buffer starts at ``max_payload`` rounded up to 512 bytes (1,400: 2 × 1,400 bytes in 2,936
    bytes, six 512 × 8 block RAMs per read port). At read-out, the header's session name and
    count come from constants and registers; its sequence number is read from the first
    buffer's bytes 10 to 17, where it is kept: in the 8 cycles after each packet starts, it
    is advanced by the previous packet's count, a byte per cycle through the first read port
    and the write port, while the block writer waits. The first sequence number is 1 (also
    after a reset).

    After ``heartbeat_cycles`` cycles with nothing to do, a heartbeat (count 0, next sequence
    number) goes out, and again every ``heartbeat_cycles`` cycles. A pulse on
    ``i_end_of_session`` closes the packet being filled, then sends the end of session (count
    0xFFFF); heartbeats stop after it.

    Each output sends a packet at one byte per cycle while it is ready, starting the cycle
    after the packet closes (or two after its last block is written).

    Parameters
    ----------
    session : str
        MoldUDP64 session name (at most 10 characters).
    max_payload : int
        UDP payload limit in bytes, header included.
    heartbeat_cycles : int
        Idle cycles before a heartbeat; 0 sends none.
    mold_output : bool
        Read every packet out on ``o_mold``.
    packet_output : bool
        Read every packet out on ``o_packet``, with its length and checksum sum (for
        ``UdpFrameBuilder``). With both outputs, each has its own read port (so its own copy
        of the buffers) and a buffer is free again when both have sent it.

    Members
    -------
    i_msg : In(stream.Signature(MESSAGE_LAYOUT))
    i_end_of_session : In(1)
    o_packet : Out(stream.Signature(PACKET_LAYOUT)), if ``packet_output``
    o_mold : Out(stream.Signature(MOLD_LAYOUT)), if ``mold_output``
    """

    def __init__(self, session="TICKWIRE01", max_payload=1400, heartbeat_cycles=0,
                 mold_output=True, packet_output=True):
        moldudp64.Packetizer(session, max_payload)        # checks both
        if max_payload < HEADER_LENGTH + 2 + MAX_MESSAGE or max_payload > 0xFFFF:
            raise ValueError(f"max_payload {max_payload} must hold the longest ITCH message "
                             f"and fit 16 bits")
        if not (mold_output or packet_output):
            raise ValueError("a MoldPacketizer needs at least one output")
        self._session = session
        self._max_payload = max_payload
        self._heartbeat_cycles = heartbeat_cycles
        self._mold_output = mold_output
        self._packet_output = packet_output
        ports = {
            "i_msg": In(stream.Signature(MESSAGE_LAYOUT)),
            "i_end_of_session": In(1),
        }
        if packet_output:
            ports["o_packet"] = Out(stream.Signature(PACKET_LAYOUT))
        if mold_output:
            ports["o_mold"] = Out(stream.Signature(MOLD_LAYOUT))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        max_payload = self._max_payload
        slot = -(-max_payload // _EBR_DEPTH) * _EBR_DEPTH
        m.submodules.buffer = buffer = Memory(shape=8, depth=slot + max_payload, init=[])
        wr = buffer.write_port()

        def address(offset, second):
            """Buffer address of byte ``offset`` of the first or the ``second`` buffer."""
            low = (_EBR_DEPTH - 1).bit_length()
            return Cat(offset[:low], offset[low:] + Mux(second, slot // _EBR_DEPTH, 0))

        # The packet being filled; its buffer is ``wbuf``, the other one is being read out.
        wbuf = Signal()
        wptr = Signal(range(max_payload + 1), init=HEADER_LENGTH)   # its length so far
        count_bits = ((max_payload - HEADER_LENGTH) // (2 + MIN_MESSAGE)).bit_length()
        fill_count = Signal(count_bits)
        wstate = Signal(_Write)

        # The packet being read out (shared by the readers).
        pkt_len = Signal.like(wptr)
        pkt_count = Signal(count_bits)
        pkt_eos = Signal()
        count = Mux(pkt_eos, moldudp64.END_OF_SESSION, pkt_count)
        header = spec_bytes(moldudp64.HEADER, {
            "session": self._session, "sequence": 0, "count": count})

        # Loading a packet into the readers: a data packet, a heartbeat or the end of session.
        load = Signal()
        load_data = Signal()
        load_eos = Signal()

        # The sequence number lives in the buffer memory, at the first buffer's header bytes
        # 10 to 17 (which no block uses), where the readers read it like payload bytes. A load
        # adds the previous packet's count to it there, a byte per cycle from the least
        # significant, through the first read port and the write port, in the 8 cycles after
        # the load: before any reader can be at byte 10 (the writer waits meanwhile).
        seq_first = HEADER_LENGTH - 3             # address of its least significant byte
        update = Signal()
        update_byte = Signal(3)
        update_carry = Signal()
        prev_count = Signal(count_bits)           # count of the packet before the loaded one
        fresh = Signal(init=1)                    # no sequence number yet: it is 1
        total = Signal(9)

        outputs = []
        if self._packet_output:
            outputs.append(self.o_packet)
        if self._mold_output:
            outputs.append(self.o_mold)
        busies = []
        for number, out in enumerate(outputs):
            rd = buffer.read_port()
            busy = Signal()
            pos = Signal(range(max_payload))
            pos_inc = Signal.like(wptr)
            next_pos = Signal.like(pos)
            from_header = Signal()
            hbyte = Signal(8)
            with m.Switch(pos[:(HEADER_LENGTH - 1).bit_length()]):
                for i, byte in enumerate(header):
                    if i < HEADER_LENGTH - 10 or i >= HEADER_LENGTH - 2:
                        with m.Case(i):
                            m.d.comb += hbyte.eq(byte)
            advance = out.valid & out.ready
            m.d.comb += [
                pos_inc.eq(pos + 1),
                next_pos.eq(Mux(advance, pos_inc, pos)),
                from_header.eq((pos < HEADER_LENGTH - 10) |
                               ((pos >= HEADER_LENGTH - 2) & (pos < HEADER_LENGTH))),
                out.valid.eq(busy),
                out.payload.data.eq(Mux(from_header, hbyte, rd.data)),
                out.payload.last.eq(pos_inc == pkt_len),
                rd.addr.eq(address(next_pos, ~wbuf & (next_pos >= HEADER_LENGTH))),
            ]
            if number == 0:
                m.d.comb += total.eq(rd.data + Mux(update_byte == 0, prev_count, update_carry))
                with m.If(load):
                    m.d.comb += rd.addr.eq(seq_first)
                with m.Elif(update):
                    m.d.comb += rd.addr.eq(seq_first - 1 - update_byte)
            with m.If(advance):
                m.d.sync += pos.eq(pos_inc)
                with m.If(out.payload.last):
                    m.d.sync += busy.eq(0)
            with m.If(load):
                m.d.sync += [busy.eq(1), pos.eq(0)]
            busies.append(busy)
        readers_idle = Signal()
        m.d.comb += readers_idle.eq(~Cat(*busies).any())

        load_count = Mux(load_data, fill_count, 0)
        with m.If(load):
            m.d.sync += [
                pkt_len.eq(Mux(load_data, wptr, HEADER_LENGTH)),
                pkt_count.eq(load_count),
                pkt_eos.eq(load_eos),
                prev_count.eq(pkt_count),
                update.eq(1),
                update_byte.eq(0),
            ]
            with m.If(load_data):
                m.d.sync += [fill_count.eq(0), wptr.eq(HEADER_LENGTH), wbuf.eq(~wbuf)]
        with m.If(update):
            m.d.sync += [update_byte.eq(update_byte + 1), update_carry.eq(total[8])]
            with m.If(update_byte == 7):
                m.d.sync += [update.eq(0), fresh.eq(0)]

        # End of session and heartbeats.
        eos_pending = Signal()
        ended = Signal()
        with m.If(self.i_end_of_session & ~ended):
            m.d.sync += eos_pending.eq(1)
        hb_due = Signal()
        if self._heartbeat_cycles:
            idle = Signal(range(self._heartbeat_cycles + 1))
            with m.If(readers_idle & ~self.i_msg.valid & (wstate == _Write.IDLE) & ~ended &
                      ~eos_pending & ~hb_due):
                m.d.sync += idle.eq(idle + 1)
            with m.Else():
                m.d.sync += idle.eq(0)
            m.d.comb += hb_due.eq(idle == self._heartbeat_cycles)

        # Writing blocks, or the sequence number while it is updated.
        beat = self.i_msg.payload
        write = Signal()
        write_byte = Signal(8)
        with m.If(update):
            m.d.comb += [
                wr.addr.eq(seq_first - update_byte),
                wr.data.eq(Mux(fresh, update_byte == 0, total[:8])),
                wr.en.eq(1),
            ]
        with m.Else():
            m.d.comb += [
                wr.addr.eq(address(wptr, wbuf)),
                wr.data.eq(write_byte),
                wr.en.eq(write),
            ]
        with m.If(write):
            m.d.sync += wptr.eq(wptr + 1)
        # Whether the message's block fits: its write position must not pass a limit given
        # by the length from a table (no adder before the comparison, a short path).
        limit = Signal.like(wptr)
        with m.Switch(beat.length):
            for length in range(MAX_MESSAGE + 1):
                with m.Case(length):
                    m.d.comb += limit.eq(max(max_payload - 2 - length, 0))
        fits = wptr <= limit
        with m.If(~update), m.Switch(wstate):   # the writer waits for the update
            with m.Case(_Write.IDLE):
                with m.If(eos_pending):
                    with m.If(fill_count != 0):
                        m.d.comb += [load.eq(readers_idle), load_data.eq(1)]
                    with m.Elif(readers_idle):
                        m.d.comb += [load.eq(1), load_eos.eq(1)]
                        m.d.sync += [eos_pending.eq(0), ended.eq(1)]
                with m.Elif(self.i_msg.valid):
                    with m.If(beat.empty):
                        with m.If(beat.flush & (fill_count != 0)):
                            m.d.comb += [self.i_msg.ready.eq(readers_idle), load.eq(readers_idle),
                                         load_data.eq(1)]
                        with m.Else():
                            m.d.comb += self.i_msg.ready.eq(1)
                    with m.Elif(~fits & (fill_count != 0)):
                        m.d.comb += [load.eq(readers_idle), load_data.eq(1)]
                    with m.Else():
                        m.d.comb += [write_byte.eq(beat.length >> 8), write.eq(1)]
                        m.d.sync += wstate.eq(_Write.LEN_LO)
                with m.Elif(hb_due & readers_idle):
                    m.d.comb += load.eq(1)
            with m.Case(_Write.LEN_LO):
                m.d.comb += [write_byte.eq(beat.length), write.eq(1)]
                m.d.sync += wstate.eq(_Write.DATA)
            with m.Case(_Write.DATA):
                m.d.comb += [self.i_msg.ready.eq(1), write_byte.eq(beat.data),
                             write.eq(self.i_msg.valid)]
                with m.If(self.i_msg.valid & beat.last):
                    m.d.sync += fill_count.eq(fill_count + 1)
                    with m.If(beat.flush | (wptr == max_payload - 1)):
                        m.d.sync += wstate.eq(_Write.CLOSE)
                    with m.Else():
                        m.d.sync += wstate.eq(_Write.IDLE)
            with m.Case(_Write.CLOSE):
                m.d.comb += [load.eq(readers_idle), load_data.eq(1)]
                with m.If(readers_idle):
                    m.d.sync += wstate.eq(_Write.IDLE)

        if self._packet_output:
            # The payload's checksum sum: the blocks' words as they are written (a packet
            # starts at an even offset), the header's at the load, from a copy of the sequence
            # number in a register.
            seq = Signal(64, init=1)
            fill_sum = Signal(24)
            pkt_sum = Signal(24)
            session_sum = sum(int.from_bytes(moldudp64.HEADER.encode(
                session=self._session, sequence=0, count=0)[i:i + 2], "big")
                for i in range(0, 10, 2))
            with m.If(write):
                m.d.sync += fill_sum.eq(fill_sum + Mux(wptr[0], write_byte, write_byte << 8))
            with m.If(load):
                m.d.sync += [
                    seq.eq(seq + pkt_count),
                    pkt_sum.eq(Mux(load_data, fill_sum, 0) + session_sum +
                               _words_sum((seq + pkt_count)[:64], 64) +
                               Mux(load_eos, moldudp64.END_OF_SESSION, load_count)),
                ]
                with m.If(load_data):
                    m.d.sync += fill_sum.eq(0)
            m.d.comb += [
                self.o_packet.payload.length.eq(pkt_len),
                self.o_packet.payload.sum.eq(_fold(pkt_sum)),
            ]
        return m
