"""Occupied price levels of every book side, with the best-price search of the matching engine."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["OccupancyMap", "priority_encode"]


def priority_encode(m, bits):
    """Index of the lowest set bit of ``bits`` (combinational); returns ``(any, index)``."""
    width = len(bits)
    index = Signal(range(max(width, 2)))
    for i in reversed(range(width)):
        with m.If(bits[i]):
            m.d.comb += index.eq(i)
    return bits.any(), index


class OccupancyMap(wiring.Component):
    """One bit per price level (tick offset in the band) per side per symbol: set while the level
    holds at least one order, plus the count of occupied levels of every side.

    The search finds the best occupied level of a side from a starting offset: for the ask side
    (``side`` = 1) the lowest set offset ``≥ from``, for the bid side the highest ``≤ from``
    (the bid bitmap is searched bit-reversed). It is a two-level priority encoder: bitmaps are cut
    into 32-bit words, one encoder picks the first non-empty word after masking below ``from``,
    a second the first bit in that word; the result is combinational (the engine registers it by
    using it in the next state). The bitmaps are registers: ``2 · max_symbols · band_ticks``
    flip-flops.

    Parameters
    ----------
    max_symbols : int
    band_ticks : int

    Members
    -------
    q_sym, q_side, q_from : In
        Search: symbol index (locate − 1), side, starting offset.
    q_found, q_offset : Out
        An occupied level at or beyond ``q_from`` exists; its offset.
    p_sym, p_side, p_offset : In
        Probe one level.
    p_occupied, p_count : Out
        That level is occupied; occupied levels on that side.
    u_en, u_sym, u_side, u_offset, u_value : In
        Update: set (``u_value`` = 1) or clear one level's bit.
    """

    WORD = 32

    def __init__(self, max_symbols, band_ticks):
        self._symbols = max_symbols
        self._band = band_ticks
        sym, off = range(max_symbols), range(band_ticks)
        super().__init__({
            "q_sym": In(sym), "q_side": In(1), "q_from": In(off),
            "q_found": Out(1), "q_offset": Out(off),
            "p_sym": In(sym), "p_side": In(1), "p_offset": In(off),
            "p_occupied": Out(1), "p_count": Out(range(band_ticks + 1)),
            "u_en": In(1), "u_sym": In(sym), "u_side": In(1), "u_offset": In(off),
            "u_value": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        band = self._band
        books = 2 * self._symbols
        maps = Array(Signal(band, name=f"map{i}") for i in range(books))
        counts = Array(Signal(range(band + 1), name=f"count{i}") for i in range(books))

        # Search.
        bits = maps[Cat(self.q_side, self.q_sym)]
        reverse = Cat(bits[i] for i in reversed(range(band)))
        start = Signal(range(band))
        m.d.comb += start.eq(Mux(self.q_side, self.q_from, band - 1 - self.q_from))
        ordered = Signal(band)
        m.d.comb += ordered.eq(Mux(self.q_side, bits, reverse)
                               & (Const((1 << band) - 1, band) << start)[:band])
        word = min(self.WORD, band)
        nwords = (band + word - 1) // word
        padded = Cat(ordered, Const(0, nwords * word - band))
        words = [padded[i * word:(i + 1) * word] for i in range(nwords)]
        found, word_index = priority_encode(m, Cat(w.any() for w in words))
        chosen = Signal(word)
        m.d.comb += chosen.eq(Array(words)[word_index])
        _, bit_index = priority_encode(m, chosen)
        index = Signal(range(nwords * word))
        m.d.comb += index.eq(word_index * word + bit_index)
        m.d.comb += [
            self.q_found.eq(found),
            self.q_offset.eq(Mux(self.q_side, index, band - 1 - index)),
        ]

        # Probe.
        probe = Cat(self.p_side, self.p_sym)
        m.d.comb += [
            self.p_occupied.eq(maps[probe].bit_select(self.p_offset, 1)),
            self.p_count.eq(counts[probe]),
        ]

        # Update.
        book = Cat(self.u_side, self.u_sym)
        bit = Signal()
        m.d.comb += bit.eq(maps[book].bit_select(self.u_offset, 1))
        with m.If(self.u_en & (bit != self.u_value)):
            m.d.sync += maps[book].bit_select(self.u_offset, 1).eq(self.u_value)
            with m.If(self.u_value):
                m.d.sync += counts[book].eq(counts[book] + 1)
            with m.Else():
                m.d.sync += counts[book].eq(counts[book] - 1)
        return m
