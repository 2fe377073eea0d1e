"""The matching engine's event output register, through which backpressure reaches the engine."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.protocol.link import EVENT_LAYOUT

__all__ = ["EventOutput", "emit_signature"]


def emit_signature():
    """Making an event, from its maker's side: ``stb`` with ``event`` writes it (only while
    ``can_emit``)."""
    return wiring.Signature({"stb": Out(1), "event": Out(EVENT_LAYOUT), "can_emit": In(1)})


class EventOutput(wiring.Component):
    """A one-event register in front of ``o_event``.

    An event made in a cycle (``emit.stb``) is offered from the next. A new one may be made when
    the register is empty or being taken: ``can_emit = ~o_event.valid | o_event.ready``, a
    combinational path from ``o_event.ready`` to the maker. No event is dropped or repeated:
    the maker holds its work while ``can_emit`` is low.

    Members
    -------
    emit : In(emit_signature())
    o_event : Out(stream.Signature(EVENT_LAYOUT))
    """

    emit: In(emit_signature())
    o_event: Out(stream.Signature(EVENT_LAYOUT))

    def elaborate(self, platform):
        m = Module()
        out = self.o_event
        m.d.comb += self.emit.can_emit.eq(~out.valid | out.ready)
        with m.If(self.emit.stb):
            m.d.sync += [out.payload.eq(self.emit.event), out.valid.eq(1)]
        with m.Elif(out.ready):
            m.d.sync += out.valid.eq(0)
        return m
