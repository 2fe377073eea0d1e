"""Invariants of the matching engine's components, as harnesses for bounded model checks.

Each harness wraps components in a ``Module`` (:func:`~tickwire.sim.bmc.run_bmc` clocks it by
a reset-less ``sync`` domain: the checks start from the power-up values), drives their inputs with ``AnySeq`` values restricted by
``Assume`` to what the engine does, and keeps a shadow of the state it expects; ``Assert``
compares the two every cycle. :data:`CHECKS` lists them; :func:`tickwire.sim.bmc.run_bmc`
checks one. The configurations are small (3 slots and 4 levels; 4 ticks in two words): a
bounded model check explores every input sequence up to its depth, and its cost grows
steeply with it.

* :func:`event_output_harness`: no event is lost, repeated or changed under backpressure.
* :func:`book_lists_harness`: appends and unlinks through the real order store, level table,
  list logic and free-slot stack keep every level a FIFO of exactly the slots appended to it and
  not yet unlinked (so a slot is never in two lists), the level words' head, tail and occupied
  bit and the links (NIL at a list's ends) agree with it, the occupancy updates are the right
  ones, and the free-slot stack never hands out a slot that is in a list.
* :func:`occupancy_harness`: the occupancy map's best-price search gives the best occupied
  level at or beyond its origin, and the level counts are right.
* :func:`best_price_harness`: the best-price register of a side, when not dirty, equals the
  map's best level of that side.
"""

from functools import reduce
from operator import and_

from amaranth.asserts import AnySeq
from amaranth.hdl import Array, Assert, Assume, Const, Module, Mux, Signal
from amaranth.lib import wiring
from tickwire.hdl.best_price import BestPriceCache
from tickwire.hdl.event_output import EventOutput
from tickwire.hdl.free_slot_stack import FreeSlotStack
from tickwire.hdl.level_lists import LevelLists
from tickwire.hdl.level_table import LevelTable, level_depth
from tickwire.hdl.occupancy_map import OccupancyMap
from tickwire.hdl.order_store import OrderStore
from tickwire.protocol.link import ModelParams

__all__ = [
    "BOOK_PARAMS",
    "CHECKS",
    "best_price_harness",
    "book_lists_harness",
    "event_output_harness",
    "occupancy_harness",
]

#: The book of :func:`book_lists_harness`: 3 slots, 1 symbol, 2 ticks (4 levels).
BOOK_PARAMS = ModelParams(max_orders=3, max_symbols=1, band_ticks=2, max_qty=15)


def _harness():
    return Module()


def event_output_harness(output=None):
    """The event register under any backpressure, with events made only while ``can_emit``:
    the events offered minus those taken is the register's ``valid``, and the event offered is
    the last one made (so each is offered, unchanged, until taken, and once)."""
    m = _harness()
    m.submodules.dut = dut = output or EventOutput()
    made, taken = Signal(6), Signal(6)
    last_kind, last_seq = Signal(8), Signal(8)
    stb, ready = AnySeq(1), AnySeq(1)
    m.d.comb += [
        dut.emit.stb.eq(stb), dut.o_event.ready.eq(ready),
        dut.emit.event.kind.eq(AnySeq(8)), dut.emit.event.seq.eq(AnySeq(8)),
        Assume(~stb | dut.emit.can_emit),
    ]
    with m.If(stb):
        m.d.sync += [made.eq(made + 1), last_kind.eq(dut.emit.event.kind),
                     last_seq.eq(dut.emit.event.seq[:8])]
    with m.If(dut.o_event.valid & ready):
        m.d.sync += taken.eq(taken + 1)
    m.d.comb += Assert((made - taken)[:6] == dut.o_event.valid)
    with m.If(dut.o_event.valid):
        m.d.comb += Assert((dut.o_event.payload.kind == last_kind)
                           & (dut.o_event.payload.seq[:8] == last_seq))
    return m


