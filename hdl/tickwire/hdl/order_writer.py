"""The matching engine's order-word writer: the order read with a few fields changed, or a new
resting order."""

from amaranth.hdl import Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.order_store import order_layout, order_port_signature

__all__ = ["OrderWriter", "QtySource", "incoming_layout", "order_write_signature"]


class QtySource:
    """Select codes of the shares written."""
    ORDER = 0      # the order read's
    LEFT = 1       # the resting order's after a fill
    IN = 2         # the incoming order's (or a cancel's / kept replace's new size)


def incoming_layout(params):
    """The incoming order (a NEW, or a replace's new terms): what a resting word is made of."""
    return data.StructLayout({
        "order_id": 32, "qty": range(params.max_qty + 1), "offset": range(params.band_ticks),
        "side": 1, "tif": 2, "stp": 2, "firm": 16, "sym": range(params.max_symbols),
    })


def order_write_signature(params):
    """A write of an order word, from the engine's side (every member ``Out``).

    Members
    -------
    en, slot : Out
        Write the word of ``slot``.
    valid : Out(1)
        The word's ``valid`` (0: the order leaves the book).
    qty : Out(2)
        The shares written (:class:`QtySource`).
    fresh : Out(1)
        A new resting order: every field from ``incoming``.
    moved : Out(1)
        The order read, moved: its id and offset from ``incoming``.
    order : Out(order_layout(params))
        The order read.
    left : Out
        The resting order's shares after a fill.
    incoming : Out(incoming_layout(params))
    """
    return wiring.Signature({
        "en": Out(1), "slot": Out(range(params.max_orders)), "valid": Out(1), "qty": Out(2),
        "fresh": Out(1), "moved": Out(1), "order": Out(order_layout(params)),
        "left": Out(range(params.max_qty + 1)), "incoming": Out(incoming_layout(params)),
    })


class OrderWriter(wiring.Component):
    """The order RAM's write word as flat multiplexers steered by a few flags (combinational),
    so that the engine's decisions steer flags, not the word.

    Parameters
    ----------
    params : ModelParams

    Members
    -------
    req : In(order_write_signature(params))
    write : Out
        The :class:`~tickwire.hdl.order_store.OrderStore`'s write port (``en``, ``addr``,
        ``data``).
    """

    def __init__(self, params):
        write = order_port_signature(params).members["write"].signature
        super().__init__({"req": In(order_write_signature(params)), "write": Out(write)})

    def elaborate(self, platform):
        m = Module()
        req, wr = self.req, self.write
        t, new = req.order, req.incoming
        fresh, renamed = req.fresh, req.fresh | req.moved
        m.d.comb += [
            wr.en.eq(req.en),
            wr.addr.eq(req.slot),
            wr.data.valid.eq(req.valid),
            wr.data.order_id.eq(Mux(renamed, new.order_id, t.order_id)),
            wr.data.qty.eq(Mux(req.qty[1], new.qty, Mux(req.qty[0], req.left, t.qty))),
            wr.data.offset.eq(Mux(renamed, new.offset, t.offset)),
            wr.data.side.eq(Mux(fresh, new.side, t.side)),
            wr.data.tif.eq(Mux(fresh, new.tif, t.tif)),
            wr.data.firm.eq(Mux(fresh, new.firm, t.firm)),
            wr.data.stp.eq(Mux(fresh, new.stp, t.stp)),
            wr.data.sym.eq(Mux(fresh, new.sym, t.sym)),
        ]
        return m
