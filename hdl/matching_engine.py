"""The matching engine: engine-link commands in, events out, equal to ``tickwire.sim.model``.

Storage
-------
* **Symbol table** (registers, ``max_symbols`` entries): declared, halted, name, tick, round lot,
  reference, ``band_low``, breaker. The band's upper edge is ``band_low + band_ticks − 1``.
  Prices inside the engine are tick offsets from ``band_low`` (``range(band_ticks)``).
* **Order store** (block RAM, ``max_orders`` words, ``ORDER`` layout): valid, order id, open
  shares, price offset, side, tif, firm, STP mode, symbol index. Two more RAMs hold the doubly
  linked list of every price level: ``next`` and ``prev`` slot per slot (the list's end is
  known from the level's head and tail, so the links of a head and a tail are never read).
* **Price-level table** (block RAM, ``max_symbols · 2 · 2^⌈log2 band_ticks⌉`` words,
  ``LEVEL`` layout): head and tail slot of each level's FIFO, addressed by
  ``symbol ∥ side ∥ offset``. A level's word is meaningful only while its occupancy bit is set.
* **Occupancy map** (:class:`~tickwire.hdl.occupancy_map.OccupancyMap`): one bit per level, the
  count of occupied levels per side (``max_levels``), and the best-price search.
* **Free slots** (:class:`~tickwire.hdl.free_slot_stack.FreeSlotStack`): the model's LIFO.

Every RAM has one write port and one registered read port (transparent for that write port)
with a read enable: read data holds until the next read is issued, so a state may consume it
for as many cycles as it stalls.

Events
------
An event made by a state goes into a one-event holding register; it is written to the output
FIFO (4 deep, driving ``o_event``) when the next event of the same command is made, with
``last`` = 0, or at the end of the command with ``last`` = 1. So ``last`` never needs looking
ahead (the end-of-day expiry cannot know whether another DAY order follows). A state that
makes an event waits while the FIFO is full: that is how ``o_event`` backpressure reaches
the FSM.

Cycles (no backpressure)
------------------------
A command is taken in ``IDLE``; ``DONE`` hands out its last event and returns to ``IDLE``.
Measured by ``tickwire.sim.engine_cycles`` (interval = edge taking the command to the first edge
that can take the next; latency = to the first event): non-crossing NEW that rests 8 / latency
7 (NEW, MATCH_LEVEL, MATCH_END, REST, REST_ADD, DONE); CANCEL 5 / 5; a NEW rejected at
validation 4 / 4; the walk costs 1 cycle per fill (or STP delete) within a price level and
3 per further level (search, level read, head read); the FOK / min-qty pre-count 1 cycle per
resting order counted. SYSTEM ``M``: 1 cycle per slot, +2 per expired order.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..protocol.link import (
    COMMAND_LAYOUT, EVENT_LAYOUT, NO_SLOT, Action, EventKind, Reason, ReplaceMode, Side, Stp,
    Tif,
)
from ..sim.model import ModelParams
from .free_slot_stack import FreeSlotStack
from .occupancy_map import OccupancyMap

__all__ = ["MatchingEngine", "order_layout", "level_layout"]

_E = EventKind


def order_layout(params):
    """One resting order in the order store."""
    return data.StructLayout({
        "valid": 1,
        "order_id": 32,
        "qty": 32,
        "offset": range(params.band_ticks),
        "side": 1,
        "tif": 2,
        "firm": 16,
        "stp": 2,
        "sym": range(params.max_symbols),
    })


def level_layout(params):
    """One price level: head (oldest) and tail (newest) slot of its FIFO."""
    return data.StructLayout({"head": range(params.max_orders),
                              "tail": range(params.max_orders)})


class MatchingEngine(wiring.Component):
    """Price-time priority matching engine for ``max_symbols`` symbols, event for event equal to
    :class:`tickwire.sim.model.ExchangeModel` with the same :class:`ModelParams`.

    Parameters
    ----------
    params : ModelParams
        ``max_levels`` may be ``None`` (= ``band_ticks``) or smaller.

    Members
    -------
    i_cmd : In(stream.Signature(COMMAND_LAYOUT))
        One command per transfer; accepted only between commands.
    o_event : Out(stream.Signature(EVENT_LAYOUT))
        The command's events in model order; the last one has ``last`` set.
    """

    i_cmd: In(stream.Signature(COMMAND_LAYOUT))
    o_event: Out(stream.Signature(EVENT_LAYOUT))

    def __init__(self, params=ModelParams()):
        if params.max_orders > NO_SLOT or params.max_orders < 2:
            raise ValueError("max_orders must be in 2 .. 65535")
        self._params = params
        self._max_levels = params.max_levels or params.band_ticks
        super().__init__()

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        p = self._params
        S, N, band = p.max_symbols, p.max_orders, p.band_ticks
        off_bits = len(Signal(range(band)))
        ORDER, LEVEL = order_layout(p), level_layout(p)

        # -- storage ---------------------------------------------------------------------------
        m.submodules.occ = occ = OccupancyMap(S, band)
        m.submodules.free = free = FreeSlotStack(N)
        m.submodules.orders = orders = Memory(shape=ORDER, depth=N, init=[])
        m.submodules.nexts = nexts = Memory(shape=range(N), depth=N, init=[])
        m.submodules.prevs = prevs = Memory(shape=range(N), depth=N, init=[])
        m.submodules.levels = levels = Memory(shape=LEVEL, depth=S * 2 << off_bits, init=[])
        ord_wr, nx_wr, pv_wr, lv_wr = (mem.write_port() for mem in (orders, nexts, prevs, levels))
        ord_rd = orders.read_port(transparent_for=(ord_wr,))
        nx_rd = nexts.read_port(transparent_for=(nx_wr,))
        pv_rd = prevs.read_port(transparent_for=(pv_wr,))
        lv_rd = levels.read_port(transparent_for=(lv_wr,))
        for port in (ord_rd, nx_rd, pv_rd, lv_rd):
            m.d.comb += port.en.eq(0)

        def sym_array(name, shape):
            return Array(Signal(shape, name=f"{name}{i + 1}") for i in range(S))

        declared, halted = sym_array("declared", 1), sym_array("halted", 1)
        names, ticks = sym_array("name", 64), sym_array("tick", 16)
        lots, refs = sym_array("lot", 32), sym_array("reference", 32)
        band_lows, breakers = sym_array("band_low", 32), sym_array("breaker", 32)

        # -- registers -------------------------------------------------------------------------
        c = Signal(COMMAND_LAYOUT)
        bsym = Signal(range(S))                 # symbol index of the book concerned
        t = Signal(ORDER)                       # the order a cancel/replace/expiry works on
        t_slot, t_prev, t_next = (Signal(range(N), name=n) for n in ("t_slot", "t_prev",
                                                                        "t_next"))
        lv_addr = Signal(len(lv_wr.addr))
        in_qty, in_id = Signal(32), Signal(32)   # incoming order (NEW or crossing REPLACE)
        in_limit = Signal(range(band))
        in_side, in_tif, in_stp, in_firm = Signal(), Signal(2), Signal(2), Signal(16)
        rests, is_replace = Signal(), Signal()
        stop = Signal(8)
        need, total = Signal(32), Signal(34)
        scan_from, cur_off = Signal(range(band)), Signal(range(band))
        cur_slot, cur_tail, rest_slot = Signal(range(N)), Signal(range(N)), Signal(range(N))
        match_no = Signal(32)
        exp_slot = Signal(range(N))

        # -- derived values of the current book ------------------------------------------------
        band_low = Signal(32)
        band_high = Signal(33)
        reference, breaker, lot = Signal(32), Signal(32), Signal(32)
        m.d.comb += [
            band_low.eq(band_lows[bsym]),
            band_high.eq(band_low + (band - 1)),
            reference.eq(refs[bsym]),
            breaker.eq(breakers[bsym]),
            lot.eq(lots[bsym]),
        ]
        locate = Signal(16)
        m.d.comb += locate.eq(bsym + 1)
        locate_ok = Signal()
        m.d.comb += locate_ok.eq((c.symbol >= 1) & (c.symbol <= S) & declared[bsym])
        c_in_band = Signal()
        m.d.comb += c_in_band.eq((c.price >= band_low) & (c.price <= band_high))
        c_off = Signal(range(band))
        m.d.comb += c_off.eq(c.price - band_low)

        def price_of(offset):
            return (band_low + offset)[:32]

        def level_addr(sym, side, offset):
            offset_bits = Signal(off_bits)
            m.d.comb += offset_bits.eq(offset)
            return Cat(offset_bits, side, sym)

        def crosses(offset):
            """A contra level at ``offset`` crosses the incoming limit."""
            return Mux(in_side == Side.BUY, offset <= in_limit, offset >= in_limit)

        def breaks(offset):
            price = Signal(33)
            m.d.comb += price.eq(band_low + offset)
            distance = Mux(price > reference, price - reference, reference - price)
            return (breaker != 0) & (distance > breaker)

        contra_extreme = Mux(in_side == Side.BUY, 0, band - 1)

        # -- events ----------------------------------------------------------------------------
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=EVENT_LAYOUT.size, depth=4)
        m.d.comb += [
            self.o_event.payload.eq(fifo.r_data),
            self.o_event.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o_event.ready),
        ]
        can_emit = fifo.w_rdy
        ev_new, ev_stb = Signal(EVENT_LAYOUT), Signal()
        pend, pend_valid, flush = Signal(EVENT_LAYOUT), Signal(), Signal()
        out_ev = Signal(EVENT_LAYOUT)
        m.d.comb += [
            ev_new.seq.eq(c.seq), ev_new.timestamp.eq(c.timestamp),
            out_ev.eq(pend), out_ev.last.eq(flush),
            fifo.w_data.eq(out_ev),
        ]
        with m.If(ev_stb):
            m.d.sync += [pend.eq(ev_new), pend_valid.eq(1)]
            m.d.comb += fifo.w_en.eq(pend_valid)
        with m.Elif(flush):
            m.d.sync += pend_valid.eq(0)
            m.d.comb += fifo.w_en.eq(1)

        def emit(kind, **fields):
            m.d.comb += [ev_stb.eq(1), ev_new.kind.eq(kind)]
            for name, value in fields.items():
                m.d.comb += Value.cast(getattr(ev_new, name)).eq(value)

        def reject(reason):
            """REJECT of a command other than REPLACE."""
            emit(_E.REJECT, symbol=c.symbol, side=c.side, reason=reason, order_id=c.order_id)

        def reject_replace(reason):
            emit(_E.REJECT, symbol=c.symbol, reason=reason, order_id=c.new_order_id,
                 other_id=c.order_id, slot=c.slot)

        # -- RAM helpers -----------------------------------------------------------------------
        def read_order(slot):
            for port in (ord_rd, nx_rd, pv_rd):
                m.d.comb += [port.addr.eq(slot), port.en.eq(1)]

        def read_level(addr):
            m.d.comb += [lv_rd.addr.eq(addr), lv_rd.en.eq(1)]
            m.d.sync += lv_addr.eq(addr)

        def write_order(slot, record, **fields):
            m.d.comb += [ord_wr.addr.eq(slot), ord_wr.en.eq(1), ord_wr.data.eq(record)]
            for name, value in fields.items():
                m.d.comb += Value.cast(getattr(ord_wr.data, name)).eq(value)

        def set_occupancy(sym, side, offset, value):
            m.d.comb += [occ.u_en.eq(1), occ.u_sym.eq(sym), occ.u_side.eq(side),
                         occ.u_offset.eq(offset), occ.u_value.eq(value)]

        def unlink(slot, sym, side, offset, prev, nxt, head, tail, addr, push=True):
            """Take ``slot`` out of its level's list (level word at ``addr``)."""
            with m.If((head == slot) & (tail == slot)):
                set_occupancy(sym, side, offset, 0)
            with m.Elif(head == slot):
                m.d.comb += [lv_wr.addr.eq(addr), lv_wr.en.eq(1),
                             lv_wr.data.head.eq(nxt), lv_wr.data.tail.eq(tail)]
            with m.Elif(tail == slot):
                m.d.comb += [lv_wr.addr.eq(addr), lv_wr.en.eq(1),
                             lv_wr.data.head.eq(head), lv_wr.data.tail.eq(prev)]
            with m.Else():
                m.d.comb += [nx_wr.addr.eq(prev), nx_wr.data.eq(nxt), nx_wr.en.eq(1),
                             pv_wr.addr.eq(nxt), pv_wr.data.eq(prev), pv_wr.en.eq(1)]
            if push:
                m.d.comb += [free.push.eq(1), free.push_slot.eq(slot)]

        def probe(sym, side, offset):
            m.d.comb += [occ.p_sym.eq(sym), occ.p_side.eq(side), occ.p_offset.eq(offset)]

        def append(slot, sym, side, offset):
            """Put ``slot`` at the tail of the level read into ``lv_rd`` (address ``lv_addr``)."""
            probe(sym, side, offset)
            m.d.comb += [lv_wr.addr.eq(lv_addr), lv_wr.en.eq(1), lv_wr.data.tail.eq(slot)]
            with m.If(~occ.p_occupied):
                m.d.comb += lv_wr.data.head.eq(slot)
                set_occupancy(sym, side, offset, 1)
            with m.Else():
                m.d.comb += [lv_wr.data.head.eq(lv_rd.data.head),
                             nx_wr.addr.eq(lv_rd.data.tail), nx_wr.data.eq(slot), nx_wr.en.eq(1),
                             pv_wr.addr.eq(slot), pv_wr.data.eq(lv_rd.data.tail),
                             pv_wr.en.eq(1)]

        def search(sym, side, start):
            m.d.comb += [occ.q_sym.eq(sym), occ.q_side.eq(side), occ.q_from.eq(start)]
            return occ.q_found, occ.q_offset

        def delete_event(record, slot, reason):
            emit(_E.DELETE, symbol=record.sym + 1, side=record.side, order_id=record.order_id,
                 slot=slot, qty=record.qty, price=price_of(record.offset), reason=reason)

        def replace_event(mode):
            emit(_E.REPLACE, symbol=t.sym + 1, side=t.side, order_id=t.order_id,
                 other_id=c.new_order_id, slot=t_slot, qty=c.qty, remaining=t.qty,
                 price=c.price, mode=mode)

        # -- the command FSM -------------------------------------------------------------------
        r = ord_rd.data
        max_levels = self._max_levels
        payload = self.i_cmd.payload
        # ``ready`` is a register (set exactly while in IDLE) rather than a decode of the state:
        # Icarus leaves an ``always @*`` decode of an unchanged state X after reset.
        idle = Signal(init=1)
        m.d.comb += self.i_cmd.ready.eq(idle)
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                with m.If(self.i_cmd.valid):
                    m.d.sync += [c.eq(payload), bsym.eq(payload.symbol - 1), idle.eq(0)]
                    with m.Switch(payload.action):
                        with m.Case(Action.NEW):
                            m.next = "NEW"
                        with m.Case(Action.CANCEL, Action.REPLACE):
                            read_order(payload.slot)
                            m.next = "FIND"
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
                    emit(_E.REJECT, reason=Reason.NONE, order_id=c.order_id)
                    m.next = "DONE"

            with m.State("DONE"):
                with m.If(can_emit):
                    m.d.comb += flush.eq(1)
                    m.d.sync += idle.eq(1)
                    m.next = "IDLE"

            # DECLARE, HALT / RESUME, SYSTEM ---------------------------------------------------
            with m.State("DECLARE"):
                ok = ((c.symbol >= 1) & (c.symbol <= S) & ~declared[bsym] & (c.tick != 0)
                      & (c.qty != 0) & (c.price != 0))
                with m.If(can_emit):
                    with m.If(~ok):
                        reject(Reason.BAD_DECLARATION)
                        m.next = "DONE"
                    with m.Else():
                        half = band // 2
                        m.d.sync += [
                            declared[bsym].eq(1), halted[bsym].eq(0), names[bsym].eq(c.name),
                            ticks[bsym].eq(c.tick), lots[bsym].eq(c.qty),
                            refs[bsym].eq(c.price), breakers[bsym].eq(c.breaker),
                            band_lows[bsym].eq(Mux(c.price > half, c.price - half, 1)),
                        ]
                        emit(_E.DIRECTORY, symbol=c.symbol, name=c.name, qty=c.qty, tick=c.tick,
                             price=c.price)
                        m.next = "DECLARE_TRADING"

            with m.State("DECLARE_TRADING"):
                with m.If(can_emit):
                    emit(_E.TRADING, symbol=c.symbol, reason=Reason.NONE)
                    m.next = "DONE"

            with m.State("HALT"):
                with m.If(can_emit):
                    with m.If(~locate_ok):
                        reject(Reason.UNKNOWN_SYMBOL)
                    with m.Else():
                        halt = c.action == Action.HALT
                        m.d.sync += halted[bsym].eq(halt)
                        emit(_E.TRADING, symbol=c.symbol, halted=halt, reason=Reason.OPERATOR)
                    m.next = "DONE"

            with m.State("SYSTEM"):
                with m.If(can_emit):
                    emit(_E.SYSTEM, reason=c.code)
                    with m.If(c.code == ord("M")):
                        m.d.sync += exp_slot.eq(0)
                        read_order(0)
                        m.next = "EXPIRE_CHECK"
                    with m.Else():
                        m.next = "DONE"

            with m.State("EXPIRE_CHECK"):
                with m.If(r.valid & (r.tif == Tif.DAY)):
                    m.d.sync += [t.eq(r), t_slot.eq(exp_slot), t_next.eq(nx_rd.data),
                                 t_prev.eq(pv_rd.data), bsym.eq(r.sym)]
                    read_level(level_addr(r.sym, r.side, r.offset))
                    m.next = "EXPIRE_DELETE"
                with m.Elif(exp_slot == N - 1):
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += exp_slot.eq(exp_slot + 1)
                    read_order(exp_slot + 1)

            with m.State("EXPIRE_DELETE"):
                with m.If(can_emit):
                    delete_event(t, t_slot, Reason.EXPIRED)
                    unlink(t_slot, t.sym, t.side, t.offset, t_prev, t_next, lv_rd.data.head,
                           lv_rd.data.tail, lv_addr)
                    write_order(t_slot, t, valid=0)
                    with m.If(exp_slot == N - 1):
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += exp_slot.eq(exp_slot + 1)
                        read_order(exp_slot + 1)
                        m.next = "EXPIRE_CHECK"

            # NEW ------------------------------------------------------------------------------
            with m.State("NEW"):
                market = c.market
                limit = Mux(market, Mux(c.side == Side.BUY, band - 1, 0), c_off)
                will_rest = ~market & (c.tif <= Tif.GTC)
                probe(bsym, c.side, limit)
                room = ~free.empty & (occ.p_occupied | (occ.p_count < max_levels))
                with m.If(can_emit):
                    with m.If(~locate_ok):
                        reject(Reason.UNKNOWN_SYMBOL)
                        m.next = "DONE"
                    with m.Elif(halted[bsym]):
                        reject(Reason.HALTED)
                        m.next = "DONE"
                    with m.Elif((c.qty == 0) | (c.qty > p.max_qty)):
                        reject(Reason.BAD_QTY)
                        m.next = "DONE"
                    with m.Elif(c.min_qty > c.qty):
                        reject(Reason.BAD_MIN_QTY)
                        m.next = "DONE"
                    with m.Elif(~market & ~c_in_band):
                        reject(Reason.OUT_OF_BAND)
                        m.next = "DONE"
                    with m.Elif(will_rest & ~room):
                        reject(Reason.BOOK_FULL)
                        m.next = "DONE"
                    with m.Else():
                        emit(_E.ACCEPT, symbol=c.symbol, side=c.side, order_id=c.order_id,
                             qty=c.qty, remaining=c.qty, price=Mux(market, 0, c.price))
                        m.d.sync += [
                            in_qty.eq(c.qty), in_id.eq(c.order_id), in_limit.eq(limit),
                            in_side.eq(c.side), in_tif.eq(c.tif), in_stp.eq(c.stp),
                            in_firm.eq(c.firm), rests.eq(will_rest), is_replace.eq(0),
                            stop.eq(Reason.NONE), total.eq(0),
                            need.eq(Mux(c.tif == Tif.FOK, c.qty, c.min_qty)),
                            scan_from.eq(Mux(c.side == Side.BUY, 0, band - 1)),
                        ]
                        with m.If((c.tif == Tif.FOK) | (c.min_qty != 0)):
                            m.next = "COUNT_LEVEL"
                        with m.Else():
                            m.next = "MATCH_LEVEL"

            # FOK / minimum quantity: count what matching would fill -----------------------
            with m.State("COUNT_LEVEL"):
                found, offset = search(bsym, ~in_side, scan_from)
                with m.If(~found | ~crosses(offset) | breaks(offset)):
                    m.next = "COUNT_DONE"
                with m.Else():
                    m.d.sync += cur_off.eq(offset)
                    read_level(level_addr(bsym, ~in_side, offset))
                    m.next = "COUNT_HEAD"

            with m.State("COUNT_HEAD"):
                m.d.sync += [cur_slot.eq(lv_rd.data.head), cur_tail.eq(lv_rd.data.tail)]
                read_order(lv_rd.data.head)
                m.next = "COUNT_ORDER"

            with m.State("COUNT_ORDER"):
                same_firm = (in_firm != 0) & (r.firm == in_firm)
                new_total = Signal(34)
                m.d.comb += new_total.eq(total + Mux(same_firm, 0, r.qty))
                m.d.sync += total.eq(new_total)
                with m.If(same_firm & (in_stp != Stp.CANCEL_OLDEST)):
                    m.next = "COUNT_DONE"
                with m.Elif(new_total >= need):
                    m.next = "COUNT_DONE"
                with m.Elif(cur_slot == cur_tail):
                    with m.If(in_side == Side.BUY):
                        with m.If(cur_off == band - 1):
                            m.next = "COUNT_DONE"
                        with m.Else():
                            m.d.sync += scan_from.eq(cur_off + 1)
                            m.next = "COUNT_LEVEL"
                    with m.Else():
                        with m.If(cur_off == 0):
                            m.next = "COUNT_DONE"
                        with m.Else():
                            m.d.sync += scan_from.eq(cur_off - 1)
                            m.next = "COUNT_LEVEL"
                with m.Else():
                    m.d.sync += cur_slot.eq(nx_rd.data)
                    read_order(nx_rd.data)

            with m.State("COUNT_DONE"):
                with m.If(total < need):
                    with m.If(can_emit):
                        emit(_E.KILL, symbol=c.symbol, side=c.side, order_id=c.order_id,
                             qty=c.qty, slot=NO_SLOT,
                             reason=Mux(c.tif == Tif.FOK, Reason.FOK, Reason.MIN_QTY))
                        m.next = "DONE"
                with m.Else():
                    m.next = "MATCH_LEVEL"

            # Matching -------------------------------------------------------------------------
            with m.State("MATCH_LEVEL"):
                found, offset = search(bsym, ~in_side, contra_extreme)
                trips = breaks(offset)
                with m.If(~found | ~crosses(offset)):
                    m.next = "MATCH_END"
                with m.Elif(trips):
                    with m.If(can_emit):
                        m.d.sync += [halted[bsym].eq(1), stop.eq(Reason.BREAKER)]
                        emit(_E.TRADING, symbol=locate, halted=1, reason=Reason.BREAKER)
                        m.next = "MATCH_END"
                with m.Else():
                    m.d.sync += cur_off.eq(offset)
                    read_level(level_addr(bsym, ~in_side, offset))
                    m.next = "MATCH_HEAD"

            with m.State("MATCH_HEAD"):
                m.d.sync += [cur_slot.eq(lv_rd.data.head), cur_tail.eq(lv_rd.data.tail)]
                read_order(lv_rd.data.head)
                m.next = "MATCH_ORDER"

            with m.State("MATCH_ORDER"):
                price = price_of(cur_off)

                def advance():
                    with m.If(cur_slot == cur_tail):
                        m.next = "MATCH_LEVEL"
                    with m.Else():
                        m.d.sync += cur_slot.eq(nx_rd.data)
                        read_order(nx_rd.data)

                def remove_head():
                    unlink(cur_slot, bsym, ~in_side, cur_off, 0, nx_rd.data, cur_slot,
                           cur_tail, lv_addr)
                    write_order(cur_slot, r, valid=0)

                with m.If(can_emit):
                    with m.If((in_firm != 0) & (r.firm == in_firm)):
                        with m.If(in_stp == Stp.CANCEL_NEWEST):
                            m.d.sync += stop.eq(Reason.SELF_TRADE)
                            m.next = "MATCH_END"
                        with m.Else():
                            emit(_E.DELETE, symbol=locate, side=r.side, order_id=r.order_id,
                                 slot=cur_slot, qty=r.qty, price=price, reason=Reason.SELF_TRADE)
                            remove_head()
                            with m.If(in_stp == Stp.CANCEL_BOTH):
                                m.d.sync += stop.eq(Reason.SELF_TRADE)
                                m.next = "MATCH_END"
                            with m.Else():
                                advance()
                    with m.Else():
                        fill, left = Signal(32), Signal(32)
                        m.d.comb += [fill.eq(Mux(r.qty < in_qty, r.qty, in_qty)),
                                     left.eq(r.qty - fill)]
                        emit(_E.EXECUTE, symbol=locate, side=r.side, order_id=r.order_id,
                             other_id=in_id, slot=cur_slot, qty=fill, remaining=left,
                             price=price, match=match_no + 1)
                        m.d.sync += [match_no.eq(match_no + 1), in_qty.eq(in_qty - fill)]
                        with m.If(left == 0):
                            remove_head()
                        with m.Else():
                            write_order(cur_slot, r, qty=left)
                        with m.If(in_qty == fill):
                            m.next = "MATCH_END"
                        with m.Else():
                            advance()

            with m.State("MATCH_END"):
                with m.If(in_qty == 0):
                    with m.If(is_replace):
                        m.d.comb += [free.push.eq(1), free.push_slot.eq(t_slot)]
                    m.next = "DONE"
                with m.Elif((stop == Reason.NONE) & rests):
                    m.next = "REST"
                with m.Elif(can_emit):
                    emit(_E.KILL, symbol=locate, side=in_side, order_id=in_id, qty=in_qty,
                         slot=NO_SLOT, reason=Mux(stop == Reason.NONE, Reason.IOC, stop))
                    with m.If(is_replace):
                        m.d.comb += [free.push.eq(1), free.push_slot.eq(t_slot)]
                    m.next = "DONE"

            with m.State("REST"):
                with m.If(is_replace | free.ready):
                    m.d.sync += rest_slot.eq(Mux(is_replace, t_slot, free.top))
                    m.d.comb += free.pop.eq(~is_replace)
                    read_level(level_addr(bsym, in_side, in_limit))
                    m.next = "REST_ADD"

            with m.State("REST_ADD"):
                with m.If(can_emit):
                    append(rest_slot, bsym, in_side, in_limit)
                    write_order(rest_slot, 0, valid=1, order_id=in_id, qty=in_qty,
                                offset=in_limit, side=in_side, tif=in_tif, firm=in_firm,
                                stp=in_stp, sym=bsym)
                    emit(_E.ADD, symbol=locate, side=in_side, order_id=in_id, slot=rest_slot,
                         qty=in_qty, remaining=in_qty, price=price_of(in_limit),
                         odd_lot=in_qty < lot)
                    m.next = "DONE"

            # CANCEL and REPLACE ---------------------------------------------------------------
            with m.State("FIND"):
                found = (c.slot < N) & r.valid & (r.order_id == c.order_id)
                with m.If(~found):
                    with m.If(can_emit):
                        emit(_E.CANCEL_REJECT, symbol=c.symbol, order_id=c.order_id,
                             slot=c.slot, reason=Reason.NOT_FOUND)
                        m.next = "DONE"
                with m.Else():
                    m.d.sync += [t.eq(r), t_slot.eq(c.slot), t_next.eq(nx_rd.data),
                                 t_prev.eq(pv_rd.data), bsym.eq(r.sym)]
                    read_level(level_addr(r.sym, r.side, r.offset))
                    with m.If(c.action == Action.CANCEL):
                        m.next = "CANCEL"
                    with m.Else():
                        m.next = "REPLACE"

            with m.State("CANCEL"):
                with m.If(can_emit):
                    with m.If(c.qty == 0):
                        delete_event(t, t_slot, Reason.USER)
                        unlink(t_slot, t.sym, t.side, t.offset, t_prev, t_next,
                               lv_rd.data.head, lv_rd.data.tail, lv_addr)
                        write_order(t_slot, t, valid=0)
                    with m.Elif(c.qty < t.qty):
                        emit(_E.REDUCE, symbol=t.sym + 1, side=t.side, order_id=t.order_id,
                             slot=t_slot, qty=t.qty - c.qty, remaining=c.qty,
                             price=price_of(t.offset), reason=Reason.USER)
                        write_order(t_slot, t, qty=c.qty)
                    with m.Else():
                        emit(_E.CANCEL_REJECT, symbol=t.sym + 1, side=t.side,
                             order_id=c.order_id, slot=c.slot, reason=Reason.NOTHING_TO_CANCEL)
                    m.next = "DONE"

            with m.State("REPLACE"):
                probe(bsym, t.side, c_off)
                room = occ.p_occupied | (occ.p_count < max_levels)
                moves = c_off != t.offset
                with m.If(can_emit):
                    with m.If(halted[bsym]):
                        reject_replace(Reason.HALTED)
                        m.next = "DONE"
                    with m.Elif((c.qty == 0) | (c.qty > p.max_qty)):
                        reject_replace(Reason.BAD_QTY)
                        m.next = "DONE"
                    with m.Elif(~c_in_band):
                        reject_replace(Reason.OUT_OF_BAND)
                        m.next = "DONE"
                    with m.Elif(moves & ~room & (lv_rd.data.head != lv_rd.data.tail)):
                        reject_replace(Reason.BOOK_FULL)
                        m.next = "DONE"
                    with m.Elif(~moves & (c.qty <= t.qty)):
                        write_order(t_slot, t, qty=c.qty)
                        replace_event(ReplaceMode.KEPT)
                        m.next = "DONE"
                    with m.Else():
                        unlink(t_slot, t.sym, t.side, t.offset, t_prev, t_next,
                               lv_rd.data.head, lv_rd.data.tail, lv_addr, push=False)
                        m.d.sync += [
                            in_qty.eq(c.qty), in_id.eq(c.new_order_id), in_limit.eq(c_off),
                            in_side.eq(t.side), in_tif.eq(t.tif), in_stp.eq(t.stp),
                            in_firm.eq(t.firm), rests.eq(1), is_replace.eq(1),
                            stop.eq(Reason.NONE),
                        ]
                        m.next = "REPLACE_CROSS"

            with m.State("REPLACE_CROSS"):
                found, offset = search(bsym, ~in_side, contra_extreme)
                with m.If(can_emit):
                    with m.If(found & crosses(offset)):
                        replace_event(ReplaceMode.CROSSED)
                        write_order(t_slot, t, valid=0)
                        m.next = "MATCH_LEVEL"
                    with m.Else():
                        read_level(level_addr(bsym, in_side, in_limit))
                        m.next = "REPLACE_MOVE"

            with m.State("REPLACE_MOVE"):
                with m.If(can_emit):
                    append(t_slot, bsym, in_side, in_limit)
                    write_order(t_slot, t, order_id=in_id, qty=in_qty, offset=in_limit)
                    replace_event(ReplaceMode.MOVED)
                    m.next = "DONE"

        return m