def _fifo_view(m, params, inl, lvl, seq, level):
    """The shadow's view of ``level``: ``(occupied, oldest, newest, neighbour)``, where
    ``neighbour(x, younger)`` is member ``x``'s next younger (or older) member (0 if none)."""
    slots = range(params.max_orders)
    member = Signal(params.max_orders)
    m.d.comb += [member[s].eq(inl[s] & (lvl[s] == level)) for s in slots]

    def pick(cond_of):
        """The slot for which ``cond_of(s)`` holds (at most one does), else 0."""
        value = Signal(range(params.max_orders))
        for s in slots:
            with m.If(cond_of(s)):
                m.d.comb += value.eq(s)
        return value

    def first(s, younger):
        """``s`` is the member appended first (``younger``: last)."""
        return reduce(and_, (~member[t] | (seq[t] < seq[s] if younger else seq[t] > seq[s])
                             for t in slots if t != s), member[s])

    def neighbour(x, younger):
        sx = Array(seq)[x]

        def beyond(t, s):       # t lies between x and s
            return ((seq[t] > sx) & (seq[t] < seq[s])) if younger else \
                ((seq[t] < sx) & (seq[t] > seq[s]))

        return pick(lambda s: reduce(
            and_, (~(member[t] & beyond(t, s)) for t in slots if t != s),
            member[s] & ((seq[s] > sx) if younger else (seq[s] < sx))))

    return (member.any(), pick(lambda s: first(s, younger=False)),
            pick(lambda s: first(s, younger=True)), neighbour)


def _first(m, candidates, band):
    """``(any, value)`` of the first ``(condition, value)`` whose condition holds."""
    found, value = Signal(), Signal(range(band))
    for i, (cond, v) in enumerate(candidates):
        with m.If(cond) if i == 0 else m.Elif(cond):
            m.d.comb += [found.eq(1), value.eq(v)]
    return found, value


def book_lists_harness(params=BOOK_PARAMS, *, lists=None, free=None):
    """Appends and unlinks, one every two cycles (read the level word and the slot's links,
    then write), on the real storage; an append takes the free-slot stack's top, an unlink
    pushes the slot back. The shadow holds per slot whether it is in a list, which level and
    its append number (FIFO order)."""
    m = _harness()
    N = params.max_orders
    m.submodules.free = free = free or FreeSlotStack(N)
    m.submodules.orders = orders = OrderStore(params)
    m.submodules.levels = levels = LevelTable(params)
    m.submodules.lists = lists = lists or LevelLists(params)
    wiring.connect(m, lists.levels, levels.write)
    wiring.connect(m, lists.links, orders.links)

    addr_bits = (level_depth(params) - 1).bit_length()
    inl = [Signal(name=f"in_list{s}") for s in range(N)]
    lvl = [Signal(addr_bits, name=f"level{s}") for s in range(N)]
    seq = [Signal(4, name=f"seq{s}") for s in range(N)]
    counter = Signal(4)
    inl_a, lvl_a = Array(inl), Array(lvl)

    phase, w_append, w_level, w_slot = Signal(), Signal(), Signal(addr_bits), Signal(range(N))
    # An operation may start in any cycle (or none: the stack is not ready for a cycle after
    # a push or a pop).
    op_go, op_append = AnySeq(1), AnySeq(1)
    op_level, op_slot = AnySeq(addr_bits), AnySeq(range(N))
    read = orders.port.read
    # The bounded depth never wraps the append numbers.
    m.d.comb += Assume(counter < 15)

    with m.If(op_go & ~levels.port.initing & ~phase):
        slot = Mux(op_append, free.top, op_slot)
        level = Mux(op_append, op_level, lvl_a[op_slot])
        with m.If(op_append):
            m.d.comb += Assume(free.ready & ~free.empty)
            # The free-slot stack never hands out a slot that is in a list.
            m.d.comb += Assert(~inl_a[free.top])
        with m.Else():
            m.d.comb += Assume(inl_a[op_slot])
        m.d.comb += [levels.port.addr.eq(level), levels.port.en.eq(1),
                     read.addr.eq(slot), read.en.eq(1), free.pop.eq(op_append)]
        m.d.sync += [phase.eq(1), w_append.eq(op_append), w_level.eq(level), w_slot.eq(slot)]

    with m.If(phase):
        word = levels.port.data
        op = lists.op
        m.d.comb += [
            levels.port.writing.eq(1),
            op.unlink.eq(~w_append), op.append.eq(w_append), op.append_mode.eq(w_append),
            op.slot.eq(w_slot), op.level.eq(word), op.next.eq(read.next),
            op.prev.eq(read.prev), op.own_level.eq(w_level), op.append_level.eq(w_level),
            free.push.eq(~w_append), free.push_slot.eq(w_slot),
        ]
        occupied, oldest, newest, neighbour = _fifo_view(m, params, inl, lvl, seq, w_level)
        # The level word read is the shadow's FIFO: occupied, oldest at the head, newest at
        # the tail.
        m.d.comb += Assert(word.occ == occupied)
        with m.If(occupied):
            m.d.comb += Assert((word.head == oldest) & (word.tail == newest))
        only = occupied & (oldest == newest)
        with m.If(~w_append):
            # The links of an unlinked slot are its neighbours in the FIFO, NIL at its ends.
            younger, older = neighbour(w_slot, younger=True), neighbour(w_slot, younger=False)
            m.d.comb += [Assert(read.next.end == (w_slot == newest)),
                         Assert(read.prev.end == (w_slot == oldest))]
            with m.If(w_slot != newest):
                m.d.comb += Assert(read.next.slot == younger)
            with m.If(w_slot != oldest):
                m.d.comb += Assert(read.prev.slot == older)
            m.d.comb += Assert(lists.occ.en == only)
            m.d.sync += inl_a[w_slot].eq(0)
        with m.Else():
            m.d.comb += Assert(lists.occ.en == ~occupied)
            m.d.sync += [inl_a[w_slot].eq(1), lvl_a[w_slot].eq(w_level),
                         Array(seq)[w_slot].eq(counter), counter.eq(counter + 1)]
        m.d.comb += Assert(~lists.occ.en | (lists.occ.value == w_append))
        m.d.sync += phase.eq(0)
    return m


