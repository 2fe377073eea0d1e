"""The matching engine: engine-link commands in, events out, equal to ``tickwire.sim.model``.

Components
----------
:class:`MatchingEngine` wires these (each in its own module, with its own docstring):

* :class:`~tickwire.hdl.engine_control.EngineControl`: the command FSM (dispatch, validation,
  the walker of crossing orders and pre-counts, rest, cancel, replace, declare, halt, expiry),
  steering the storage below through its ports; its own datapath is
  :class:`~tickwire.hdl.price_offsets.PriceOffsets` (price ↔ tick offset),
  :class:`~tickwire.hdl.fill_compare.FillCompare` (the fill decision) and
  :class:`~tickwire.hdl.breaker_bounds.BreakerBounds` (a DECLARE's breaker as offsets) and
  :class:`~tickwire.hdl.walk_ahead.WalkAhead` (the walk's next level, ``lookahead``).
* :class:`~tickwire.hdl.command_checks.CommandChecks`: the command's own range checks,
  registered every cycle.
* :class:`~tickwire.hdl.event_mux.EventMux`: each wide event field from its few sources, by the
  select codes the FSM sets.
* :class:`~tickwire.hdl.order_writer.OrderWriter`: the order RAM's write word (the order read
  with a few fields changed, or a new resting order), by the flags the FSM sets.
* :class:`~tickwire.hdl.symbol_table.SymbolTable` (registers, ``max_symbols`` entries):
  declared, halted, round lot, ``band_low`` and the breaker as offset bounds. Prices inside the
  engine are tick offsets from ``band_low`` (``range(band_ticks)``).
* :class:`~tickwire.hdl.order_store.OrderStore` (block RAM, ``max_orders`` words,
  ``order_layout``): valid, order id, open shares, price offset, side, tif (1 bit: only DAY and
  GTC rest), firm, STP mode, symbol index; and the ``next``/``prev`` links of every price
  level's doubly linked FIFO, NIL-terminated (a head's ``prev`` and a tail's ``next`` are
  ``end``), so that an order's links alone say where it is in its list.
* :class:`~tickwire.hdl.level_table.LevelTable` (``max_symbols · 2 · 2^⌈log2 band_ticks⌉``
  words, ``level_layout``): head, tail and occupied bit of each level, addressed by
  ``symbol ∥ side ∥ offset``, in two RAMs (heads; tails and occupied bits) written on their
  own, so that an unlink writes the end it moves without reading the word; single-ported so
  that it can be the iCE40UP5K's SPRAM
  (``spram=True``); it clears itself after reset (one cycle per word, with the occupancy map's
  words; ``i_cmd`` not ready meanwhile).
* :class:`~tickwire.hdl.level_lists.LevelLists`: the writes of one unlink or append of a
  level's list (level word halves, links, occupancy bit; an appended order's NIL ``next`` the
  cycle after).
* :class:`~tickwire.hdl.occupancy_map.OccupancyMap`: one bit per level in block RAM words with
  a one-bit-per-word summary in registers, the count of occupied levels per side (only if
  ``max_levels < band_ticks``), and the two-cycle best-price search.
* :class:`~tickwire.hdl.best_price.BestPriceCache` (``best_price=True``): every book side's
  best level in registers with a dirty bit, kept by watching the map's updates and searches.
* :class:`~tickwire.hdl.free_slot_stack.FreeSlotStack`: the model's LIFO of free slots.
* :class:`~tickwire.hdl.event_output.EventOutput`: the output register and backpressure.

The order, link and free-slot RAMs have one write port and one registered read port
(transparent for that write port) with a read enable: read data holds until the next read is
issued, so a state may consume it for as many cycles as it stalls.

Datapath
--------
The states steer shared datapaths rather than each building its own: one price-to-offset
subtractor (``c.price − band_low``: IDLE, NEW, REPLACE and DECLARE's ``band_low``), one
offset-to-price adder (every event price), two qty subtractors whose borrows are the fill
compares (the walk's fill, CANCEL's reduce). Each wide event field, the order RAM's write word
and the level-list updates are flat multiplexers steered by a few select bits that the states
set (the write slot and the muxes' steering depend on the state only, not on its decisions).
Checks of the command alone (qty range, min-qty, locate range, DECLARE's) are registered every
cycle and used from the cycle after ``IDLE``, so their 32-bit compares end in flip-flops.

Events
------
Every event is written, when made, into the output register that drives ``o_event``, with
``last`` already right: whether an event ends its command is always known when it is made (an
EXECUTE is last iff it fills the incoming order; an expiry DELETE iff it removes the last
resting DAY order, from the counter; SYSTEM ``M`` iff none rests). A state that makes an event
waits until the register is empty or being taken (``can_emit = ~valid | o_event.ready``, a
combinational path from ``o_event.ready`` into the FSM): that is how backpressure reaches it.

Cycles (no backpressure)
------------------------
The command stays on ``i_cmd`` while it runs (no copy of it is kept); ``IDLE`` dispatches it,
and the state making its last event (or finishing it) raises ``i_cmd.ready`` and returns to
``IDLE``. Best-price searches start (cycle A) in the state before the one that needs the answer
and are registered after cycle B, so the answer is there two cycles after the start (the first
search of a NEW starts in ``IDLE``). Measured by ``tickwire.sim.engine_cycles`` with commands
offered back to back (interval = the cycles a command occupies the engine; latency = from its
first cycle to the edge that shows its first event on ``o_event``): non-crossing NEW that rests
4 / latency 2 (IDLE, NEW, MATCH_LEVEL, REST_ADD), or 3 with ``best_price`` when the contra
side's register is not dirty (NEW decides on it and goes to REST_ADD); CANCEL and REDUCE 2 / 2
(IDLE reads the order, CANCEL checks it and unlinks it by its own links); a slot not holding the
order is rejected in CANCEL (2 / 2) or REPLACE (3 / 3); a NEW rejected at
validation 2 / 2; the walk costs 1 cycle per fill (or STP delete) within a price level and 2
per further level with ``lookahead`` (the level's last fill reads the next level's head, the
cycle after reads its first order; without it 4: search B, level read, head read, first
order); the FOK / min-qty pre-count
1 cycle per resting order counted; a kept REPLACE 2 (FIND does it at once), any other REPLACE
one more cycle than CANCEL before its work (FIND registers whether the slot holds the order and
reads the new price's level). After reset, ``INIT`` clears the
level table (one cycle per word, plus one). SYSTEM ``M``: 1 cycle per slot up to the last resting DAY
order, +2 per expired order.

With ``order_register`` every order read takes one cycle more (a ``*_READ`` state before
CANCEL, FIND, EXPIRE_CHECK, COUNT_ORDER and MATCH_ORDER): CANCEL 3, REDUCE 3, kept REPLACE 3, a
fill within a level 2, the next level 2 with ``lookahead`` (the next level's head is read in
``MATCH_ORDER_READ``; 5 without), the pre-count 2 per order; NEW unchanged.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.best_price import BestPriceCache
from tickwire.hdl.command_checks import CommandChecks
from tickwire.hdl.engine_control import EngineControl
from tickwire.hdl.event_mux import EventMux
from tickwire.hdl.event_output import EventOutput
from tickwire.hdl.free_slot_stack import FreeSlotStack
from tickwire.hdl.level_lists import LevelLists
from tickwire.hdl.level_table import LevelTable, level_layout
from tickwire.hdl.occupancy_map import OccupancyMap
from tickwire.hdl.order_store import OrderStore, order_layout
from tickwire.hdl.order_writer import OrderWriter
from tickwire.hdl.symbol_table import SymbolTable
from tickwire.protocol.link import COMMAND_LAYOUT, EVENT_LAYOUT, NO_SLOT, ModelParams

__all__ = ["MatchingEngine", "level_layout", "order_layout"]


class MatchingEngine(wiring.Component):
    """Price-time priority matching engine for ``max_symbols`` symbols, event for event equal to
    :class:`tickwire.sim.model.ExchangeModel` with the same :class:`ModelParams`.

    Parameters
    ----------
    params : ModelParams
        ``max_levels`` may be ``None`` (= ``band_ticks``) or smaller.
    spram : bool
        Build the level table from iCE40UP5K ``SB_SPRAM256KA`` blocks (``Instance``; not
        simulable) instead of the block-RAM model.
    best_price : bool
        Keep every book side's best price in registers
        (:class:`~tickwire.hdl.best_price.BestPriceCache`), so that a NEW that rests without
        crossing skips the search: 3 cycles instead of 4. About 20 flip-flops and their muxes
        per book side; the boards' table chooses it (the iCEBreaker has no room).
    order_register : bool
        Register the order RAM's read data once more (the ECP5 DP16KD's output register):
        the block RAM's clock-to-out then no longer starts the fill compare's path into the
        link writes, for one more cycle wherever an order is read (CANCEL, REPLACE's FIND, each
        order the walker or the expiry visits).
    lookahead : bool
        The walker reads the next price level's head while it matches the current level's
        last order (speculatively: dropped if the walk stops there), so that it moves to the
        next level in 2 cycles, not 4 (5 with ``order_register``). A few registers and
        multiplexer inputs.

    Members
    -------
    i_cmd : In(stream.Signature(COMMAND_LAYOUT))
        One command per transfer. The engine works on the offered command and takes it
        (``ready``) in the command's last cycle, so ``ready`` depends combinationally on
        ``valid`` and on ``o_event.ready``; not ready during ``INIT`` after reset.
    o_event : Out(stream.Signature(EVENT_LAYOUT))
        The command's events in model order; the last one has ``last`` set.
    """

    i_cmd: In(stream.Signature(COMMAND_LAYOUT))
    o_event: Out(stream.Signature(EVENT_LAYOUT))

    def __init__(self, params=ModelParams(), spram=False, *, best_price=True,
                 order_register=False, lookahead=True):
        if params.max_orders > NO_SLOT or params.max_orders < 2:
            raise ValueError("max_orders must be in 2 .. 65535")
        self._params = params
        self._spram = spram
        self._best_price = best_price
        self._order_register = order_register
        self._lookahead = lookahead
        super().__init__()

    @property
    def params(self):
        return self._params

    def elaborate(self, platform):
        m = Module()
        p = self._params
        max_levels = p.max_levels or p.band_ticks
        # With max_levels = band_ticks a side always has room for a level that is not occupied:
        # no counts then.
        m.submodules.control = control = EngineControl(
            p, max_levels=max_levels, best_price=self._best_price,
            order_register=self._order_register, lookahead=self._lookahead)
        m.submodules.syms = syms = SymbolTable(p)
        m.submodules.orders = orders = OrderStore(p, output_register=self._order_register)
        m.submodules.levels = levels = LevelTable(p, spram=self._spram)
        m.submodules.lists = lists = LevelLists(p)
        m.submodules.occ = occ = OccupancyMap(p.max_symbols, p.band_ticks,
                                              count=max_levels < p.band_ticks)
        m.submodules.free = free = FreeSlotStack(p.max_orders)
        m.submodules.checks = checks = CommandChecks(p)
        m.submodules.writer = writer = OrderWriter(p)
        m.submodules.events = events = EventMux(p)
        m.submodules.output = output = EventOutput()

        wiring.connect(m, wiring.flipped(self.i_cmd), control.i_cmd)
        m.d.comb += [checks.cmd.eq(self.i_cmd.payload), control.checks.eq(checks.checks)]
        wiring.connect(m, control.event, events.make)
        wiring.connect(m, events.emit, output.emit)
        wiring.connect(m, output.o_event, wiring.flipped(self.o_event))
        wiring.connect(m, control.syms, syms.port)
        wiring.connect(m, control.order_read, orders.port.read)
        wiring.connect(m, control.order_write, writer.req)
        wiring.connect(m, writer.write, orders.port.write)
        wiring.connect(m, control.levels, levels.port)
        wiring.connect(m, control.lists, lists.op)
        wiring.connect(m, lists.levels, levels.write)
        wiring.connect(m, lists.links, orders.links)
        wiring.connect(m, lists.occ, occ.update)
        wiring.connect(m, control.search, occ.search)
        wiring.connect(m, control.probe, occ.probe)
        wiring.connect(m, control.free, free)
        if self._best_price:
            m.submodules.best = best = BestPriceCache(p.max_symbols, p.band_ticks)
            wiring.connect(m, control.best, best.lookup)
            watched = {**{name: getattr(control.search, name)
                          for name in ("start", "sym", "side", "origin", "after")},
                       **{name: getattr(occ.search, name) for name in ("valid", "found",
                                                                        "offset")}}
            m.d.comb += [getattr(best.search, name).eq(value) for name, value in watched.items()]
            m.d.comb += [getattr(best.update, name).eq(getattr(lists.occ, name))
                         for name in ("en", "sym", "side", "offset", "value")]
        # The level table's clearing after reset also clears the occupancy map's words (zero
        # on the iCE40 anyway, undefined in a 4-state simulation of the Verilog; the map has
        # no more words than the level table).
        m.d.comb += [occ.clear.en.eq(levels.port.initing), occ.clear.addr.eq(levels.init_addr)]
        return m
