"""The matching engine's price arithmetic: prices to tick offsets of a book and back."""

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PriceOffsets"]


class PriceOffsets(wiring.Component):
    """One price-to-offset subtractor and one offset-to-price adder, shared by every state
    (prices inside the engine are tick offsets from the book's ``band_low``).

    Parameters
    ----------
    band_ticks : int

    Members
    -------
    band_low : In(32)
        The book's lowest price (a DECLARE's state gives ``band_ticks // 2``, so that
        ``diff`` is its ``reference − band_ticks // 2``).
    price : In(32)
        The command's price.
    diff : Out(signed(34))
        ``price − band_low``.
    offset : Out(range(band_ticks))
        ``diff`` truncated (for RAM addresses in the cycle the price arrives).
    offset_q, in_band : Out
        ``diff`` truncated and whether it lies in ``range(band_ticks)``, registered every cycle:
        decisions a cycle later take them from flip-flops, not from the subtractor's carry chain.
    event_offset : In(range(band_ticks))
    event_price : Out(32)
        ``band_low + event_offset``: every event's price.
    """

    def __init__(self, band_ticks):
        self._band = band_ticks
        offset = range(band_ticks)
        super().__init__({
            "band_low": In(32), "price": In(32), "diff": Out(signed(34)), "offset": Out(offset),
            "offset_q": Out(offset), "in_band": Out(1), "event_offset": In(offset),
            "event_price": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.diff.eq(self.price - self.band_low), self.offset.eq(self.diff),
                     self.event_price.eq(self.band_low + self.event_offset)]
        m.d.sync += [self.in_band.eq((self.diff >= 0) & (self.diff < self._band)),
                     self.offset_q.eq(self.diff)]
        return m