def _drive_occupancy(m, dut, symbols, band):
    """Drive ``dut`` (an occupancy map) with sets of clear levels and clears of set ones (as the
    engine does) and searches from anywhere; return the shadow bitmaps (one per book side,
    ``side + 2 · symbol``) and whether an update is requested this cycle."""
    books = 2 * symbols
    shadow = Array(Signal(band, name=f"bits{b}") for b in range(books))
    u, q = dut.update, dut.search
    u_sym, u_side, u_off = AnySeq(range(symbols)), AnySeq(1), AnySeq(range(band))
    u_en, start = AnySeq(1), AnySeq(1)
    u_book = Signal(range(books))
    m.d.comb += [
        u_book.eq(u_side + 2 * u_sym),
        u.en.eq(u_en), u.sym.eq(u_sym), u.side.eq(u_side), u.offset.eq(u_off),
        u.value.eq(~shadow[u_book].bit_select(u_off, 1)),
        Assume(~(u_en & start)),
        q.start.eq(start), q.sym.eq(AnySeq(range(symbols))), q.side.eq(AnySeq(1)),
        q.origin.eq(AnySeq(range(band))), q.after.eq(AnySeq(1)),
    ]
    with m.If(u_en):
        m.d.sync += shadow[u_book].bit_select(u_off, 1).eq(u.value)
    return shadow, u_en


def _best_of(m, bits, ask, origin, after, band):
    """``(found, offset)``: the best set level of ``bits`` at or beyond ``origin`` (``after``:
    beyond); the ask side's best is the lowest, the bid side's the highest."""
    asks = [(bits[o] & ((o > origin) | ((o == origin) & ~after)), o) for o in range(band)]
    bids = [(bits[o] & ((o < origin) | ((o == origin) & ~after)), o)
            for o in reversed(range(band))]
    return _first(m, [(ask & c, o) for c, o in asks] + [(~ask & c, o) for c, o in bids], band)


