"""Unlink and append of the price levels' FIFO lists: the level word, link and occupancy writes."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.level_table import level_depth, level_layout, level_write_signature
from tickwire.hdl.occupancy_map import update_signature
from tickwire.hdl.order_store import link_layout, link_write_signature

__all__ = ["LevelLists", "list_op_signature"]


def list_op_signature(params):
    """One list operation, from its user's side (every member ``Out``).

    Members
    -------
    unlink : Out(1)
        Take ``slot`` out of its level, ``own_level`` (address): its links are ``next`` and
        ``prev`` (``link_layout``, NIL-terminated), its side and offset ``side``/``offset``.
    append : Out(1)
        Put ``slot`` at the tail of ``level`` (the word read at ``append_level``), on
        ``new_side`` at ``new_offset``.
    append_mode : Out(1)
        The muxes' steering: set in every cycle that may append (a state's constant, so that
        the write addresses do not wait for the decision to append).
    sym : Out
        The book.
    """
    slot = range(params.max_orders)
    addr = range(level_depth(params))
    off = range(params.band_ticks)
    return wiring.Signature({
        "unlink": Out(1), "append": Out(1), "append_mode": Out(1),
        "slot": Out(slot), "level": Out(level_layout(params)),
        "next": Out(link_layout(params)), "prev": Out(link_layout(params)),
        "own_level": Out(addr), "append_level": Out(addr), "sym": Out(range(params.max_symbols)),
        "side": Out(1), "offset": Out(off), "new_side": Out(1), "new_offset": Out(off),
    })


class LevelLists(wiring.Component):
    """The writes of one unlink or append of a price level's doubly linked, NIL-terminated
    FIFO.

    A head's ``prev`` and a tail's ``next`` link are NIL (``end``), so an unlink needs only the
    order's own links, not its level's word: it writes each neighbour's link over with the
    order's (``next[prev] = next``, ``prev[next] = prev``, NIL included) and, at an end of the
    list, only that end of the level word (the head, or the tail with the occupied bit; an
    only order clears the occupied bit). An append to an empty level makes the order the
    level's head and tail, NIL both ways, and sets the occupancy bit; to an occupied one it
    links the old tail and the new order and moves the level's tail.

    An append writes two ``next`` links (the old tail's and the new order's NIL): the new
    order's is written in the following cycle, in which the user issues no other operation.

    Parameters
    ----------
    params : ModelParams

    Members
    -------
    op : In(list_op_signature(params))
    levels : Out(level_write_signature(params))
    links : Out(link_write_signature(params))
    occ : Out(update_signature(max_symbols, band_ticks))
    """

    def __init__(self, params):
        super().__init__({
            "op": In(list_op_signature(params)),
            "levels": Out(level_write_signature(params)),
            "links": Out(link_write_signature(params)),
            "occ": Out(update_signature(params.max_symbols, params.band_ticks)),
        })

    def elaborate(self, platform):
        m = Module()
        op, lv, nx, pv = self.op, self.levels, self.links.next, self.links.prev
        ap, occupied = op.append_mode, op.level.occ
        is_head, is_tail = op.prev.end, op.next.end
        # The appended order's NIL ``next``, written the cycle after the append.
        nil_next, nil_slot = Signal(), Signal.like(op.slot)
        m.d.sync += [nil_next.eq(op.append), nil_slot.eq(op.slot)]
        m.d.comb += [
            lv.head_en.eq((op.append & ~occupied) | (op.unlink & is_head & ~is_tail)),
            lv.tail_en.eq(op.append | (op.unlink & is_tail)),
            lv.addr.eq(Mux(ap, op.append_level, op.own_level)),
            lv.data.head.eq(Mux(ap, op.slot, op.next.slot)),
            lv.data.tail.eq(Mux(ap, op.slot, op.prev.slot)),
            lv.data.occ.eq(ap | ~is_head),
            nx.en.eq((op.unlink & ~is_head) | (op.append & occupied) | nil_next),
            nx.addr.eq(Mux(nil_next, nil_slot, Mux(ap, op.level.tail, op.prev.slot))),
            nx.data.slot.eq(Mux(ap, op.slot, op.next.slot)),
            nx.data.end.eq(nil_next | (~ap & is_tail)),
            pv.en.eq((op.unlink & ~is_tail) | op.append),
            pv.addr.eq(Mux(ap, op.slot, op.next.slot)),
            pv.data.slot.eq(Mux(ap, op.level.tail, op.prev.slot)),
            pv.data.end.eq(Mux(ap, ~occupied, is_head)),
            self.occ.en.eq((op.unlink & is_head & is_tail) | (op.append & ~occupied)),
            self.occ.sym.eq(op.sym), self.occ.side.eq(Mux(ap, op.new_side, op.side)),
            self.occ.offset.eq(Mux(ap, op.new_offset, op.offset)), self.occ.value.eq(ap),
        ]
        return m
