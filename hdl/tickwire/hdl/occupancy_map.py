"""Occupied price levels of every book side, with the best-price search of the matching engine."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = [
    "OccupancyMap",
    "priority_encode",
    "probe_signature",
    "search_signature",
    "update_signature",
]


def priority_encode(m, bits):
    """Index of the lowest set bit of ``bits`` (combinational, a balanced tree of depth
    ``log2(len(bits))``); returns ``(any, index)``."""
    width = len(bits)
    size = 1 << max(1, (width - 1).bit_length())
    level = [(bits[i], Const(0, 0)) if i < width else (Const(0, 1), Const(0, 0))
             for i in range(size)]
    while len(level) > 1:
        nxt = []
        for (lo_any, lo_idx), (hi_any, hi_idx) in zip(level[0::2], level[1::2]):
            nxt.append((lo_any | hi_any, Cat(Mux(lo_any, lo_idx, hi_idx), ~lo_any)
                        if len(lo_idx) else ~lo_any))
        level = nxt
    found, index = Signal(), Signal(range(max(width, 2)))
    m.d.comb += [found.eq(level[0][0]), index.eq(level[0][1])]
    return found, index


def search_signature(max_symbols, band_ticks):
    """The best-price search, from its user's side: ``start`` a search of book ``sym``'s
    ``side`` from ``origin`` (excluded with ``after``); ``valid``, ``found``, ``offset`` in."""
    off = range(band_ticks)
    return wiring.Signature({
        "start": Out(1), "sym": Out(range(max_symbols)), "side": Out(1), "origin": Out(off),
        "after": Out(1), "valid": In(1), "found": In(1), "offset": In(off),
    })


def probe_signature(max_symbols, band_ticks):
    """The count of occupied levels of book ``sym``'s ``side``, from its user's side."""
    return wiring.Signature({"sym": Out(range(max_symbols)), "side": Out(1),
                             "count": In(range(band_ticks + 1))})


def update_signature(max_symbols, band_ticks):
    """Set (``value`` = 1) or clear one level's bit, from the updater's side."""
    return wiring.Signature({"en": Out(1), "sym": Out(range(max_symbols)), "side": Out(1),
                             "offset": Out(range(band_ticks)), "value": Out(1)})


class OccupancyMap(wiring.Component):
    """One bit per price level (tick offset in the band) per side per symbol, set while the level
    holds at least one order; the count of occupied levels of every side; the best-price search.

    Storage is hierarchical. The bitmaps are cut into ``word``-bit words held in block RAM
    (``2 · max_symbols · ⌈band_ticks / word⌉`` words; three copies, one per read port); a
    *summary* register per book side holds one bit per word, set while the word is not zero
    (``2 · max_symbols · ⌈band_ticks / word⌉`` flip-flops).

    **Search**, two cycles. For the ask side (``side`` = 1) it finds the lowest set offset
    ``≥ origin`` (``> origin`` with ``after``), for the bid side the highest ``≤ origin`` (``<``);
    the bid side is *stored* in reversed coordinates ``r = P − 1 − offset`` (``P`` the band
    padded to whole words), so both become "the lowest set ``r ≥ r_from``". Cycle A (``search.start``): the
    RAM word holding ``r_from`` is read, and a priority encoder over the book's summary picks the
    first non-empty word *after* it, which is read too. Cycle B: the result comes from the first
    word (bits below ``r_from`` masked) if any bit is left, else from the second, into the
    ``found``/``offset`` registers, ``valid`` from the next cycle until the next
    ``start``. The read ports re-read their addresses every cycle, so the result stays exact
    for as long as the engine holds it.

    **Update** (read-modify-write, two cycles, one may start every cycle): ``update.en`` reads the word;
    next cycle the word is written back with the bit changed, its summary bit recomputed (cycle A
    already sees that bit) and the count adjusted (``probe.count`` shows it from the second cycle
    after ``update.en``). The engine only sets a clear level and clears a set one. The read ports
    are transparent for the write, so a search sees every update requested at least a cycle
    before its start. An update requested in the very cycle of a search's start is written in
    cycle B, too late for it: only a clear strictly before ``r_from`` may be (its word is then
    ``r_from``'s own, where that bit is masked anyway, or an earlier one, never read): the
    engine clears the level it walked and searches *after* it. The result registered from the
    next cycle on sees it (the ports keep re-reading). A set is never requested together with a search.

    Parameters
    ----------
    max_symbols, band_ticks : int
    word : int or None
        Bits per RAM word, a power of two; default ``min(16, band_ticks rounded up to a power
        of two)``. Wider words mean fewer summary bits and wider word encoders, masks and
        bypass muxes; 16 is the iCE40 EBR's widest port (one EBR per read port up to 256
        words, where a 32-bit word takes two), and at 2 symbols × 128 ticks it costs about a
        fifth fewer LUTs than 32.
    count : bool
        Keep the count of occupied levels per side (``probe.count``; else it reads 0): needed only
        when a side may hold fewer levels than ``band_ticks``.

    Members
    -------
    search : In(search_signature(max_symbols, band_ticks))
        ``start``, ``sym`` (locate − 1), ``side``, ``origin``, ``after``: start a search.
        ``valid``, ``found``, ``offset``: from the second cycle after ``start`` (``valid``) up
        to and including the cycle of the next ``start``, whether an occupied level at or beyond
        the origin exists, and its offset.
    probe : In(probe_signature(max_symbols, band_ticks))
        ``count``: occupied levels of ``sym``'s ``side``.
    update : In(update_signature(max_symbols, band_ticks))
        Set (``value`` = 1) or clear one level's bit.
    clear : In(Signature)
        ``en``, ``addr``: clear RAM word ``addr`` (``2 · max_symbols · ⌈band_ticks / word⌉``
        words; in a cycle with no update write-back), to start from a defined map after reset.
    """

    def __init__(self, max_symbols, band_ticks, word=None, count=True):
        self._symbols = max_symbols
        self._count = count
        self._band = band_ticks
        if word is None:
            word = min(16, 1 << max(1, (band_ticks - 1).bit_length()))
        if word < 2 or word & (word - 1):
            raise ValueError("word must be a power of two, at least 2")
        self._word = word
        words = 2 * max_symbols * -(-band_ticks // word)
        super().__init__({
            "search": In(search_signature(max_symbols, band_ticks)),
            "probe": In(probe_signature(max_symbols, band_ticks)),
            "update": In(update_signature(max_symbols, band_ticks)),
            "clear": In(wiring.Signature({"en": Out(1), "addr": Out(range(words))})),
        })

    def elaborate(self, platform):
        m = Module()
        q, u = self.search, self.update
        band, W = self._band, self._word
        books = 2 * self._symbols
        nwords = (band + W - 1) // W
        P = nwords * W
        wbits = max(1, (nwords - 1).bit_length())
        bbits = max(1, (W - 1).bit_length())
        bkbits = max(1, (books - 1).bit_length())

        m.submodules.words = mem = Memory(shape=W, depth=books << wbits, init=[])
        wr = mem.write_port()
        rd_first = mem.read_port(transparent_for=(wr,))
        rd_next = mem.read_port(transparent_for=(wr,))
        rd_upd = mem.read_port(transparent_for=(wr,))
        summary = Array(Signal(nwords, name=f"summary{i}") for i in range(books))
        counts = Array(Signal(range(band + 1), name=f"count{i}") for i in range(books))

        def addr(book, word):
            book_bits, word_bits = Signal(bkbits), Signal(wbits)
            m.d.comb += [book_bits.eq(book), word_bits.eq(word)]
            return Cat(word_bits, book_bits)

        # Probe.
        if self._count:
            m.d.comb += self.probe.count.eq(counts[Cat(self.probe.side, self.probe.sym)])

        # Every side is stored in search order: the ask side by offset, the bid side by
        # ``r = P − 1 − offset`` (for a power-of-two ``P`` just the offset's complement).
        def to_r(side, offset):
            r = Signal(range(P))
            m.d.comb += r.eq(Mux(side, offset, P - 1 - offset))
            return r

        # Update: stage 1 reads the word, stage 2 writes it back.
        u_book = Signal(bkbits)
        m.d.comb += u_book.eq(Cat(u.side, u.sym))
        u_r = to_r(u.side, u.offset)
        m.d.comb += [rd_upd.addr.eq(addr(u_book, u_r // W)), rd_upd.en.eq(u.en)]
        s2, s2_addr, s2_bit, s2_value = Signal(), Signal(len(wr.addr)), Signal(bbits), Signal()
        s2_book, s2_word = Signal(bkbits), Signal(wbits)
        m.d.sync += [s2.eq(u.en), s2_addr.eq(rd_upd.addr), s2_book.eq(u_book),
                     s2_word.eq(u_r // W), s2_bit.eq(u_r % W),
                     s2_value.eq(u.value)]
        new_word = Signal(W)
        m.d.comb += new_word.eq(rd_upd.data)
        m.d.comb += new_word.bit_select(s2_bit, 1).eq(s2_value)
        with m.If(s2):
            m.d.comb += [wr.addr.eq(s2_addr), wr.data.eq(new_word), wr.en.eq(1)]
            m.d.sync += summary[s2_book].bit_select(s2_word, 1).eq(new_word.any())
        with m.Elif(self.clear.en):
            # Clear a word (after reset: a block RAM's contents are zero on the iCE40, but
            # undefined in a 4-state simulation of the Verilog).
            m.d.comb += [wr.addr.eq(self.clear.addr), wr.data.eq(0), wr.en.eq(1)]
        # The count changes with the write-back, not at ``update.en``: that keeps the engine's
        # decision to update (late in its cycle) off the counter's carry chain.
        with m.If(s2 if self._count else 0):
            with m.If(s2_value):
                m.d.sync += counts[s2_book].eq(counts[s2_book] + 1)
            with m.Else():
                m.d.sync += counts[s2_book].eq(counts[s2_book] - 1)

        # Search, cycle A.
        a_book = Signal(bkbits)
        m.d.comb += a_book.eq(Cat(q.side, q.sym))
        r_from = Signal(range(P + 1))
        m.d.comb += r_from.eq(to_r(q.side, q.origin) + q.after)
        a_word = Signal(range(nwords + 1))
        m.d.comb += a_word.eq(r_from // W)
        current = Signal(nwords)             # the summary, with a write-back in progress
        m.d.comb += current.eq(summary[a_book])
        with m.If(s2 & (s2_book == a_book)):
            m.d.comb += current.bit_select(s2_word, 1).eq(new_word.any())
        later = Signal(nwords)
        m.d.comb += later.eq(current
                             & (Const((1 << nwords) - 1, nwords) << (a_word + 1))[:nwords])
        a_any, a_index = priority_encode(m, later)

        b_side, b_none, b_any = Signal(), Signal(), Signal()
        b_word, b_next = Signal(wbits), Signal(wbits)
        b_bit = Signal(bbits)
        b_first_addr, b_next_addr = Signal(len(wr.addr)), Signal(len(wr.addr))
        first_addr = addr(a_book, a_word)
        next_addr = addr(a_book, a_index)
        with m.If(q.start):
            m.d.sync += [b_side.eq(q.side), b_none.eq(r_from >= P), b_any.eq(a_any),
                         b_word.eq(a_word), b_next.eq(a_index), b_bit.eq(r_from % W),
                         b_first_addr.eq(first_addr), b_next_addr.eq(next_addr)]
        m.d.comb += [
            rd_first.addr.eq(Mux(q.start, first_addr, b_first_addr)), rd_first.en.eq(1),
            rd_next.addr.eq(Mux(q.start, next_addr, b_next_addr)), rd_next.en.eq(1),
        ]

        # Search, cycle B.
        # A word written in this very cycle (an update requested with the search's start) is
        # read stale here: allowed only for a clear strictly before ``r_from`` (masked in the
        # first word, and never the following word).
        first = Signal(W)
        m.d.comb += first.eq(rd_first.data & (Const((1 << W) - 1, W) << b_bit)[:W])
        following = Signal(W)
        m.d.comb += following.eq(rd_next.data)
        first_hit, first_index = priority_encode(m, first)
        next_hit, next_index = priority_encode(m, following)
        r = Signal(range(P))
        if nwords > 1:
            m.d.comb += r.eq(Mux(first_hit, Cat(first_index[:bbits], b_word),
                                 Cat(next_index[:bbits], b_next)))
        else:
            m.d.comb += r.eq(first_index)
        # The result is registered (cut after the encoders): valid from the second cycle after
        # start, and exact for as long as no new search starts (the ports keep re-reading).
        started = Signal()
        m.d.sync += [
            q.found.eq(~b_none & (first_hit | (b_any & next_hit))),
            q.offset.eq(Mux(b_side, r, P - 1 - r)),
            started.eq(q.start),
        ]
        m.d.comb += q.valid.eq(~started)    # (not ~start: a consumer may start the next)
        return m
