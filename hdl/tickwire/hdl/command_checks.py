"""The matching engine's checks of a command alone, registered every cycle."""

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from tickwire.protocol.link import COMMAND_LAYOUT

__all__ = ["CommandChecks", "checks_layout"]


def checks_layout():
    """The checks, each one bit.

    ``big``: qty > max_qty; ``bad_qty``: qty = 0 or > max_qty; ``bad_min``: min_qty > qty;
    ``min_set``: min_qty ≠ 0; ``sym_ok``: locate in ``1..max_symbols``; ``declare_ok``: a
    DECLARE's locate, tick, lot and reference are valid; ``above_half``: price >
    ``band_ticks // 2`` (a DECLARE's band starts above 1); ``breaker_set``: breaker ≠ 0.
    """
    return data.StructLayout({name: 1 for name in (
        "big", "bad_qty", "bad_min", "min_set", "sym_ok", "declare_ok", "above_half",
        "breaker_set")})


class CommandChecks(wiring.Component):
    """Compares of the offered command's fields against the engine's limits, registered every
    cycle.

    The engine keeps a command on ``i_cmd`` while it runs and uses these from the cycle after
    it dispatches it, so their 32-bit compares end in flip-flops, not in its decisions.

    Parameters
    ----------
    params : ModelParams

    Members
    -------
    cmd : In(COMMAND_LAYOUT)
    checks : Out(checks_layout())
        The checks of the command offered in the previous cycle.
    """

    cmd: In(COMMAND_LAYOUT)
    checks: Out(checks_layout())

    def __init__(self, params):
        self._params = params
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        p, c, q = self._params, self.cmd, self.checks
        sym_ok = (c.symbol >= 1) & (c.symbol <= p.max_symbols)
        m.d.sync += [
            q.big.eq(c.qty > p.max_qty),
            q.bad_qty.eq((c.qty == 0) | (c.qty > p.max_qty)),
            q.bad_min.eq(c.min_qty > c.qty),
            q.min_set.eq(c.min_qty != 0),
            q.sym_ok.eq(sym_ok),
            q.declare_ok.eq(sym_ok & (c.tick != 0) & (c.qty != 0) & (c.price != 0)),
            q.above_half.eq(c.price > p.band_ticks // 2),
            q.breaker_set.eq(c.breaker != 0),
        ]
        return m
