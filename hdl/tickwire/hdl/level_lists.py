"""Unlink and append of the price levels' FIFO lists: the level word, link and occupancy writes."""

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.level_table import level_depth, level_layout, level_write_signature
from tickwire.hdl.occupancy_map import update_signature
from tickwire.hdl.order_store import link_write_signature

__all__ = ["LevelLists", "list_op_signature"]


def list_op_signature(params):
    """One list operation, from its user's side (every member ``Out``).

    Members
    -------
    unlink : Out(1)
        Take ``slot`` out of its level: ``own_level`` (address), whose head and tail are
        ``level`` (the word read) or, with ``regs``, ``head``/``tail``; the order's links are
        ``next``/``prev``, its side and offset ``side``/``offset``.
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
        "unlink": Out(1), "append": Out(1), "append_mode": Out(1), "regs": Out(1),
        "slot": Out(slot), "head": Out(slot), "tail": Out(slot),
        "level": Out(level_layout(params)), "next": Out(slot), "prev": Out(slot),
        "own_level": Out(addr), "append_level": Out(addr), "sym": Out(range(params.max_symbols)),
        "side": Out(1), "offset": Out(off), "new_side": Out(1), "new_offset": Out(off),
    })


class LevelLists(wiring.Component):
    """The writes of one unlink or append of a price level's doubly linked FIFO
    (combinational).

    An unlink of a level's only order clears the level word and its occupancy bit; of its head
    or tail moves that end to the neighbour; from the middle joins the neighbours' links (the
    links of a head and a tail are never read or written: the level word says where the list
    ends). An append to an empty level makes it the level's head and tail and sets the
    occupancy bit; to an occupied one it links the old tail and the new order.

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
        ap = op.append_mode
        head = Mux(op.regs, op.head, op.level.head)
        tail = Mux(op.regs, op.tail, op.level.tail)
        is_head, is_tail = head == op.slot, tail == op.slot
        m.d.comb += [
            lv.en.eq(op.append | (op.unlink & (is_head | is_tail))),
            lv.addr.eq(Mux(ap, op.append_level, op.own_level)),
            lv.data.occ.eq(ap | ~(is_head & is_tail)),
            lv.data.head.eq(Mux(ap, Mux(op.level.occ, op.level.head, op.slot),
                                Mux(is_head, op.next, head))),
            lv.data.tail.eq(Mux(ap, op.slot, Mux(is_tail, op.prev, tail))),
            nx.en.eq((op.unlink & ~is_head & ~is_tail) | (op.append & op.level.occ)),
            pv.en.eq(nx.en),
            nx.addr.eq(Mux(ap, op.level.tail, op.prev)),
            nx.data.eq(Mux(ap, op.slot, op.next)),
            pv.addr.eq(Mux(ap, op.slot, op.next)),
            pv.data.eq(Mux(ap, op.level.tail, op.prev)),
            self.occ.en.eq((op.unlink & is_head & is_tail) | (op.append & ~op.level.occ)),
            self.occ.sym.eq(op.sym), self.occ.side.eq(Mux(ap, op.new_side, op.side)),
            self.occ.offset.eq(Mux(ap, op.new_offset, op.offset)), self.occ.value.eq(ap),
        ]
        return m
