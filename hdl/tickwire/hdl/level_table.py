"""The matching engine's price-level table: head, tail and occupied bit of every level's FIFO."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.spram import SinglePortRAM

__all__ = [
    "LevelTable",
    "level_depth",
    "level_layout",
    "level_port_signature",
    "level_write_signature",
]


def level_layout(params):
    """One price level: head (oldest) and tail (newest) slot of its FIFO, and whether the level
    is occupied (the same as its occupancy bit; kept here so that a level read tells it)."""
    return data.StructLayout({"head": range(params.max_orders),
                              "tail": range(params.max_orders), "occ": 1})


def level_depth(params):
    """Words of the table: ``max_symbols · 2 · 2^⌈log2 band_ticks⌉``, addressed by
    ``symbol ∥ side ∥ offset``."""
    return params.max_symbols * 2 << (params.band_ticks - 1).bit_length()


def level_port_signature(params):
    """The level table's read side, from its user's side.

    Members
    -------
    addr, en : Out
        Read the level word at ``addr`` (``data`` from the next cycle, held until the next
        read).
    data : In(level_layout(params))
    writing : Out(1)
        The table's one address is the write port's this cycle (set by a state that may write;
        such a state never reads, but with ``head_read``).
    head_read : Out(1)
        With ``writing``: the heads RAM reads ``addr`` (``en``) while the tails RAM may be
        written (the user writes no head this cycle): the walker's look at the next level's
        head while it unlinks the last order of the current one.
    initing : In(1)
        The table is being cleared after reset: no reads or writes yet.
    """
    return wiring.Signature({"addr": Out(range(level_depth(params))), "en": Out(1),
                             "data": In(level_layout(params)), "writing": Out(1),
                             "head_read": Out(1), "initing": In(1)})


def level_write_signature(params):
    """The level table's write side, from its user's side: ``addr``, ``data``, and an enable per
    half of the word: ``head_en`` writes the head, ``tail_en`` the tail and the occupied bit
    (an unlink then writes the end it moves without reading the other)."""
    return wiring.Signature({"head_en": Out(1), "tail_en": Out(1),
                             "addr": Out(range(level_depth(params))),
                             "data": Out(level_layout(params))})


class LevelTable(wiring.Component):
    """Head and tail slot and an occupied bit per price level, in two single-ported RAMs (the
    heads; the tails with the occupied bits), each written on its own.

    Single-ported so that it can be the iCE40UP5K's SPRAM (``spram=True``, see
    :class:`~tickwire.hdl.spram.SinglePortRAM`): the user never reads and writes one RAM in the
    same cycle. Both RAMs share the address, but with ``head_read`` the heads RAM reads while
    the tails RAM is written. Its contents start undefined, so after reset the table clears itself, one word per
    cycle (``initing``; ``init_addr`` is the word being cleared, which the engine also uses to
    clear the occupancy map's words).

    Parameters
    ----------
    params : ModelParams
    spram : bool
        Build the table from ``SB_SPRAM256KA`` blocks (``Instance``; not simulable).

    Members
    -------
    port : In(level_port_signature(params))
    write : In(level_write_signature(params))
    init_addr : Out(range(level_depth(params)))
    """

    def __init__(self, params, *, spram=False):
        self._params, self._spram = params, spram
        depth = level_depth(params)
        super().__init__({"port": In(level_port_signature(params)),
                          "write": In(level_write_signature(params)),
                          "init_addr": Out(range(depth))})

    def elaborate(self, platform):
        m = Module()
        depth = level_depth(self._params)
        layout = level_layout(self._params)
        head_bits = len(Signal(range(self._params.max_orders)))
        m.submodules.heads = heads = SinglePortRAM(head_bits, depth, spram=self._spram)
        m.submodules.tails = tails = SinglePortRAM(layout.size - head_bits, depth,
                                                   spram=self._spram)
        # A flag of its own, not an FSM output: in a 4-state simulation (Icarus) an FSM's
        # combinational outputs stay undefined until its state first changes.
        initing = Signal(init=1)
        with m.If(initing):
            m.d.sync += [self.init_addr.eq(self.init_addr + 1),
                         initing.eq(self.init_addr != depth - 1)]
        port, write = self.port, self.write
        wr_addr, wr_data = Signal.like(write.addr), Signal(layout)
        ram_addr, head_addr = Signal.like(write.addr), Signal.like(write.addr)
        m.d.comb += [
            port.initing.eq(initing),
            wr_addr.eq(Mux(initing, self.init_addr, write.addr)),
            ram_addr.eq(Mux(port.writing | initing, wr_addr, port.addr)),
            head_addr.eq(Mux((port.writing & ~port.head_read) | initing, wr_addr, port.addr)),
            wr_data.eq(Mux(initing, 0, write.data.as_value())),
            port.data.head.eq(heads.rdata),
            Cat(port.data.tail, port.data.occ).eq(tails.rdata),
        ]
        for ram, addr, en, rd_en, wdata in (
                (heads, head_addr, write.head_en, port.en, wr_data.head),
                (tails, ram_addr, write.tail_en, port.en & ~port.head_read,
                 Cat(wr_data.tail, wr_data.occ))):
            m.d.comb += [ram.addr.eq(addr), ram.we.eq(initing | en), ram.en.eq(rd_en),
                         ram.wdata.eq(wdata)]
        return m
