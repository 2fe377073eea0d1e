"""The matching engine's symbol table: each book's state, in registers."""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SymbolTable", "symbol_port_signature"]


def symbol_port_signature(params):
    """The symbol table from its user's side (``params``: a ``ModelParams``).

    Members
    -------
    sym : Out(range(max_symbols))
        The book read (and written): ``declared``, ``halted``, ``lot``, ``breaker_on``,
        ``trip_lo``, ``trip_hi`` in.
    price_sym : Out(range(max_symbols))
        The book whose ``band_low`` is read.
    declare, lot_in, band_low_in : Out
        Declare ``sym``: declared, not halted, round lot and band's low price.
    set_halted, halted_in : Out
        Halt or resume ``sym``.
    set_breaker, breaker_on_in, trip_lo_in, trip_hi_in : Out
        Set ``sym``'s breaker bounds.
    """
    band = range(params.band_ticks + 1)
    lot = range(params.max_qty + 2)
    syms = range(params.max_symbols)
    return wiring.Signature({
        "sym": Out(syms), "price_sym": Out(syms),
        "declared": In(1), "halted": In(1), "lot": In(lot), "band_low": In(32),
        "breaker_on": In(1), "trip_lo": In(band), "trip_hi": In(band),
        "declare": Out(1), "lot_in": Out(lot), "band_low_in": Out(32),
        "set_halted": Out(1), "halted_in": Out(1),
        "set_breaker": Out(1), "breaker_on_in": Out(1), "trip_lo_in": Out(band),
        "trip_hi_in": Out(band),
    })


class SymbolTable(wiring.Component):
    """Per symbol: declared, halted, the round lot (clamped to ``max_qty + 1``, so that the
    odd-lot test of shares ≤ ``max_qty`` is the same), ``band_low`` (prices inside the engine
    are tick offsets from it), and the breaker as offset bounds: a level trips it iff
    ``breaker_on`` and its offset is ``< trip_lo`` or ``≥ trip_hi``. Reads are combinational;
    writes take effect on the next cycle.

    Parameters
    ----------
    params : ModelParams

    Members
    -------
    port : In(symbol_port_signature(params))
    """

    def __init__(self, params):
        self._params = params
        super().__init__({"port": In(symbol_port_signature(params))})

    def elaborate(self, platform):
        m = Module()
        p, port = self._params, self.port

        def table(name, shape):
            return Array(Signal(shape, name=f"{name}{i + 1}") for i in range(p.max_symbols))

        declared, halted = table("declared", 1), table("halted", 1)
        lots, band_lows = table("lot", range(p.max_qty + 2)), table("band_low", 32)
        brk_on = table("breaker_on", 1)
        trip_los = table("trip_lo", range(p.band_ticks + 1))
        trip_his = table("trip_hi", range(p.band_ticks + 1))
        sym = port.sym
        m.d.comb += [
            port.declared.eq(declared[sym]), port.halted.eq(halted[sym]),
            port.lot.eq(lots[sym]), port.band_low.eq(band_lows[port.price_sym]),
            port.breaker_on.eq(brk_on[sym]),
            port.trip_lo.eq(trip_los[sym]), port.trip_hi.eq(trip_his[sym]),
        ]
        with m.If(port.declare):
            m.d.sync += [declared[sym].eq(1), halted[sym].eq(0), lots[sym].eq(port.lot_in),
                         band_lows[sym].eq(port.band_low_in)]
        with m.If(port.set_halted):
            m.d.sync += halted[sym].eq(port.halted_in)
        with m.If(port.set_breaker):
            m.d.sync += [brk_on[sym].eq(port.breaker_on_in), trip_los[sym].eq(port.trip_lo_in),
                         trip_his[sym].eq(port.trip_hi_in)]
        return m
