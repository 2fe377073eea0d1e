"""The matching engine's fill decision: two subtractors whose borrows are the compares."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FillCompare"]


class FillCompare(wiring.Component):
    """A fill of ``incoming`` shares against a resting order's ``resting`` (combinational);
    also a cancel's new size (``incoming``) against the order's shares.

    Parameters
    ----------
    max_qty : int

    Members
    -------
    incoming, resting : In(range(max_qty + 1))
    emptied : Out(1)
        ``incoming ≥ resting``: the fill takes the whole resting order.
    filled : Out(1)
        ``resting ≥ incoming``: the fill takes the whole incoming order.
    left : Out(range(max_qty + 1))
        The resting order's shares after the fill.
    in_left : Out(range(max_qty + 1))
        The incoming order's.
    """

    def __init__(self, max_qty):
        qty = range(max_qty + 1)
        super().__init__({"incoming": In(qty), "resting": In(qty), "emptied": Out(1),
                          "filled": Out(1), "left": Out(qty), "in_left": Out(qty)})

    def elaborate(self, platform):
        m = Module()
        qb = len(self.left)
        in_minus, t_minus = Signal(qb + 1), Signal(qb + 1)
        m.d.comb += [
            in_minus.eq(self.incoming - self.resting), t_minus.eq(self.resting - self.incoming),
            self.emptied.eq(~in_minus[qb]), self.filled.eq(~t_minus[qb]),
            self.left.eq(Mux(self.emptied, 0, t_minus[:qb])),
            self.in_left.eq(Mux(self.emptied, in_minus[:qb], 0)),
        ]
        return m
