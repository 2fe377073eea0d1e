"""The matching engine's control: the command FSM and the walker.

See :mod:`tickwire.hdl.matching_engine` for the states, the cycles they take and how events
are made; this component holds them and steers the storage components through its ports.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.best_price import lookup_signature
from tickwire.hdl.breaker_bounds import BreakerBounds
from tickwire.hdl.command_checks import checks_layout
from tickwire.hdl.event_mux import EVENT_SOURCES, make_signature, select_code
from tickwire.hdl.fill_compare import FillCompare
from tickwire.hdl.free_slot_stack import free_slot_signature
from tickwire.hdl.level_lists import list_op_signature
from tickwire.hdl.level_table import level_port_signature
from tickwire.hdl.occupancy_map import probe_signature, search_signature
from tickwire.hdl.order_store import order_port_signature
from tickwire.hdl.order_writer import QtySource, order_write_signature
from tickwire.hdl.price_offsets import PriceOffsets
from tickwire.hdl.symbol_table import symbol_port_signature
from tickwire.hdl.walk_ahead import WalkAhead
from tickwire.protocol.link import (
    COMMAND_LAYOUT,
    Action,
    EventKind,
    Reason,
    ReplaceMode,
    Side,
    Stp,
    Tif,
)

__all__ = ["EngineControl"]

_E = EventKind


class EngineControl(wiring.Component):
    """The matching engine's command FSM (dispatch, validation, the walker of crossing orders
    and FOK / min-qty pre-counts, rest, cancel, replace, declare, halt, expiry) with the
    datapath it shares between states (:class:`~tickwire.hdl.price_offsets.PriceOffsets`,
    :class:`~tickwire.hdl.fill_compare.FillCompare`,
    :class:`~tickwire.hdl.breaker_bounds.BreakerBounds`). It steers the event multiplexers and
    the order word's writer through select codes and flags.

    The walker stays a group of this FSM's states: it shares the incoming order's registers,
    the RAM ports and the event maker with the states around it, and hands over in the same
    cycle; as a separate FSM each shared port would need a multiplexer between the two, which
    the iCEBreaker has no room for.

    Parameters
    ----------
    params : ModelParams
    max_levels : int
        Price levels a book side may hold (``< band_ticks``: the side's count is probed).
    best_price, order_register, lookahead : bool
        See :class:`~tickwire.hdl.matching_engine.MatchingEngine`.

    Members
    -------
    i_cmd : In(stream.Signature(COMMAND_LAYOUT))
        Taken in the command's last cycle (see :class:`~tickwire.hdl.matching_engine.MatchingEngine`).
    checks : In(checks_layout())
        The :class:`~tickwire.hdl.command_checks.CommandChecks` of the offered command.
    event : Out(make_signature(params))
        To the :class:`~tickwire.hdl.event_mux.EventMux`: the event made, its fields' select
        codes and sources.
    order_read : Out
        The :class:`~tickwire.hdl.order_store.OrderStore`'s read port.
    order_write : Out(order_write_signature(params))
        To the :class:`~tickwire.hdl.order_writer.OrderWriter`.
    levels : Out(level_port_signature(params))
    lists : Out(list_op_signature(params))
    search, probe : Out
        The :class:`~tickwire.hdl.occupancy_map.OccupancyMap`'s search and level count.
    free : Out(free_slot_signature(max_orders))
    syms : Out(symbol_port_signature(params))
    best : Out(lookup_signature(max_symbols, band_ticks))
        Only with ``best_price``: the contra side's cached best price, looked up in ``IDLE``
        (registered) and decided on in ``NEW``.
    """

    def __init__(self, params, *, max_levels, best_price=False, order_register=False,
                 lookahead=False):
        self._params, self._max_levels = params, max_levels
        self._best_price = best_price
        self._order_register = order_register
        self._lookahead = lookahead
        S, N, band = params.max_symbols, params.max_orders, params.band_ticks
        members = {
            "i_cmd": In(stream.Signature(COMMAND_LAYOUT)),
            "checks": In(checks_layout()),
            "event": Out(make_signature(params)),
            "order_read": Out(order_port_signature(params).members["read"].signature),
            "order_write": Out(order_write_signature(params)),
            "levels": Out(level_port_signature(params)),
            "lists": Out(list_op_signature(params)),
            "search": Out(search_signature(S, band)),
            "probe": Out(probe_signature(S, band)),
            "free": Out(free_slot_signature(N)),
            "syms": Out(symbol_port_signature(params)),
        }
        if best_price:
            members["best"] = Out(lookup_signature(S, band))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p = self._params
        S, N, band = p.max_symbols, p.max_orders, p.band_ticks
        off_bits = len(Signal(range(band)))
        limited = self._max_levels < band
        occ_search, free, syms = self.search, self.free, self.syms
        lv_rd = self.levels
        initing = lv_rd.initing
        ord_rd, ord_wr = self.order_read, self.order_write

        # -- registers -------------------------------------------------------------------------
        # The command stays on ``i_cmd`` while it runs: ``ready`` rises in the cycle it ends,
        # so the engine needs no copy of it (the stream keeps a payload offered and not taken).
        c = self.i_cmd.payload
        bsym = Signal(range(S))                 # symbol index of the book concerned
        # The order a cancel/replace/expiry works on: the order RAM's read data, which holds
        # from FIND / EXPIRE_CHECK until the command ends or the walk reads another order.
        t, t_next, t_prev = ord_rd.order, ord_rd.next, ord_rd.prev
        # A cancel/replace's slot is the command's (checked < N in FIND before it is used).
        t_slot = Signal(range(N))
        m.d.comb += t_slot.eq(c.slot)
        lv_addr = Signal(len(lv_rd.addr))
        qty_shape = range(p.max_qty + 1)
        qb = len(Signal(qty_shape))
        # Shares of a validated command (1 .. max_qty): the bits above ``qb`` are zero.
        cq = c.qty[:qb]
        # Checks of the command alone, registered (every state that uses them comes at least
        # a cycle after IDLE, with the same command on ``i_cmd``).
        k = self.checks
        c_big, bad_qty, bad_min, min_set, sym_ok = (k.big, k.bad_qty, k.bad_min, k.min_set,
                                                    k.sym_ok)
        declare_ok, above_half, brk_set = k.declare_ok, k.above_half, k.breaker_set
        in_qty = Signal(qty_shape)              # incoming order (NEW, crossing REPLACE)
        is_replace = Signal()
        # The incoming order's id: the command stays on ``i_cmd`` while it runs.
        in_id = Signal(32)
        m.d.comb += in_id.eq(Mux(is_replace, c.new_order_id, c.order_id))
        in_limit = Signal(range(band))
        in_side, in_tif, in_stp, in_firm = Signal(), Signal(2), Signal(2), Signal(16)
        rests = Signal()
        t_found = Signal()                      # FIND: the slot holds the order
        stop = Signal(8)
        # FOK / min-qty count: the shares still needed, counted down.
        need = Signal(qty_shape)
        cur_off = Signal(range(band))
        # The walk's order; also the slot an order rests in (REST_ADD) and the slot an expiry
        # looks at.
        cur_slot = Signal(range(N))
        match_no = Signal(32)
        day_count = Signal(range(N + 1))           # resting DAY orders (SYSTEM M expires them)

        # -- derived values of the current book ------------------------------------------------
        # ``IDLE`` dispatches on the command's own symbol (``bsym`` is loaded at its end), every
        # later state on ``bsym``: so one price-to-offset subtractor serves every state.
        in_idle, in_declare = Signal(), Signal()
        sym_sel = Signal(range(S))
        m.d.comb += sym_sel.eq(Mux(in_idle, c.symbol - 1, bsym))
        band_low = Signal(32)
        lot = Signal(range(p.max_qty + 2))
        m.d.comb += [
            # DECLARE: ``c.price − band // 2`` from the same subtractor (``band_low`` below).
            syms.price_sym.eq(sym_sel), syms.sym.eq(bsym),
            band_low.eq(Mux(in_declare, band // 2, syms.band_low)),
            lot.eq(syms.lot),
        ]
        locate = Signal(16)
        m.d.comb += locate.eq(bsym + 1)
        locate_ok = Signal()
        m.d.comb += locate_ok.eq(sym_ok & syms.declared)
        # The command's price as an offset, and back for events (one subtractor, one adder).
        # NEW and REPLACE decide on the registered offset (the symbol and price they need were
        # already there the cycle before); only the level reads of IDLE and FIND use
        # ``c_off`` itself (into a RAM address).
        m.submodules.prices = prices = PriceOffsets(band)
        m.d.comb += [prices.price.eq(c.price), prices.band_low.eq(band_low)]
        c_diff, c_off = prices.diff, prices.offset
        c_in_band, c_off_q = prices.in_band, prices.offset_q

        # The fill decision: a resting order's shares (the order RAM's word) against the
        # incoming order's (MATCH_ORDER), or against a cancel's new size (``in_qty`` = the
        # command's qty clamped to max_qty, CANCEL).
        m.submodules.fill = fill = FillCompare(p.max_qty)
        m.d.comb += [fill.incoming.eq(in_qty), fill.resting.eq(t.qty)]
        emptied, filled = fill.emptied, fill.filled    # in_qty >= t.qty, t.qty >= in_qty
        left, in_left = fill.left, fill.in_left

        # Each state names at most one event price's offset.
        ev_off, ev_price = prices.event_offset, prices.event_price

        def price_of(offset):
            """The event price source for a tick offset of the current book."""
            m.d.comb += ev_off.eq(offset)
            return "book"

        def level_addr(sym, side, offset):
            offset_bits = Signal(off_bits)
            m.d.comb += offset_bits.eq(offset)
            return Cat(offset_bits, side, sym)

        def crosses(offset):
            """A contra level at ``offset`` crosses the incoming limit."""
            return Mux(in_side == Side.BUY, offset <= in_limit, offset >= in_limit)

        def breaks(offset):
            """|band_low + offset − reference| > breaker (breaker ≠ 0), as offset bounds."""
            return syms.breaker_on & ((offset < syms.trip_lo) | (offset >= syms.trip_hi))

        def extreme(side):
            """Where the walk of the side contra to ``side`` starts."""
            return Mux(side == Side.BUY, 0, band - 1)

        # -- events ----------------------------------------------------------------------------
        # Events go through the ``EventMux`` to the output register (``EventOutput``): the FSM
        # may make one when the register is empty or being taken (``can_emit``). A wide field
        # is named by its source's select code (``EVENT_SOURCES``), so that the states'
        # nested conditions steer a few code bits, not the 32-bit data.
        make = self.event
        ev_new, ev_stb, can_emit, selects = make.event, make.stb, make.can_emit, make.select
        m.d.comb += [ev_new.seq.eq(c.seq), ev_new.timestamp.eq(c.timestamp), make.cmd.eq(c)]
        m.d.comb += [make.sources.locate.eq(locate), make.sources.order_id.eq(t.order_id),
                     make.sources.order_qty.eq(t.qty), make.sources.cur_slot.eq(cur_slot),
                     make.sources.in_qty.eq(in_qty), make.sources.left.eq(left),
                     make.sources.price.eq(ev_price), make.sources.match.eq(match_no + 1)]
        # Whether an event is its command's last is always known when it is made.
        LAST, MORE = 1, 0
        # DIRECTORY's own fields (0 in every other event): name, tick and the round lot, whose
        # low bits come through ``in_qty`` (the lot is not checked against max_qty).
        ev_dir = Signal()
        m.d.comb += [ev_new.name.eq(Mux(ev_dir, c.name, 0)),
                     ev_new.tick.eq(Mux(ev_dir, c.tick, 0)),
                     ev_new.qty[qb:].eq(Mux(ev_dir, c.qty[qb:], 0))]
        code = select_code

        def pick(name, cond, if_true, if_false):
            """A select code chosen by ``cond`` between two sources of field ``name``."""
            return Mux(cond, code(name, if_true), code(name, if_false))

        def in_id_src(name):
            """The incoming order's id (a replace's new id) as a source of field ``name``."""
            return pick(name, is_replace, "new", "cmd")

        def emit(kind, last, **fields):
            """Write an event into the output register (the caller checks ``can_emit``);
            ``last``: it is the command's last event (the caller then calls :func:`finish`, or
            ends the command without another event). A field of ``sources`` is given as a
            source name or a select code (:func:`pick`), any other as its value."""
            m.d.comb += [ev_stb.eq(1), ev_new.kind.eq(kind), ev_new.last.eq(last)]
            for name, value in fields.items():
                if name in EVENT_SOURCES:
                    m.d.comb += getattr(selects, name).eq(code(name, value)
                                                          if isinstance(value, str) else value)
                else:
                    m.d.comb += Value.cast(getattr(ev_new, name)).eq(value)

        cmd_done = Signal()

        def finish():
            """The command ends this cycle (``i_cmd`` transfers): back to ``IDLE``, which may
            start the next command at once."""
            m.d.comb += cmd_done.eq(1)
            m.next = "IDLE"

        def reject(reason):
            """REJECT of a command other than REPLACE (its only event)."""
            emit(_E.REJECT, LAST, symbol="cmd", side=c.side, reason=reason, order_id="cmd")

        def not_found():
            """CANCEL / REPLACE of a slot not holding that order: its only event."""
            emit(_E.CANCEL_REJECT, LAST, symbol="cmd", order_id="cmd", slot="cmd",
                 reason=Reason.NOT_FOUND)
            finish()

        def reject_replace(reason):
            emit(_E.REJECT, LAST, symbol="book", reason=reason, order_id="new", other_id="cmd",
                 slot="cmd")

        # -- RAM helpers -----------------------------------------------------------------------
        def read_order(slot, then=None):
            """Read ``slot``'s order word and links; ``then``: the state that uses them, entered
            when they are there (a cycle later, or two with the order RAM's output register:
            through ``<then>_READ``)."""
            m.d.comb += [ord_rd.addr.eq(slot), ord_rd.en.eq(1)]
            if then is not None:
                m.next = after_read(then)

        def after_read(state):
            """``state``, or its wait state with the order RAM's output register."""
            return f"{state}_READ" if self._order_register else state

        def read_again(slot, state):
            """``state`` reads the next order it works on: it stays (through ``<state>_READ``
            with the order RAM's output register)."""
            read_order(slot, then=state if self._order_register else None)

        def read_level(addr):
            m.d.comb += [lv_rd.addr.eq(addr), lv_rd.en.eq(1)]
            m.d.sync += lv_addr.eq(addr)

        # The order RAM's write (``OrderWriter``) is the order read (``t``) with a few fields
        # changed, or a new order from the ``in_*`` registers, at ``cur_slot`` or the command's
        # slot: steered by flags that the states set (as for the events).
        wo_at_cur = Signal()
        # The slot written, unlinked, appended or pushed. It and the other muxes' steering
        # flag (``ap_mode``) depend on the state only, not on its decisions,
        # which keeps those decisions off the RAMs' address and data paths.
        w_slot = Signal(range(N))
        new = ord_wr.incoming
        m.d.comb += [
            w_slot.eq(Mux(wo_at_cur, cur_slot, t_slot)),
            ord_wr.slot.eq(w_slot), ord_wr.order.eq(t), ord_wr.left.eq(left),
            new.order_id.eq(in_id), new.qty.eq(in_qty), new.offset.eq(in_limit),
            new.side.eq(in_side), new.tif.eq(in_tif), new.stp.eq(in_stp), new.firm.eq(in_firm),
            new.sym.eq(bsym),
        ]

        def write_order(valid=1, qty=QtySource.ORDER, fresh=False, moved=False):
            """Write the order at ``w_slot`` (``cur_slot`` in the states that call
            :func:`at_cur`, else the command's slot): ``t`` with ``valid``, shares ``qty``
            (:class:`~tickwire.hdl.order_writer.QtySource`), or a new resting order
            (``fresh``: every field from ``in_*``), or ``t`` moved (``moved``: id and offset
            from ``in_*``)."""
            m.d.comb += [ord_wr.en.eq(1), ord_wr.valid.eq(valid),
                         ord_wr.qty.eq(qty), ord_wr.fresh.eq(fresh), ord_wr.moved.eq(moved)]
            # Count resting DAY orders (an order leaves with valid = 0, rests with valid = 1).
            if fresh:
                with m.If(in_tif == Tif.DAY):
                    m.d.sync += day_count.eq(day_count + 1)
            elif not valid:
                with m.If(t.tif == Tif.DAY):
                    m.d.sync += day_count.eq(day_count - 1)

        # Level lists. An unlink takes the order ``t`` (at ``w_slot``) out of its level,
        # ``symbol ∥ t.side ∥ t.offset`` of the book ``bsym`` (so also for the walk: the
        # resting order is on the contra side at ``cur_off``), by its own NIL-terminated links
        # alone. An append puts ``w_slot`` at the tail of the level read (address ``lv_addr``).
        # Both are flat muxes steered by flags, like the events.
        ul_en, ap_en, ap_mode = Signal(), Signal(), Signal()
        lists = self.lists
        m.d.comb += [
            lists.unlink.eq(ul_en), lists.append.eq(ap_en), lists.append_mode.eq(ap_mode),
            lists.slot.eq(w_slot), lists.level.eq(lv_rd.data),
            lists.next.eq(t_next), lists.prev.eq(t_prev),
            lists.own_level.eq(level_addr(bsym, t.side, t.offset)),
            lists.append_level.eq(lv_addr),
            lists.sym.eq(bsym), lists.side.eq(t.side), lists.offset.eq(t.offset),
            lists.new_side.eq(in_side), lists.new_offset.eq(in_limit),
            free.push_slot.eq(w_slot),
        ]

        def at_cur():
            """This state writes, unlinks, appends and pushes ``cur_slot`` (not the command's
            slot). Called at the top of a state, never under a condition."""
            m.d.comb += wo_at_cur.eq(1)

        def unlink(push=True):
            """Take the order ``t`` at ``w_slot`` out of its level's list (by its links)."""
            m.d.comb += ul_en.eq(1)
            if push:
                m.d.comb += free.push.eq(1)

        def level_room(sym, side):
            """A new level fits on ``sym``'s ``side`` (fewer than ``max_levels`` occupied)."""
            if not limited:
                return 1
            m.d.comb += [self.probe.sym.eq(sym), self.probe.side.eq(side)]
            return self.probe.count < max_levels

        def append():
            """Put ``w_slot`` at the tail of the level read into ``lv_rd`` (address
            ``lv_addr``): the level of ``in_side`` at ``in_limit`` in ``bsym``'s book. Only in
            REST_ADD and REPLACE_MOVE, whose muxes are steered by ``ap_mode``."""
            m.d.comb += ap_en.eq(1)

        def start_search(side, start, after=0, sym=bsym):
            """Cycle A of a best-price search of ``sym``'s ``side`` (harmless if unused)."""
            m.d.comb += [occ_search.start.eq(1), occ_search.sym.eq(sym),
                         occ_search.side.eq(side), occ_search.origin.eq(start),
                         occ_search.after.eq(after)]

        # The walker's look ahead (``lookahead``): the level beyond the one walked, whose head
        # is read while the current level's last order is matched, so that the walk moves on
        # in 2 cycles. With ``ahead`` the walk's next level is the registered one, else the
        # search's result: one offset (``walk_off``) and one set of comparators for every
        # state that decides on either, and one source of level addresses and ``cur_off``.
        m.submodules.ahead = walk = WalkAhead(band)
        ahead = walk.ahead
        walk_found, walk_off, s_crosses, s_trips = Signal(), Signal(range(band)), Signal(), Signal()
        m.d.comb += [walk_found.eq(Mux(ahead, walk.found, occ_search.found)),
                     walk_off.eq(Mux(ahead, walk.offset, occ_search.offset)),
                     s_crosses.eq(crosses(walk_off)), s_trips.eq(breaks(walk_off)),
                     walk.result_found.eq(occ_search.found),
                     walk.result_offset.eq(occ_search.offset),
                     walk.result_crosses.eq(s_crosses), walk.result_trips.eq(s_trips)]

        def search_result():
            """Cycle B: the result of the search started in the previous state (or the look
            ahead's level, ``ahead``): ``found``, ``offset``, and whether that level crosses the
            limit and trips the breaker."""
            return walk_found, walk_off, s_crosses, s_trips

        def delete_event(record, slot, reason, when):
            emit(_E.DELETE, when, symbol="book", side=record.side, order_id="order",
                 slot=slot, qty="order", price=price_of(record.offset), reason=reason)

        def replace_event(replace_mode, when):
            emit(_E.REPLACE, when, symbol="book", side=t.side, order_id="order",
                 other_id="new", slot="cmd", qty="in", remaining="order",
                 price="cmd", mode=replace_mode)

        def start_rest():
            """Take the resting slot (the top free slot, or a replace's own) and read the level
            it joins; wait in REST while the free-slot stack's top is being refreshed."""
            with m.If(is_replace | free.ready):
                m.d.sync += cur_slot.eq(Mux(is_replace, t_slot, free.top))
                m.d.comb += free.pop.eq(~is_replace)
                read_level(level_addr(bsym, in_side, in_limit))
                m.next = "REST_ADD"
            with m.Else():
                m.next = "REST"

        def enter_level(offset, head_state):
            """The walk (pre-count or match) goes to the contra level at ``offset``: read it."""
            m.d.sync += cur_off.eq(offset)
            read_level(level_addr(bsym, ~in_side, offset))
            m.next = head_state

        def look_ahead():
            """The walk's first cycle in a level (``ahead`` clear): take the search's result
            (the next level) and search beyond it. Harmless if it stalls (``ahead`` holds)."""
            m.d.comb += walk.look.eq(1)
            with m.If(~ahead):
                start_search(~in_side, walk_off, after=1)

        def read_next_head():
            """Read the next level's word (its head is what the walk needs)."""
            read_level(level_addr(bsym, ~in_side, walk_off))

        def next_level_ok():
            return walk.found & walk.crosses & ~walk.trips

        def go_next():
            """Move to the next level, whose head was read: read that order."""
            m.d.sync += [cur_off.eq(walk_off), cur_slot.eq(lv_rd.data.head)]
            m.d.comb += walk.leave.eq(1)
            read_order(lv_rd.data.head, then="MATCH_ORDER")

        def walk_on(found, cross, trip, enter):
            """The walk with shares left reaches the next contra level (``found``): if it does
            not ``cross`` the limit (or there is none) the order rests or is killed; if it
            would ``trip`` the breaker the book halts; else ``enter``."""
            with m.If(~found | ~cross):
                # Shares remain and ``stop`` is NONE here: MATCH_END's work, done now.
                with m.If(rests):
                    start_rest()
                with m.Elif(can_emit):
                    emit(_E.KILL, LAST, symbol="book", side=in_side,
                         order_id=in_id_src("order_id"),
                         qty="in", slot="none", reason=Reason.IOC)
                    with m.If(is_replace):
                        m.d.comb += free.push.eq(1)    # the replaced order's slot
                    finish()
            with m.Elif(trip):
                with m.If(can_emit):
                    m.d.sync += stop.eq(Reason.BREAKER)
                    m.d.comb += [syms.set_halted.eq(1), syms.halted_in.eq(1)]
                    emit(_E.TRADING, MORE, symbol="book", halted=1, reason=Reason.BREAKER)
                    m.next = "MATCH_END"
            with m.Else():
                enter()

        def read_head(order_state):
            """The level word is there: read its oldest order (its ``next`` link says whether it
            is the level's last)."""
            m.d.sync += cur_slot.eq(lv_rd.data.head)
            read_order(lv_rd.data.head, then=order_state)

        # The contra side's best price from the registers (``best_price``), looked up in IDLE on
        # the command's own symbol and side and registered: NEW decides on it.
        b_valid, b_found, b_off = Signal(), Signal(), Signal(range(band))
        if self._best_price:
            m.d.comb += [self.best.sym.eq(sym_sel), self.best.side.eq(~self.i_cmd.payload.side)]
            m.d.sync += [b_valid.eq(self.best.valid), b_found.eq(self.best.found),
                         b_off.eq(self.best.offset)]

        def rest_now():
            """NEW of an order that rests without crossing: take the top free slot and read
            its level (as MATCH_LEVEL's :func:`start_rest` would two cycles later)."""
            with m.If(free.ready):
                m.d.sync += cur_slot.eq(free.top)
                m.d.comb += free.pop.eq(1)
                read_level(level_addr(bsym, c.side, c_off_q))
                m.next = "REST_ADD"
            with m.Else():
                m.next = "REST"

        # A DECLARE's breaker bounds (the symbol table takes them in DECLARE_TRADING).
        m.submodules.bounds = bounds = BreakerBounds(band)
        m.d.comb += [bounds.reference.eq(c.price), bounds.breaker.eq(c.breaker),
                     bounds.above_half.eq(above_half),
                     syms.trip_lo_in.eq(bounds.trip_lo), syms.trip_hi_in.eq(bounds.trip_hi)]

        # -- the command FSM -------------------------------------------------------------------
        r = ord_rd.order
        # The slot read holds the order the command names.
        holds = Signal()
        m.d.comb += holds.eq((c.slot < N) & r.valid & (r.order_id == c.order_id)
                             & (c.symbol == r.sym + 1))
        max_levels = self._max_levels
        payload = self.i_cmd.payload
        m.d.comb += self.i_cmd.ready.eq(cmd_done)
        with m.FSM(name="engine", init="INIT"):
            with m.State("INIT"):                  # the clearing itself: ``initing``
                with m.If(~initing):
                    m.next = "IDLE"

            with m.State("IDLE"):
                m.d.comb += [in_idle.eq(1), walk.leave.eq(1)]    # no look ahead yet
                # The command's shares (truncated; equal to c.qty once checked ≤ max_qty):
                # the event source of every validated qty and the fill subtractors' operand
                # (CANCEL compares its new size with the order's shares in them).
                m.d.sync += in_qty.eq(c.qty[:qb])
                # Reads and the search start whatever the command (harmless for the others):
                # their addresses then do not wait for the action's decoding.
                # NEW: the level the order would rest in (for its room check), and the walk's
                # first search (NEW and COUNT_LEVEL / MATCH_LEVEL use it).
                start_search(~payload.side, extreme(payload.side), sym=sym_sel)
                read_level(level_addr(sym_sel, payload.side, c_off))
                read_order(payload.slot)                # CANCEL, REPLACE: the order
                with m.If(self.i_cmd.valid):
                    m.d.sync += bsym.eq(sym_sel)
                    with m.Switch(payload.action):
                        with m.Case(Action.NEW):
                            m.next = "NEW"
                        with m.Case(Action.CANCEL):
                            m.next = after_read("CANCEL")
                        with m.Case(Action.REPLACE):
                            m.next = after_read("FIND")
                        with m.Case(Action.DECLARE):
                            m.next = "DECLARE"
                        with m.Case(Action.HALT, Action.RESUME):
                            m.next = "HALT"
                        with m.Case(Action.SYSTEM):
                            m.next = "SYSTEM"
                        with m.Default():
                            m.next = "REJECT"

            with m.State("REJECT"):
                with m.If(can_emit):
                    emit(_E.REJECT, LAST, reason=Reason.NONE, order_id="cmd")
                    finish()

            # DECLARE, HALT / RESUME, SYSTEM ---------------------------------------------------
            with m.State("DECLARE"):
                m.d.comb += in_declare.eq(1)
                ok = declare_ok & ~syms.declared
                with m.If(can_emit):
                    with m.If(~ok):
                        reject(Reason.BAD_DECLARATION)
                        finish()
                    with m.Else():
                        m.d.comb += [
                            syms.declare.eq(1),
                            syms.lot_in.eq(Mux(c_big, p.max_qty + 1, c.qty)),
                            syms.band_low_in.eq(Mux(above_half, c_diff, 1)),
                        ]
                        emit(_E.DIRECTORY, MORE, symbol="cmd", qty="in", price="cmd")
                        m.d.comb += ev_dir.eq(1)
                        m.next = "DECLARE_TRADING"

            with m.State("DECLARE_TRADING"):
                # ``c`` still holds the DECLARE: price = reference.
                m.d.comb += [syms.set_breaker.eq(1), syms.breaker_on_in.eq(brk_set)]
                with m.If(can_emit):
                    emit(_E.TRADING, LAST, symbol="cmd", reason=Reason.NONE)
                    finish()

            with m.State("HALT"):
                with m.If(can_emit):
                    with m.If(~locate_ok):
                        reject(Reason.UNKNOWN_SYMBOL)
                    with m.Else():
                        halt = c.action == Action.HALT
                        m.d.comb += [syms.set_halted.eq(1), syms.halted_in.eq(halt)]
                        emit(_E.TRADING, LAST, symbol="cmd", halted=halt,
                             reason=Reason.OPERATOR)
                    finish()

            with m.State("SYSTEM"):
                with m.If(can_emit):
                    expire = (c.code == ord("M")) & (day_count != 0)
                    emit(_E.SYSTEM, ~expire, code=c.code)
                    with m.If(expire):
                        m.d.sync += cur_slot.eq(0)
                        read_order(0, then="EXPIRE_CHECK")
                    with m.Else():
                        finish()

            with m.State("EXPIRE_CHECK"):
                with m.If(r.valid & (r.tif == Tif.DAY)):
                    m.d.sync += bsym.eq(r.sym)
                    m.next = "EXPIRE_DELETE"
                with m.Elif(cur_slot == N - 1):
                    finish()
                with m.Else():
                    m.d.sync += cur_slot.eq(cur_slot + 1)
                    read_again(cur_slot + 1, "EXPIRE_CHECK")

            with m.State("EXPIRE_DELETE"):
                m.d.comb += lv_rd.writing.eq(1)
                at_cur()
                with m.If(can_emit):
                    delete_event(t, "cur", Reason.EXPIRED, day_count == 1)
                    unlink()
                    write_order(valid=0)
                    with m.If((day_count == 1) | (cur_slot == N - 1)):
                        finish()
                    with m.Else():
                        m.d.sync += cur_slot.eq(cur_slot + 1)
                        read_order(cur_slot + 1, then="EXPIRE_CHECK")

            # NEW ------------------------------------------------------------------------------
            with m.State("NEW"):
                market = c.market
                limit = Mux(market, Mux(c.side == Side.BUY, band - 1, 0), c_off_q)
                will_rest = ~market & (c.tif <= Tif.GTC)
                room = ~free.empty & (lv_rd.data.occ | level_room(bsym, c.side))
                with m.If(can_emit):
                    with m.If(~locate_ok):
                        reject(Reason.UNKNOWN_SYMBOL)
                        finish()
                    with m.Elif(syms.halted):
                        reject(Reason.HALTED)
                        finish()
                    with m.Elif(bad_qty):
                        reject(Reason.BAD_QTY)
                        finish()
                    with m.Elif(bad_min):
                        reject(Reason.BAD_MIN_QTY)
                        finish()
                    with m.Elif(c.stp > Stp.CANCEL_BOTH):
                        reject(Reason.BAD_STP)
                        finish()
                    with m.Elif(~market & ~c_in_band):
                        reject(Reason.OUT_OF_BAND)
                        finish()
                    with m.Elif(will_rest & ~room):
                        reject(Reason.BOOK_FULL)
                        finish()
                    with m.Else():
                        emit(_E.ACCEPT, MORE, symbol="cmd", side=c.side, order_id="cmd",
                             qty="in", remaining="in", price=pick("price", market, None, "cmd"))
                        m.d.sync += [
                            in_limit.eq(limit),
                            in_side.eq(c.side), in_tif.eq(c.tif), in_stp.eq(c.stp),
                            in_firm.eq(c.firm), rests.eq(will_rest), is_replace.eq(0),
                            stop.eq(Reason.NONE),
                            need.eq(Mux(c.tif == Tif.FOK, cq, c.min_qty[:qb])),
                        ]
                        # Without crossing (the contra best, if any, beyond the limit).
                        apart = ~b_found | Mux(c.side == Side.BUY, b_off > c_off_q,
                                               b_off < c_off_q)
                        with m.If((c.tif == Tif.FOK) | min_set):
                            m.next = "COUNT_LEVEL"
                        with m.Elif(b_valid & will_rest & apart):
                            rest_now()
                        with m.Else():
                            m.next = "MATCH_LEVEL"

            # FOK / minimum quantity: count what matching would fill -----------------------
            with m.State("COUNT_LEVEL"):
                with m.If(occ_search.valid):        # the search started a cycle ago
                    found, offset, cross, trip = search_result()
                    with m.If(~found | ~cross | trip):
                        m.next = "COUNT_DONE"
                    with m.Else():
                        enter_level(offset, "COUNT_HEAD")

            with m.State("COUNT_HEAD"):
                read_head("COUNT_ORDER")

            with m.State("COUNT_ORDER"):
                start_search(~in_side, cur_off, after=1)
                same_firm = (in_firm != 0) & (r.firm == in_firm)
                need_left = Signal(qb + 1)       # need - r.qty, negative if r.qty covers it
                m.d.comb += need_left.eq(need - r.qty)
                covered = ~same_firm & (need_left[qb] | (need_left[:qb] == 0))
                with m.If(~same_firm):
                    m.d.sync += need.eq(Mux(need_left[qb], 0, need_left[:qb]))
                with m.If(same_firm & (in_stp != Stp.CANCEL_OLDEST)):
                    m.next = "COUNT_DONE"
                with m.Elif(covered):
                    m.next = "COUNT_DONE"
                with m.Elif(t_next.end):
                    with m.If(in_side == Side.BUY):
                        with m.If(cur_off == band - 1):
                            m.next = "COUNT_DONE"
                        with m.Else():
                            m.next = "COUNT_LEVEL"
                    with m.Else():
                        with m.If(cur_off == 0):
                            m.next = "COUNT_DONE"
                        with m.Else():
                            m.next = "COUNT_LEVEL"
                with m.Else():
                    m.d.sync += cur_slot.eq(t_next.slot)
                    read_again(t_next.slot, "COUNT_ORDER")

            with m.State("COUNT_DONE"):
                start_search(~in_side, extreme(in_side))
                with m.If(need != 0):
                    with m.If(can_emit):
                        emit(_E.KILL, LAST, symbol="cmd", side=c.side, order_id="cmd",
                             qty="in", slot="none",
                             reason=Mux(c.tif == Tif.FOK, Reason.FOK, Reason.MIN_QTY))
                        finish()
                with m.Else():
                    m.next = "MATCH_LEVEL"

            # Matching -------------------------------------------------------------------------
            with m.State("MATCH_LEVEL"):
                # The walk's next level: the search's result (started a cycle ago), or with the
                # look ahead (``ahead``: a level of this walk emptied) the registered one, whose
                # head is there.
                found, offset, cross, trip = search_result()

                def enter_first():
                    enter_level(offset, "MATCH_HEAD")
                    m.d.comb += walk.leave.eq(1)

                def enter():
                    with m.If(ahead):
                        go_next()
                    with m.Else():
                        enter_first()

                # (Without the look ahead ``ahead`` stays 0 and its logic folds away.)
                if not self._lookahead:
                    with m.If(occ_search.valid):
                        walk_on(found, cross, trip, enter)
                else:
                    # The state decides only when it can emit, and then always leaves: so the
                    # search beyond the level (for the look ahead in its first cycle) starts
                    # whatever the decision, which keeps the limit and breaker checks off the
                    # search's start and the occupancy RAM's address.
                    with m.If((occ_search.valid | ahead) & can_emit):
                        with m.If(~ahead):
                            start_search(~in_side, offset, after=1)
                        walk_on(found, cross, trip, enter)

            with m.State("MATCH_HEAD"):
                read_head("MATCH_ORDER")

            with m.State("MATCH_ORDER"):
                m.d.comb += lv_rd.writing.eq(1)
                at_cur()
                if not self._lookahead:
                    # The level is left only once all its orders are gone: look beyond it.
                    start_search(~in_side, cur_off, after=1)
                elif not self._order_register:
                    look_ahead()
                    # The level's last order: its unlink writes the tails RAM only, so the heads
                    # RAM reads the next level's head meanwhile.
                    with m.If(t_next.end):
                        m.d.comb += lv_rd.head_read.eq(1)
                        read_next_head()
                price = price_of(cur_off)

                def advance():
                    with m.If(t_next.end):
                        if self._lookahead and self._order_register:
                            # The next level's head was read in MATCH_ORDER_READ: go on at once.
                            with m.If(next_level_ok()):
                                go_next()
                            with m.Else():
                                m.next = "MATCH_LEVEL"
                        else:
                            m.next = "MATCH_LEVEL"
                    with m.Else():
                        m.d.sync += cur_slot.eq(t_next.slot)
                        read_again(t_next.slot, "MATCH_ORDER")

                def remove_head():
                    unlink()
                    write_order(valid=0)

                with m.If(can_emit):
                    with m.If((in_firm != 0) & (r.firm == in_firm)):
                        with m.If(in_stp == Stp.CANCEL_NEWEST):
                            m.d.sync += stop.eq(Reason.SELF_TRADE)
                            m.next = "MATCH_END"
                        with m.Else():
                            emit(_E.DELETE, MORE, symbol="book", side=r.side, order_id="order",
                                 slot="cur", qty="order", price=price, reason=Reason.SELF_TRADE)
                            remove_head()
                            with m.If(in_stp == Stp.CANCEL_BOTH):
                                m.d.sync += stop.eq(Reason.SELF_TRADE)
                                m.next = "MATCH_END"
                            with m.Else():
                                advance()
                    with m.Else():
                        # fill = min(r.qty, in_qty), left = r.qty - fill
                        emit(_E.EXECUTE, filled, symbol="book", side=r.side, order_id="order",
                             other_id=in_id_src("other_id"), slot="cur",
                             qty=pick("qty", emptied, "order", "in"), remaining="left",
                             price=price, match="next")
                        m.d.sync += [match_no.eq(match_no + 1), in_qty.eq(in_left)]
                        with m.If(emptied):
                            remove_head()
                        with m.Else():
                            write_order(qty=QtySource.LEFT)
                        with m.If(filled & ~is_replace):
                            finish()
                        with m.Elif(filled):
                            m.next = "MATCH_END"
                        with m.Else():
                            advance()

            with m.State("MATCH_END"):
                with m.If(in_qty == 0):
                    with m.If(is_replace):
                        m.d.comb += free.push.eq(1)    # the replaced order's slot
                    finish()
                with m.Elif((stop == Reason.NONE) & rests):
                    start_rest()
                with m.Elif(can_emit):
                    emit(_E.KILL, LAST, symbol="book", side=in_side,
                         order_id=in_id_src("order_id"), qty="in",
                         slot="none", reason=Mux(stop == Reason.NONE, Reason.IOC, stop))
                    with m.If(is_replace):
                        m.d.comb += free.push.eq(1)    # the replaced order's slot
                    finish()

            with m.State("REST"):
                start_rest()

            with m.State("REST_ADD"):
                m.d.comb += lv_rd.writing.eq(1)
                at_cur()
                m.d.comb += ap_mode.eq(1)
                with m.If(can_emit):
                    append()
                    write_order(qty=QtySource.IN, fresh=True)
                    emit(_E.ADD, LAST, symbol="book", side=in_side,
                         order_id=in_id_src("order_id"), slot="cur",
                         qty="in", remaining="in", price=price_of(in_limit),
                         odd_lot=in_qty < lot)
                    finish()

            # CANCEL and REPLACE ---------------------------------------------------------------
            # The order read in IDLE is there: a CANCEL acts on it at once (its level's word is
            # not needed: the order's links say whether it is an end of the list); a REPLACE
            # that keeps the order's place is done at once too; any other registers whether the
            # slot holds the order (the 32-bit compare then ends in a flip-flop) and reads the
            # new price's level.
            with m.State("CANCEL"):
                m.d.comb += lv_rd.writing.eq(1)
                with m.If(can_emit):
                    with m.If(~holds):
                        not_found()
                    with m.Elif(bad_qty & ~c_big):       # c.qty == 0
                        delete_event(t, "cmd", Reason.USER, LAST)
                        unlink()
                        write_order(valid=0)
                    with m.Elif(~emptied & ~c_big):      # c.qty (in_qty if ~c_big) < t.qty
                        emit(_E.REDUCE, LAST, symbol="book", side=t.side, order_id="order",
                             slot="cmd", qty="left", remaining="in",
                             price=price_of(t.offset), reason=Reason.USER)
                        write_order(qty=QtySource.IN)
                    with m.Else():
                        emit(_E.CANCEL_REJECT, LAST, symbol="book", side=t.side,
                             order_id="cmd", slot="cmd", reason=Reason.NOTHING_TO_CANCEL)
                    finish()

            with m.State("FIND"):
                # ``bsym`` is the command's symbol, the order's if the slot holds it.
                m.d.sync += [t_found.eq(holds), bsym.eq(r.sym)]
                read_level(level_addr(bsym, r.side, c_off))
                # A kept replace (REPLACE's last case, every check before it passed) needs no
                # level: done now. Anything else, or a full output register, goes on to REPLACE.
                kept = (holds & ~syms.halted & ~bad_qty & c_in_band & (c_off_q == r.offset)
                        & filled)
                with m.If(kept & can_emit):
                    write_order(qty=QtySource.IN)              # in_qty = c.qty here
                    replace_event(ReplaceMode.KEPT, LAST)
                    finish()
                with m.Else():
                    m.next = "REPLACE"

            with m.State("REPLACE"):
                m.d.comb += lv_rd.writing.eq(1)
                start_search(~t.side, extreme(t.side))
                room = lv_rd.data.occ | level_room(bsym, t.side)      # the new price's level
                moves = c_off_q != t.offset
                with m.If(can_emit):
                    with m.If(~t_found):
                        not_found()
                    with m.Elif(syms.halted):
                        reject_replace(Reason.HALTED)
                        finish()
                    with m.Elif(bad_qty):
                        reject_replace(Reason.BAD_QTY)
                        finish()
                    with m.Elif(~c_in_band):
                        reject_replace(Reason.OUT_OF_BAND)
                        finish()
                    with m.Elif(moves & ~room & ~(t_prev.end & t_next.end)):
                        reject_replace(Reason.BOOK_FULL)
                        finish()
                    with m.Elif(~moves & filled):          # c.qty (= in_qty) <= t.qty
                        write_order(qty=QtySource.IN)              # in_qty = c.qty here
                        replace_event(ReplaceMode.KEPT, LAST)
                        finish()
                    with m.Else():
                        unlink(push=False)
                        m.d.sync += [
                            in_limit.eq(c_off_q),
                            in_side.eq(t.side), in_tif.eq(t.tif), in_stp.eq(t.stp),
                            in_firm.eq(t.firm), rests.eq(1), is_replace.eq(1),
                            stop.eq(Reason.NONE),
                        ]
                        m.next = "REPLACE_CROSS"

            with m.State("REPLACE_CROSS"):
                with m.If(occ_search.valid):        # the search started a cycle ago
                    found, _, cross, _ = search_result()
                    # Whichever way it goes (and again if it stalls: the same search):
                    # MATCH_LEVEL's search and REPLACE_MOVE's level read.
                    start_search(~in_side, extreme(in_side))
                    read_level(level_addr(bsym, in_side, in_limit))
                    with m.If(can_emit):
                        with m.If(found & cross):
                            replace_event(ReplaceMode.CROSSED, MORE)
                            write_order(valid=0)
                            m.next = "MATCH_LEVEL"
                        with m.Else():
                            m.next = "REPLACE_MOVE"

            with m.State("REPLACE_MOVE"):
                m.d.comb += lv_rd.writing.eq(1)
                m.d.comb += ap_mode.eq(1)
                with m.If(can_emit):
                    append()
                    write_order(qty=QtySource.IN, moved=True)
                    replace_event(ReplaceMode.MOVED, LAST)
                    finish()

            if self._order_register:
                # The cycle the order RAM's output register takes: nothing else happens, but
                # the walker's look ahead (the level table is idle).
                for state in ("CANCEL", "FIND", "EXPIRE_CHECK", "COUNT_ORDER", "MATCH_ORDER"):
                    with m.State(f"{state}_READ"):
                        if state == "MATCH_ORDER" and self._lookahead:
                            look_ahead()
                            read_next_head()
                        m.next = state

        return m
