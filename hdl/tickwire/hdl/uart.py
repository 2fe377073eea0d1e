"""8N1 UART receiver and transmitter with ``lib.stream`` byte interfaces."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "uart_divisor"]


def uart_divisor(clk_freq, baud, tolerance=0.02):
    """Clock cycles per bit for ``baud`` at ``clk_freq``; raises if the error passes ``tolerance``.

    A receiver samples each bit in its middle, so the whole frame (10 bits) may drift by less
    than half a bit: 2 % between both ends leaves margin for the far end's own error.
    """
    divisor = round(clk_freq / baud)
    if divisor < 4:
        raise ValueError(f"{clk_freq / 1e6:g} MHz is too slow for {baud} baud: "
                         f"need at least 4 clocks per bit")
    error = abs(clk_freq / divisor - baud) / baud
    if error > tolerance:
        raise ValueError(f"{baud} baud from {clk_freq / 1e6:g} MHz is off by {error:.1%} "
                         f"(divisor {divisor})")
    return divisor


class UartTx(wiring.Component):
    """Sends each byte of ``i_data`` as 8N1: start bit, 8 data bits LSB first, stop bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (:func:`uart_divisor`).

    Members
    -------
    i_data : In(stream.Signature(8))
    o_tx : Out(1)
        Line output, idle high.
    o_busy : Out(1)
    """

    i_data: In(stream.Signature(8))
    o_tx: Out(1, init=1)
    o_busy: Out(1)

    def __init__(self, divisor):
        if divisor < 2:
            raise ValueError(f"divisor {divisor} must be at least 2")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        bits = Signal(10, init=0x3FF)
        left = Signal(range(11))
        next_timer = Signal.like(timer)
        next_bits = Signal.like(bits)
        next_left = Signal.like(left)

        # The next byte is taken as the stop bit ends: bytes go out back to back. ``done`` is
        # a register, made from the next state: ``ready`` leaves the UART without logic (the
        # link's byte allowance counts on it in the same cycle).
        done = Signal(init=1)
        m.d.comb += [self.i_data.ready.eq(done), self.o_busy.eq(left != 0)]
        m.d.comb += self.o_tx.eq(bits[0])
        m.d.comb += [next_timer.eq(timer), next_bits.eq(bits), next_left.eq(left)]
        with m.If(done & self.i_data.valid):
            m.d.comb += [next_bits.eq(Cat(0, self.i_data.payload, 1)), next_left.eq(10),
                         next_timer.eq(self._divisor - 1)]
        with m.Elif(left == 0):
            pass
        with m.Elif(timer == 0):
            m.d.comb += [next_bits.eq(Cat(bits[1:], 1)), next_left.eq(left - 1),
                         next_timer.eq(self._divisor - 1)]
        with m.Else():
            m.d.comb += next_timer.eq(timer - 1)
        m.d.sync += [timer.eq(next_timer), bits.eq(next_bits), left.eq(next_left),
                     done.eq((next_left == 0) | ((next_left == 1) & (next_timer == 0)))]
        return m


class UartRx(wiring.Component):
    """Receives 8N1 bytes on ``i_rx`` into ``o_data``.

    The line is synchronized by two flip-flops, a start bit is checked at its middle and every
    bit sampled at its middle. A line cannot wait: a byte completed while the previous one is
    still unread replaces it and pulses ``o_overflow``; a stop bit read as 0 drops the byte and
    pulses ``o_frame_error``. Read it every cycle (the link layer does) or put a FIFO behind it.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (:func:`uart_divisor`).

    Members
    -------
    i_rx : In(1)
    o_data : Out(stream.Signature(8))
    o_frame_error : Out(1)
    o_overflow : Out(1)
    """

    i_rx: In(1, init=1)
    o_data: Out(stream.Signature(8))
    o_frame_error: Out(1)
    o_overflow: Out(1)

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"divisor {divisor} must be at least 4")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.i_rx, rx, init=1)
        timer = Signal(range(self._divisor))
        shreg = Signal(9)
        count = Signal(range(10))

        with m.If(self.o_data.ready):
            m.d.sync += self.o_data.valid.eq(0)
        m.d.sync += [self.o_frame_error.eq(0), self.o_overflow.eq(0)]

        with m.FSM():
            with m.State("IDLE"), m.If(~rx):
                m.d.sync += timer.eq(self._divisor // 2 - 1)
                m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(self._divisor - 1), count.eq(9)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], rx)), timer.eq(self._divisor - 1),
                                 count.eq(count - 1)]
                    with m.If(count == 1):
                        # The stop bit, sampled now; the data bits are in shreg[1:]. Going
                        # straight back to IDLE catches a start bit right after it.
                        with m.If(rx):
                            m.d.sync += [self.o_data.payload.eq(shreg[1:]),
                                         self.o_data.valid.eq(1)]
                            with m.If(self.o_data.valid & ~self.o_data.ready):
                                m.d.sync += self.o_overflow.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += self.o_frame_error.eq(1)
                            m.next = "WAIT_IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("WAIT_IDLE"), m.If(rx):
                m.next = "IDLE"
        return m
