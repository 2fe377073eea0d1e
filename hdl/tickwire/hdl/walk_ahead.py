"""The walker's look ahead: the price level beyond the one the matching walk is in."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WalkAhead"]


class WalkAhead(wiring.Component):
    """The next contra level of a matching walk, registered, so that the walker can read its
    head while it matches the current level's last order and move there in 2 cycles.

    In the walk's first cycle in a level (``look`` while ``ahead`` is clear) it takes the
    search's result (the level beyond the current one, searched when the walk entered it) and
    sets ``ahead``; the walker then starts the search beyond that level. ``leave`` (the walk
    enters a level, or a command starts) clears ``ahead``. The walker drops a look it does not
    use: the next level may not exist, may not cross the incoming limit or may trip the
    breaker, or the walk may stop in the current level.

    Parameters
    ----------
    band_ticks : int

    Members
    -------
    look, leave : In(1)
    result_found, result_offset, result_crosses, result_trips : In
        The search's result: a level was found at ``offset``; it crosses the incoming limit;
        it is beyond the breaker.
    ahead : Out(1)
        The members below hold the next level (taken in an earlier cycle).
    found, offset, crosses, trips : Out
        The next level, as taken.
    """

    def __init__(self, band_ticks):
        super().__init__({"look": In(1), "leave": In(1), "result_found": In(1),
                          "result_offset": In(range(band_ticks)), "result_crosses": In(1),
                          "result_trips": In(1), "ahead": Out(1), "found": Out(1),
                          "offset": Out(range(band_ticks)), "crosses": Out(1),
                          "trips": Out(1)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.leave):
            m.d.sync += self.ahead.eq(0)
        with m.Elif(self.look & ~self.ahead):
            m.d.sync += [self.ahead.eq(1)] + [
                getattr(self, name).eq(getattr(self, f"result_{name}"))
                for name in ("found", "offset", "crosses", "trips")]
        return m
