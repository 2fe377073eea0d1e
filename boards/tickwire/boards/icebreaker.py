"""iCEBreaker (iCE40UP5K-SG48): the exchange behind the FTDI UART (channel B, ``/dev/ttyUSB1``).

``clk_mhz`` 12 (the default) runs from the 12 MHz crystal directly (3 Mbaud is 4 clocks per
bit); any other value goes through an SB_PLL40_PAD (24 MHz: 8 clocks per bit).
LED R (led 0): link (blinks until the host talks, then on); LED G (led 1): a symbol is halted.
"""

from amaranth.hdl import ClockDomain, Instance, Signal
from amaranth.lib.io import Buffer
from amaranth_boards.icebreaker import ICEBreakerPlatform
from tickwire.boards.top import LinkTop

__all__ = ["ICEBreakerTop", "ice40_pll_params", "platform"]


def ice40_pll_params(f_in_mhz, f_out_mhz):
    """(DIVR, DIVF, DIVQ) of an SB_PLL40 for exactly ``f_out_mhz`` (VCO 533…1066 MHz)."""
    for divr in range(16):
        pfd = f_in_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divq in range(1, 7):
            vco = f_out_mhz * (1 << divq)
            divf = vco / pfd - 1
            if 533 <= vco <= 1066 and divf == int(divf) and 0 <= divf < 128:
                return divr, int(divf), divq
    raise ValueError(f"no SB_PLL40 setting gives {f_out_mhz} MHz from {f_in_mhz} MHz")


def platform():
    return ICEBreakerPlatform()


class ICEBreakerTop(LinkTop):
    device = "iCE40UP5K"

    def __init__(self, core, params, clk_mhz=12, **kwargs):
        self.clk_mhz = clk_mhz
        self.clk_freq = clk_mhz * 1e6
        super().__init__(core, params, **kwargs)

    def clock_domain(self, m, platform):
        m.domains.sync = cd_sync = ClockDomain("sync")
        clk12 = platform.request("clk12", dir="-")
        if self.clk_mhz == 12:
            m.submodules.clk_buf = buf = Buffer("i", clk12)
            m.d.comb += cd_sync.clk.eq(buf.i)
            platform.add_clock_constraint(cd_sync.clk, 12e6)
            return
        divr, divf, divq = ice40_pll_params(12, self.clk_mhz)
        clk = cd_sync.clk
        lock = Signal()
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_DIVR=divr, p_DIVF=divf, p_DIVQ=divq,
            p_FILTER_RANGE=1,
            i_PACKAGEPIN=clk12.io, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=clk, o_LOCK=lock)
        platform.add_clock_constraint(clk, self.clk_freq)
        m.d.comb += cd_sync.rst.eq(~lock)
