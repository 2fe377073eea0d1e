"""A board top: UART ↔ link layer ↔ exchange core, with link and halt LEDs.

Board files subclass :class:`LinkTop` for their clock (PLL) and pins; the core is a parameter
(:func:`tickwire.boards.core.make_core` gives the real one or a named stand-in).
"""

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.io import Buffer
from tickwire.hdl.link_layer import LinkLayer
from tickwire.hdl.uart import UartRx, UartTx, uart_divisor
from tickwire.protocol.serial_frames import encode_params

__all__ = ["LinkBridge", "LinkTop", "connect_core"]


def connect_core(m, link, core):
    """Wire a :class:`~tickwire.hdl.link_layer.LinkLayer` to an exchange core: commands in;
    events, MoldUDP64 packets and the halt status out; the event bytes the link sends and the
    host's end of session back to the core's feed."""
    wiring.connect(m, link.o_cmd, core.i_cmd)
    wiring.connect(m, core.o_event, link.i_event)
    wiring.connect(m, core.o_mold, link.i_mold)
    wiring.connect(m, link.o_event_byte, core.i_event_byte)
    m.d.comb += [link.i_halted.eq(core.o_halted),
                 core.i_end_of_session.eq(link.o_end_of_session)]


class LinkBridge(wiring.Component):
    """UART pins ↔ link layer ↔ core, without a platform (the part that is simulated).

    Members: ``rx`` (in), ``tx`` (out), ``link_up``, ``halted`` (out) as plain signals.
    """

    def __init__(self, core, params, clk_freq, baud, heartbeat_ms=100, divisor=None):
        self.core = core
        self.params = params
        self.divisor = divisor or uart_divisor(clk_freq, baud)
        self.heartbeat_cycles = max(1, int(clk_freq * heartbeat_ms / 1000))
        super().__init__({"rx": wiring.In(1, init=1), "tx": wiring.Out(1, init=1),
                          "link_up": wiring.Out(1), "halted": wiring.Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        m.submodules.link = link = LinkLayer(self.heartbeat_cycles,
                                             info=encode_params(self.params))
        m.submodules.core = core = self.core
        m.d.comb += [rx.i_rx.eq(self.rx), self.tx.eq(tx.o_tx)]
        wiring.connect(m, rx.o_data, link.i_rx)
        m.d.comb += [link.i_rx_error.eq(rx.o_frame_error), link.i_rx_overflow.eq(rx.o_overflow)]
        wiring.connect(m, link.o_tx, tx.i_data)
        connect_core(m, link, core)
        m.d.comb += [self.link_up.eq(link.o_link_up), self.halted.eq(core.o_halted)]
        return m


class LinkTop(Elaboratable):
    """The whole board design; subclasses give ``clk_freq`` and ``clock_domain(m, platform)``.

    Parameters
    ----------
    core : wiring.Component
        An :class:`~tickwire.boards.core.BoardCore` (or anything with its ports).
    params : ModelParams
        The core's capacity, reported to the host in STATUS frames.
    baud : int
    heartbeat_ms : float
    """

    clk_freq = None

    def __init__(self, core, params, baud=3_000_000, heartbeat_ms=100):
        self.core = core
        self.params = params
        self.baud = baud
        self.heartbeat_ms = heartbeat_ms
        try:
            uart_divisor(self.clk_freq, baud)       # fails early on an impossible baud
        except ValueError:
            self._MustUse__silence = True
            raise

    def clock_domain(self, m, platform):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        self.clock_domain(m, platform)
        m.submodules.bridge = bridge = LinkBridge(self.core, self.params, self.clk_freq,
                                                  self.baud, self.heartbeat_ms)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buf = rx_buf = Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = Buffer("o", uart.tx)
        m.d.comb += [bridge.rx.eq(rx_buf.i), tx_buf.o.eq(bridge.tx)]
        self.extra_pins(m, platform)
        # A heartbeat blink on the first LED while the host is silent, steady once it talks.
        quarter = int(self.clk_freq // 4)
        blink = Signal(range(quarter))
        phase = Signal()
        m.d.sync += blink.eq(blink + 1)
        with m.If(blink == quarter - 1):
            m.d.sync += [blink.eq(0), phase.eq(~phase)]
        for i, value in enumerate([bridge.link_up | phase, bridge.halted]):
            m.submodules[f"led_{i}"] = led = Buffer("o", platform.request("led", i, dir="-"))
            m.d.comb += led.o.eq(value)
        return m

    def extra_pins(self, m, platform):
        pass
