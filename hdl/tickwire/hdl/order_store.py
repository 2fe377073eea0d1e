"""The matching engine's order store: one word per order slot and the links of the level lists."""

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["OrderStore", "link_layout", "link_write_signature", "order_layout",
           "order_port_signature"]


def order_layout(params):
    """One resting order in the order store (``params``: a ``ModelParams``)."""
    return data.StructLayout({
        "valid": 1,
        "order_id": 32,
        "qty": range(params.max_qty + 1),      # open shares never exceed max_qty
        "offset": range(params.band_ticks),
        "side": 1,
        "tif": 1,                              # resting orders are DAY (0) or GTC (1)
        "firm": 16,
        "stp": 2,
        "sym": range(params.max_symbols),
    })


def link_layout(params):
    """A list link: the slot linked to, or ``end`` (NIL): the order is its level's head (a
    ``prev`` link) or tail (a ``next`` link), and ``slot`` means nothing."""
    return data.StructLayout({"slot": range(params.max_orders), "end": 1})


def _write_signature(depth, shape):
    return wiring.Signature({"en": Out(1), "addr": Out(range(depth)), "data": Out(shape)})


def order_port_signature(params):
    """The order port, from its user's side.

    Members
    -------
    read : Out(Signature)
        ``addr``, ``en`` out; ``order``, ``next``, ``prev`` in: the slot's order word and its
        list links (``link_layout``), registered (from the cycle after ``en``, held until the
        next read).
    write : Out(Signature)
        ``en``, ``addr``, ``data`` (an ``order_layout`` word).
    """
    depth = params.max_orders
    read = wiring.Signature({"addr": Out(range(depth)), "en": Out(1),
                             "order": In(order_layout(params)), "next": In(link_layout(params)),
                             "prev": In(link_layout(params))})
    return wiring.Signature({"read": Out(read),
                             "write": Out(_write_signature(depth, order_layout(params)))})


def link_write_signature(params):
    """The list links' write ports, from their user's side: ``next`` and ``prev``, each with
    ``en``, ``addr`` (the slot) and ``data`` (a ``link_layout`` word)."""
    depth = params.max_orders
    return wiring.Signature({"next": Out(_write_signature(depth, link_layout(params))),
                             "prev": Out(_write_signature(depth, link_layout(params)))})


class OrderStore(wiring.Component):
    """Order words and the doubly linked, NIL-terminated lists of the price levels, in three
    block RAMs of ``max_orders`` words.

    Each RAM has one write port and one registered read port, transparent for that write port,
    with a read enable: the read data holds until the next read, so a user may consume it for
    as many cycles as it stalls. The three share the read address (one slot's word and links
    come together). Contents start zero: a slot never written reads as not ``valid``.

    Parameters
    ----------
    params : ModelParams
    output_register : bool
        Register the read data once more (on the ECP5 the DP16KD's output register, else flip-flops
        beside it): it comes two cycles after ``en``, not one, and the block RAM's slow
        clock-to-out no longer starts the user's logic. A write in the cycle between is not
        seen (the user issues none there).

    Members
    -------
    port : In(order_port_signature(params))
        Reads of a slot's word and links, writes of a word.
    links : In(link_write_signature(params))
        Writes of the ``next`` and ``prev`` links.
    """

    def __init__(self, params, *, output_register=False):
        self._params = params
        self._output_register = output_register
        super().__init__({"port": In(order_port_signature(params)),
                          "links": In(link_write_signature(params))})

    def elaborate(self, platform):
        m = Module()
        params, depth = self._params, self._params.max_orders
        m.submodules.orders = orders = Memory(shape=order_layout(params), depth=depth, init=[])
        m.submodules.nexts = nexts = Memory(shape=link_layout(params), depth=depth, init=[])
        m.submodules.prevs = prevs = Memory(shape=link_layout(params), depth=depth, init=[])
        read = self.port.read
        for mem, write, data_out in ((orders, self.port.write, read.order),
                                     (nexts, self.links.next, read.next),
                                     (prevs, self.links.prev, read.prev)):
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            m.d.comb += [wr.en.eq(write.en), wr.addr.eq(write.addr), wr.data.eq(write.data),
                         rd.addr.eq(read.addr), rd.en.eq(read.en)]
            domain = m.d.sync if self._output_register else m.d.comb
            domain += data_out.eq(rd.data)
        return m
