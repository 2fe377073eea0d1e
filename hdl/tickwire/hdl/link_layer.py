"""The serial link layer: bytes from/to a UART on one side, engine streams on the other."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.link_cobs import FRAME_LAYOUT, CobsDecoder, CobsEncoder
from tickwire.hdl.link_rx import LinkReceiver
from tickwire.hdl.link_tx import LinkTransmitter, countdown
from tickwire.protocol.link import COMMAND_LAYOUT, EVENT_LAYOUT
from tickwire.protocol.serial_frames import STATUS_LAYOUT

__all__ = ["LinkLayer"]


class LinkLayer(wiring.Component):
    """Frames, checks, counts and paces everything between the host and the exchange core.

    Receive: UART bytes → :class:`CobsDecoder` → :class:`LinkReceiver` → ``o_cmd``, a byte
    every cycle, so without a FIFO (``i_rx.ready`` stays high; a byte the UART lost is counted
    as an overflow).
    Transmit: ``i_event``, ``i_mold`` and link control → :class:`LinkTransmitter` →
    :class:`CobsEncoder` → allowance gate → ``o_tx``. The frame format, reliability and flow
    control rules are in :mod:`tickwire.protocol.serial_frames`.

    Parameters
    ----------
    heartbeat_cycles : int
        Idle cycles on the transmit side before a heartbeat frame.
    link_timeout_cycles : int
        ``o_link_up`` stays high this long after a good frame from the host.
    info : bytes
        Sent after the counters in every STATUS frame (``encode_params(params)``).
    initial_allowance : int
        Bytes the device may send before the host's first HELLO or CREDIT.

    Members
    -------
    i_rx : In(stream.Signature(8))
        From the UART receiver (which ignores ``ready``; it is always high here).
    i_rx_error, i_rx_overflow : In(1)
        UART stop bit error / byte lost inside the UART.
    o_tx : Out(stream.Signature(8))
    o_cmd : Out(stream.Signature(COMMAND_LAYOUT))
    i_event : In(stream.Signature(EVENT_LAYOUT))
    i_mold : In(stream.Signature(FRAME_LAYOUT))
    i_halted : In(1)
    o_link_up : Out(1)
    o_status : Out(STATUS_LAYOUT)
    o_event_byte : Out(stream.Signature(8, always_ready=True))
        The event bytes the transmitter sends (``LinkTransmitter.o_event_byte``).
    o_end_of_session : Out(1)
        The host asked for the feed's end of session (an END_SESSION frame): a pulse.
    """

    i_rx: In(stream.Signature(8))
    i_rx_error: In(1)
    i_rx_overflow: In(1)
    o_tx: Out(stream.Signature(8))
    o_cmd: Out(stream.Signature(COMMAND_LAYOUT))
    i_event: In(stream.Signature(EVENT_LAYOUT))
    i_mold: In(stream.Signature(FRAME_LAYOUT))
    i_halted: In(1)
    o_link_up: Out(1)
    o_status: Out(STATUS_LAYOUT)
    o_event_byte: Out(stream.Signature(8, always_ready=True))
    o_end_of_session: Out(1)

    def __init__(self, heartbeat_cycles, link_timeout_cycles=None, info=b"",
                 initial_allowance=0):
        self._heartbeat_cycles = heartbeat_cycles
        self._link_timeout_cycles = link_timeout_cycles or 4 * heartbeat_cycles
        self._info = bytes(info)
        self._initial_allowance = initial_allowance
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = decoder = CobsDecoder()
        m.submodules.receiver = receiver = LinkReceiver()
        m.submodules.transmitter = transmitter = LinkTransmitter(
            self._heartbeat_cycles, self._info)
        m.submodules.encoder = encoder = CobsEncoder()
        status = self.o_status

        # The decoder and the receiver take a byte every cycle, so no receive FIFO: a byte is
        # lost only if the decoder ever refused one, or inside the UART.
        m.d.comb += [decoder.i_byte.valid.eq(self.i_rx.valid),
                     decoder.i_byte.payload.eq(self.i_rx.payload), self.i_rx.ready.eq(1)]
        lost = Signal()
        m.d.comb += lost.eq((self.i_rx.valid & ~decoder.i_byte.ready) | self.i_rx_overflow)
        wiring.connect(m, decoder.o_data, receiver.i_data)
        m.d.comb += [receiver.i_lost.eq(lost), receiver.i_line_error.eq(self.i_rx_error)]
        wiring.connect(m, receiver.o_cmd, wiring.flipped(self.o_cmd))
        m.d.comb += self.o_end_of_session.eq(receiver.o_end_session)

        wiring.connect(m, wiring.flipped(self.i_event), transmitter.i_event)
        wiring.connect(m, wiring.flipped(self.i_mold), transmitter.i_mold)
        wiring.connect(m, transmitter.o_event_byte, wiring.flipped(self.o_event_byte))
        m.d.comb += [transmitter.i_status.eq(status),
                     transmitter.i_send_status.eq(receiver.o_query | receiver.o_hello),
                     transmitter.i_send_nak.eq(receiver.o_nak),
                     transmitter.i_nak_reason.eq(receiver.o_nak_reason)]
        # The transmitter's output is a register: its byte multiplexer and the encoder's block
        # logic are separate paths.
        wiring.connect(m, transmitter.o_frame, encoder.i_frame)

        allowance = Signal(16, init=self._initial_allowance)
        open_ = allowance != 0
        m.d.comb += [self.o_tx.valid.eq(encoder.o_byte.valid & open_),
                     self.o_tx.payload.eq(encoder.o_byte.payload),
                     encoder.o_byte.ready.eq(self.o_tx.ready & open_)]
        spent = self.o_tx.valid & self.o_tx.ready
        # HELLO sets (0 + grant), CREDIT adds (saturating at 0xFFFF, the 17th bit), and a
        # byte sent takes one. The byte sent (which comes from the encoder and the UART late
        # in the cycle) only enters the second adder, as a decrement.
        added = Signal(17)
        total = Signal(17)
        m.d.comb += [added.eq(Mux(receiver.o_hello, 0, allowance)
                              + Mux(receiver.o_hello | receiver.o_credit, receiver.o_grant, 0)),
                     total.eq(added - (spent & ~receiver.o_hello))]
        with m.If(receiver.o_hello | receiver.o_credit | spent):
            m.d.sync += allowance.eq(total[:16] | total[16].replicate(16))

        link_down = countdown(m, self._link_timeout_cycles, receiver.o_good, running=False,
                              name="link_timer")
        m.d.comb += self.o_link_up.eq(~link_down)

        for counter, pulse in ((status.crc_errors, receiver.o_crc_error),
                               (status.framing_errors, receiver.o_framing_error),
                               (status.overflows, receiver.o_overflow),
                               (status.rx_frames, receiver.o_good),
                               (status.tx_frames, transmitter.o_started)):
            count = Signal(16)
            with m.If(pulse):
                m.d.sync += count.eq(count + 1)
            m.d.comb += counter.eq(count)
        m.d.comb += [status.expected_seq.eq(receiver.o_expected_seq),
                     status.allowance.eq(allowance), status.halted.eq(self.i_halted),
                     status.link_up.eq(self.o_link_up)]
        return m
