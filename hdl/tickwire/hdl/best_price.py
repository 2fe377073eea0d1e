"""The best price of every book side in registers, so that a non-crossing add skips the search."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.occupancy_map import update_signature

__all__ = ["BestPriceCache", "lookup_signature", "search_watch_signature"]


def search_watch_signature(max_symbols, band_ticks):
    """The occupancy map's search as a watcher sees it: every member driven by the watched
    side (the engine's request and the map's answer)."""
    off = range(band_ticks)
    return wiring.Signature({
        "start": Out(1), "sym": Out(range(max_symbols)), "side": Out(1), "origin": Out(off),
        "after": Out(1), "valid": Out(1), "found": Out(1), "offset": Out(off),
    })


def lookup_signature(max_symbols, band_ticks):
    """A book side's cached best price, from the user's side: ``valid`` (not dirty),
    ``found`` (the side holds a level) and ``offset``."""
    return wiring.Signature({"sym": Out(range(max_symbols)), "side": Out(1),
                             "valid": In(1), "found": In(1), "offset": In(range(band_ticks))})


class BestPriceCache(wiring.Component):
    """Best occupied level of every book side, kept beside the
    :class:`~tickwire.hdl.occupancy_map.OccupancyMap` by watching its updates and searches.

    Each side has a register ``(valid, found, offset)``. It follows the map's updates: a level
    set beyond the best (or on an empty side) becomes the best; clearing the best level makes
    the register *dirty* (``valid`` = 0), since the next best is only known from a search. A
    full search of a side (from its far end: origin 0 on the ask side, ``band_ticks − 1`` on the
    bid side, not ``after``) refreshes it when its result is first valid, if no update came in
    the cycles between its start and then (the map's result is exact only then). The engine
    starts such a search for every command, so a side is dirty at most until the next command.
    Starts invalid after reset.

    Parameters
    ----------
    max_symbols, band_ticks : int

    Members
    -------
    update : In(update_signature)
        The occupancy map's update port, watched (every member ``In``).
    search : In(search_watch_signature(max_symbols, band_ticks))
        The map's search, watched.
    lookup : In(lookup_signature(max_symbols, band_ticks))
        The register of ``sym``'s ``side`` (combinational read).
    """

    def __init__(self, max_symbols, band_ticks):
        self._symbols, self._band = max_symbols, band_ticks
        super().__init__({
            "update": In(update_signature(max_symbols, band_ticks)),
            "search": In(search_watch_signature(max_symbols, band_ticks)),
            "lookup": In(lookup_signature(max_symbols, band_ticks)),
        })

    def elaborate(self, platform):
        m = Module()
        books = 2 * self._symbols
        valid = Array(Signal(name=f"valid{b}") for b in range(books))
        found = Array(Signal(name=f"found{b}") for b in range(books))
        best = Array(Signal(range(self._band), name=f"best{b}") for b in range(books))
        u, s, q = self.update, self.search, self.lookup

        # Updates: only a clear level is set and a set one cleared. Ask side (1): lowest.
        ub = Cat(u.side, u.sym)
        beyond = Mux(u.side, u.offset < best[ub], u.offset > best[ub])
        with m.If(u.en & u.value & (~found[ub] | beyond)):
            m.d.sync += [found[ub].eq(1), best[ub].eq(u.offset)]
        with m.If(u.en & ~u.value & found[ub] & (best[ub] == u.offset)):
            m.d.sync += valid[ub].eq(0)

        # Searches: stage 1 the cycle after a full search's start, 2 when its result is first
        # valid; ``clean`` while no update came since the start.
        stage, clean, s_book = Signal(2), Signal(), Signal(range(books))
        full = ~s.after & (s.origin == Mux(s.side, 0, self._band - 1))
        with m.If((stage == 2) & s.valid & clean & ~u.en):
            m.d.sync += [valid[s_book].eq(1), found[s_book].eq(s.found),
                         best[s_book].eq(s.offset)]
        with m.If(s.start):
            m.d.sync += [stage.eq(Mux(full, 1, 0)), clean.eq(~u.en),
                         s_book.eq(Cat(s.side, s.sym))]
        with m.Else():
            m.d.sync += stage.eq(Mux(stage == 1, 2, 0))
            with m.If(u.en):
                m.d.sync += clean.eq(0)

        qb = Cat(q.side, q.sym)
        m.d.comb += [q.valid.eq(valid[qb]), q.found.eq(found[qb]), q.offset.eq(best[qb])]
        return m
