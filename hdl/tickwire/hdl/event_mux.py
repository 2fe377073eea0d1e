"""The matching engine's event multiplexer: each wide event field from a few sources."""

from amaranth.hdl import C, Cat, Module, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.event_output import emit_signature
from tickwire.protocol.link import COMMAND_LAYOUT, EVENT_LAYOUT, NO_SLOT

__all__ = ["EVENT_SOURCES", "EventMux", "make_signature", "select_code"]

#: Each multiplexed event field's sources, in select-code order (code 0: the field is 0).
#: ``cmd``/``new``: the command's fields; ``book``: the book's locate or the event price of
#: an offset; ``order``: the order word read; ``cur``: the walk's (or resting) slot; ``in``:
#: the incoming order's shares; ``left``: the resting order's after a fill; ``next``: the next
#: match number.
EVENT_SOURCES = {
    "symbol": ("cmd", "book"),
    "order_id": ("cmd", "new", "order"),
    "other_id": ("cmd", "new"),
    "slot": ("cmd", "cur", "none"),
    "qty": ("in", "order", "left"),
    "remaining": ("in", "order", "left"),
    "price": ("cmd", "book"),
    "match": ("next",),
}


def select_code(field, source):
    """The select code of ``source`` for ``field`` (``None``: the field is 0)."""
    return 0 if source is None else EVENT_SOURCES[field].index(source) + 1


def source_layout(params):
    """The engine's own values an event field may take (besides the command's)."""
    qty = range(params.max_qty + 1)
    return data.StructLayout({
        "locate": 16, "order_id": 32, "order_qty": qty, "cur_slot": range(params.max_orders),
        "in_qty": qty, "left": qty, "price": 32, "match": 32,
    })


def select_layout():
    """One select code per multiplexed field."""
    return data.StructLayout({name: range(len(srcs) + 1) for name, srcs in EVENT_SOURCES.items()})


def make_signature(params):
    """Making an event, from its maker's side.

    Members
    -------
    stb : Out(1)
        Make the event this cycle (only while ``can_emit``).
    event : Out(EVENT_LAYOUT)
        Every field not multiplexed; of a multiplexed field only ``qty`` above the width of the
        engine's shares is read (DIRECTORY's round lot), ORed into its source.
    select : Out(select_layout())
        Each multiplexed field's source (:func:`select_code`).
    cmd : Out(COMMAND_LAYOUT)
        The command (the ``cmd`` and ``new`` sources).
    sources : Out(source_layout(params))
        The engine's values (every other source).
    can_emit : In(1)
    """
    return wiring.Signature({
        "stb": Out(1), "event": Out(EVENT_LAYOUT), "select": Out(select_layout()),
        "cmd": Out(COMMAND_LAYOUT), "sources": Out(source_layout(params)), "can_emit": In(1),
    })


class EventMux(wiring.Component):
    """Each wide event field as one flat multiplexer over its few sources, steered by a small
    select code (combinational).

    The engine's states set select codes, not 32-bit data: their nested decisions then steer
    a few bits, and each field's multiplexer is built once.

    Parameters
    ----------
    params : ModelParams

    Members
    -------
    make : In(make_signature(params))
    emit : Out(emit_signature())
        To the :class:`~tickwire.hdl.event_output.EventOutput` register.
    """

    def __init__(self, params):
        super().__init__({"make": In(make_signature(params)), "emit": Out(emit_signature())})

    def elaborate(self, platform):
        m = Module()
        make, emit = self.make, self.emit
        c, v = make.cmd, make.sources
        values = {
            "symbol": {"cmd": c.symbol, "book": v.locate},
            "order_id": {"cmd": c.order_id, "new": c.new_order_id, "order": v.order_id},
            "other_id": {"cmd": c.order_id, "new": c.new_order_id},
            "slot": {"cmd": c.slot, "cur": v.cur_slot, "none": NO_SLOT},
            "qty": {"in": v.in_qty, "order": v.order_qty, "left": v.left},
            "remaining": {"in": v.in_qty, "order": v.order_qty, "left": v.left},
            "price": {"cmd": c.price, "book": v.price},
            "match": {"next": v.match},
        }
        m.d.comb += [emit.stb.eq(make.stb), make.can_emit.eq(emit.can_emit),
                     emit.event.eq(make.event)]
        # Of a multiplexed field the maker drives only DIRECTORY's round lot above the width of
        # the engine's shares; the other bits are constant 0 there, and Icarus never runs an
        # ``always @*`` block without inputs (they would read X), so they are not read here.
        qb = len(v.in_qty)
        for name, sources in values.items():
            field = Value.cast(getattr(emit.event, name))
            own = Cat(C(0, qb), Value.cast(make.event.qty)[qb:]) if name == "qty" else 0
            m.d.comb += field.eq(own)
            with m.Switch(getattr(make.select, name)):
                for code, source in enumerate(EVENT_SOURCES[name], 1):
                    with m.Case(code):
                        m.d.comb += field.eq(sources[source] | own)
        return m
