"""ULX3S (ECP5 LFE5U-85F): the exchange behind the FT231X UART (``/dev/ttyUSB0``).

25 MHz → EHXPLLL → ``clk_mhz`` (default 30 MHz: 3 Mbaud is 10 clocks per bit).
LED 0: link (blinks until the host talks, then on); LED 1: a symbol is halted.
"""

from amaranth.hdl import ClockDomain, Instance, Signal
from amaranth.lib.io import Buffer
from amaranth_boards.ulx3s import ULX3S_85F_Platform
from tickwire.boards.top import LinkTop

__all__ = ["ULX3STop", "ecp5_pll_params", "platform"]


def ecp5_pll_params(f_in_mhz, f_out_mhz):
    """(CLKI_DIV, CLKFB_DIV, CLKOP_DIV) of an EHXPLLL (PFD ≥ 3.125 MHz, VCO 400…800 MHz)."""
    for clki in range(1, 129):
        pfd = f_in_mhz / clki
        if pfd < 3.125:
            break
        fb = f_out_mhz / pfd
        if fb != int(fb) or not 1 <= fb <= 128:
            continue
        for op in range(1, 129):
            if 400 <= f_out_mhz * op <= 800:
                return clki, int(fb), op
    raise ValueError(f"no EHXPLLL setting gives {f_out_mhz} MHz from {f_in_mhz} MHz")


def platform():
    return ULX3S_85F_Platform()


class ULX3STop(LinkTop):
    device = "LFE5U-85F"

    def __init__(self, core, params, clk_mhz=30, **kwargs):
        self.clk_mhz = clk_mhz
        self.clk_freq = clk_mhz * 1e6
        super().__init__(core, params, **kwargs)

    def clock_domain(self, m, platform):
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.submodules.clk25 = clk25 = Buffer("i", platform.request("clk25", dir="-"))
        clki, fb, op = ecp5_pll_params(25, self.clk_mhz)
        clk = cd_sync.clk
        lock = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=op, p_CLKOP_CPHASE=op - 1, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=fb, p_CLKI_DIV=clki,
            i_CLKI=clk25.i, i_CLKFB=clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
            i_PHASEDIR=0, i_PHASESTEP=0, i_PHASELOADREG=0, i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk, o_LOCK=lock,
            a_FREQUENCY_PIN_CLKI="25", a_FREQUENCY_PIN_CLKOP=str(self.clk_mhz),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8")
        platform.add_clock_constraint(clk, self.clk_freq)
        m.d.comb += cd_sync.rst.eq(~lock)

    def extra_pins(self, m, platform):
        # The FT231X's TX driver is enabled by the FPGA on this board.
        m.submodules.uart_tx_enable = enable = Buffer(
            "o", platform.request("uart_tx_enable", 0, dir="-"))
        m.d.comb += enable.o.eq(1)
