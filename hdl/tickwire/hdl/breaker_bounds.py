"""A DECLARE's circuit-breaker bounds as tick offsets of its book."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BreakerBounds"]


class BreakerBounds(wiring.Component):
    """The offsets beyond which a trade trips the breaker (combinational).

    The bounds are ``reference − band_low ∓ breaker`` (+1 for ``trip_hi``) clamped to
    ``[0, band_ticks]``, where ``ref_off = reference − band_low`` is ``band_ticks // 2``, or
    ``reference − 1`` when the band starts at 1: narrow adds, not 32-bit ones.

    Parameters
    ----------
    band_ticks : int

    Members
    -------
    reference, breaker : In(32)
        The DECLARE's ``price`` and ``breaker`` (ticks).
    above_half : In(1)
        ``reference > band_ticks // 2`` (the band starts above 1).
    trip_lo, trip_hi : Out(range(band_ticks + 1))
        A trade at offset ``o`` trips if ``o < trip_lo`` or ``o ≥ trip_hi``.
    """

    def __init__(self, band_ticks):
        self._band = band_ticks
        bound = range(band_ticks + 1)
        super().__init__({"reference": In(32), "breaker": In(32), "above_half": In(1),
                          "trip_lo": Out(bound), "trip_hi": Out(bound)})

    def elaborate(self, platform):
        m = Module()
        band = self._band
        half = band // 2
        bw = len(Signal(range(band + 1)))
        ref_off = Signal(range(half + 1))
        m.d.comb += ref_off.eq(Mux(self.above_half, half, self.reference[:bw] - 1))
        far = self.breaker[bw:] != 0           # beyond the band from any reference
        brk = self.breaker[:bw]
        m.d.comb += [
            self.trip_lo.eq(Mux(far | (brk > ref_off), 0, ref_off - brk)),
            self.trip_hi.eq(Mux(far | (brk >= band - ref_off), band, ref_off + brk + 1)),
        ]
        return m
