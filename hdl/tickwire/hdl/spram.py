"""A single-port RAM: the iCE40UP5K's SPRAM (``SB_SPRAM256KA``) or an Amaranth model of it."""

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SinglePortRAM"]


class SinglePortRAM(wiring.Component):
    """One address for reads and writes, a registered read.

    A cycle with ``en`` and not ``we`` reads ``addr``: ``rdata`` shows the word from the next
    cycle and holds it until the next read. A cycle with ``we`` writes ``wdata`` at ``addr``;
    the user must not rely on ``rdata`` after a write until its next read (the model, a block
    RAM with one port each way, holds it; the SPRAM need not). Contents at power-up are
    undefined (the model starts with every bit set): the user writes before it reads.

    Parameters
    ----------
    width, depth : int
    spram : bool
        Build ``⌈width / 16⌉`` ``SB_SPRAM256KA`` side by side (``depth`` ≤ 16384) instead of the
        Amaranth model.
    """

    def __init__(self, width, depth, spram=False):
        if spram and depth > 16384:
            raise ValueError("an SB_SPRAM256KA holds 16384 words")
        self._width, self._depth, self._spram = width, depth, spram
        super().__init__({
            "addr": In(range(depth)), "en": In(1), "we": In(1), "wdata": In(width),
            "rdata": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        width, depth = self._width, self._depth
        if self._spram:
            for i in range(0, width, 16):
                dout = Signal(16, name=f"spram_dout{i // 16}")
                m.submodules[f"spram{i // 16}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=Cat(self.addr, Signal(14 - len(self.addr))),
                    i_DATAIN=self.wdata[i:i + 16], i_MASKWREN=0b1111, i_WREN=self.we,
                    i_CHIPSELECT=self.en | self.we, i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1, o_DATAOUT=dout)
                width_here = min(16, width - i)
                m.d.comb += self.rdata[i:i + width_here].eq(dout[:width_here])
            return m
        m.submodules.mem = mem = Memory(shape=width, depth=depth,
                                        init=[(1 << width) - 1] * depth)
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())
        m.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.wdata), wr.en.eq(self.we),
                     rd.addr.eq(self.addr), rd.en.eq(self.en & ~self.we),
                     self.rdata.eq(rd.data)]
        return m