def occupancy_harness(*, symbols=1, band=4, word=2):
    """Sets of clear levels and clears of set ones (as the engine does), and searches; a
    search's result, while no update came since it started, is the shadow's best level at or
    beyond the origin; each side's count is the shadow's once two cycles have passed without
    an update."""
    m = _harness()
    m.submodules.dut = dut = OccupancyMap(symbols, band, word, count=True)
    books = 2 * symbols
    shadow, u_en = _drive_occupancy(m, dut, symbols, band)
    q = dut.search

    # The search in flight and whether an update came since it started.
    s_book, s_side = Signal(range(books)), Signal()
    s_origin, s_after, started, disturbed = Signal(range(band)), Signal(), Signal(), Signal()
    with m.If(q.start):
        m.d.sync += [s_book.eq(q.side + 2 * q.sym), s_side.eq(q.side), s_origin.eq(q.origin),
                     s_after.eq(q.after), started.eq(1), disturbed.eq(0)]
    with m.Elif(u_en):
        m.d.sync += disturbed.eq(1)
    found, best = _best_of(m, shadow[s_book], s_side, s_origin, s_after, band)
    with m.If(q.valid & started & ~disturbed & ~u_en):
        m.d.comb += Assert(q.found == found)
        with m.If(found):
            m.d.comb += Assert(q.offset == best)

    quiet = Signal(2)
    m.d.sync += quiet.eq(Mux(u_en, 0, Mux(quiet == 3, 3, quiet + 1)))
    p_sym, p_side = AnySeq(range(symbols)), AnySeq(1)
    m.d.comb += [dut.probe.sym.eq(p_sym), dut.probe.side.eq(p_side)]
    p_bits = shadow[p_side + 2 * p_sym]
    with m.If(quiet >= 2):
        m.d.comb += Assert(dut.probe.count == sum(p_bits[i] for i in range(band)))
    return m


def best_price_harness(*, symbols=1, band=4, word=2, cache=None):
    """The best-price registers beside the occupancy map under the same updates and searches:
    whenever a side's register is valid (not dirty), it equals the map's best level of that
    side (none, or the lowest ask / highest bid)."""
    m = _harness()
    m.submodules.occ = occ = OccupancyMap(symbols, band, word, count=False)
    m.submodules.dut = dut = cache or BestPriceCache(symbols, band)
    shadow, _ = _drive_occupancy(m, occ, symbols, band)
    q = occ.search
    m.d.comb += [
        dut.update.en.eq(occ.update.en), dut.update.sym.eq(occ.update.sym),
        dut.update.side.eq(occ.update.side), dut.update.offset.eq(occ.update.offset),
        dut.update.value.eq(occ.update.value),
        dut.search.start.eq(q.start), dut.search.sym.eq(q.sym), dut.search.side.eq(q.side),
        dut.search.origin.eq(q.origin), dut.search.after.eq(q.after),
        dut.search.valid.eq(q.valid), dut.search.found.eq(q.found),
        dut.search.offset.eq(q.offset),
    ]
    l_sym, l_side = AnySeq(range(symbols)), AnySeq(1)
    m.d.comb += [dut.lookup.sym.eq(l_sym), dut.lookup.side.eq(l_side)]
    found, best = _best_of(m, shadow[l_side + 2 * l_sym], l_side,
                           Mux(l_side, 0, band - 1), Const(0, 1), band)
    with m.If(dut.lookup.valid):
        m.d.comb += Assert(dut.lookup.found == found)
        with m.If(found):
            m.d.comb += Assert(dut.lookup.offset == best)
    return m


#: name → (harness builder, depth, seconds it takes on this machine's one core, roughly)
CHECKS = {
    "event output": (event_output_harness, 20, 5),
    "book lists": (book_lists_harness, 20, 120),
    "occupancy search": (occupancy_harness, 20, 90),
    "best-price registers": (best_price_harness, 20, 15),
}
