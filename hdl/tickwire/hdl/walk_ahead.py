"""The walker's look ahead: the price level beyond the one the matching walk is in."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WalkAhead"]


class WalkAhead(wiring.Component):
    """The next contra level of a matching walk, registered, so that the walker can read its
    head while it matches the current level's last order and move there in 2 cycles.

    In the walk's first cycle in a level (``look`` while ``ahead`` is clear) it takes the
    search's result (the level beyond the current one, searched when the walk entered it) and
    sets ``ahead``; the walker then starts the search beyond that level. ``leave`` (the walk
    enters a level) clears ``ahead``. The walker drops a look it does not use: the next level
    may not exist (``found`` clear), may not cross the incoming limit or trip the breaker, or
    the walk may stop in the current level.

    Parameters
    ----------
    band_ticks : int

    Members
    -------
    look, leave : In(1)
    result_found, result_offset : In
        The search's result (``found``, ``offset``).
    ahead : Out(1)
        ``found`` and ``offset`` hold the next level (taken in an earlier cycle).
    found, offset : Out
        The next level, if ``found``.
    """

    def __init__(self, band_ticks):
        super().__init__({"look": In(1), "leave": In(1), "result_found": In(1),
                          "result_offset": In(range(band_ticks)), "ahead": Out(1),
                          "found": Out(1), "offset": Out(range(band_ticks))})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.leave):
            m.d.sync += self.ahead.eq(0)
        with m.Elif(self.look & ~self.ahead):
            m.d.sync += [self.found.eq(self.result_found), self.offset.eq(self.result_offset),
                         self.ahead.eq(1)]
        return m
