"""One event stream to several consumers, each taking every event once."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.protocol.link import EVENT_LAYOUT

__all__ = ["EventFork"]


class EventFork(wiring.Component):
    """Offers each event on ``i_event`` to every output; the source lets it go once all took it.

    Each output takes the event once, in any order; a slow output holds the source back, so
    nothing is lost.

    Parameters
    ----------
    outputs : int
        Number of consumers.
    registered : bool
        ``True``: the source's ``ready`` is the AND of registered *taken* flags, so it rises a
        cycle after the last output took the event (one idle cycle per event) and no consumer's
        combinational ``ready`` reaches back into the source (the boards use this: the ITCH
        encoder decodes the payload for its ``ready``). ``False``: ``ready`` in the same cycle
        as the last take, for full throughput.

    Members
    -------
    i_event : In(stream.Signature(EVENT_LAYOUT))
    o_events : Out(stream.Signature(EVENT_LAYOUT)).array(outputs)
    """

    def __init__(self, outputs, *, registered):
        self._registered = registered
        super().__init__({"i_event": In(stream.Signature(EVENT_LAYOUT)),
                          "o_events": Out(stream.Signature(EVENT_LAYOUT)).array(outputs)})

    def elaborate(self, platform):
        m = Module()
        src = self.i_event
        taken = [Signal(name=f"taken_{i}") for i in range(len(self.o_events))]
        took = [out.valid & out.ready for out in self.o_events]
        if self._registered:
            done = taken
        else:
            done = [t | now for t, now in zip(taken, took)]
        all_done = 1
        for d in done:
            all_done = all_done & d
        m.d.comb += src.ready.eq(all_done)
        for t, out, now in zip(taken, self.o_events, took):
            m.d.comb += [out.payload.eq(src.payload), out.valid.eq(src.valid & ~t)]
            with m.If(src.valid & src.ready):
                m.d.sync += t.eq(0)
            with m.Elif(now):
                m.d.sync += t.eq(1)
        return m
