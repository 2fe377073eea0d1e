"""Engine event records → ITCH 5.0 messages, one byte per cycle (gateware of ``feed.FeedEncoder``)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..feed import TRADING_REASONS
from ..protocol import itch
from ..protocol.fields import Kind
from ..protocol.link import EVENT_LAYOUT, EventKind, ReplaceMode

__all__ = ["ItchType", "MESSAGE_LAYOUT", "MAX_MESSAGE", "ItchEncoder", "spec_bytes", "message_bytes"]


class ItchType(enum.Enum, shape=8):
    """The ITCH messages the feed sends, by their ASCII type code; ``NONE``: no message."""
    NONE = 0
    S = ord("S")
    R = ord("R")
    H = ord("H")
    A = ord("A")
    E = ord("E")
    X = ord("X")
    D = ord("D")
    U = ord("U")


MAX_MESSAGE = max(itch.SPECS[t.name.encode()].length for t in ItchType if t is not ItchType.NONE)

#: One beat of the message stream. ``length`` (the whole message's, in bytes) is valid on every
#: beat so that the packetizer knows at the first byte whether the message fits. ``flush``
#: (the event's ``last``) asks to close the MoldUDP64 packet after this message; an event that
#: gives no message but ends its command sends one ``empty`` beat carrying ``flush``.
MESSAGE_LAYOUT = data.StructLayout({
    "data": 8, "last": 1, "flush": 1, "empty": 1, "length": range(MAX_MESSAGE + 1)})

#: One entry of the stock locate table, written by DIRECTORY events.
STOCK_LAYOUT = data.StructLayout({"name": 64, "tick": 16})


def _alpha(text, length):
    """A constant ALPHA field value packed like the event ``name`` (first character LSB)."""
    return Const(int.from_bytes(text.encode("ascii").ljust(length, b" "), "little"), 8 * length)


def spec_bytes(spec, values):
    """Byte expressions of one message of a table-driven ``MessageSpec``, type byte included.

    ``values`` maps field names to Amaranth values or Python constants: integer fields are
    numbers (sent big-endian), ALPHA fields a ``str`` or a value packed first character in the
    least significant byte, CHAR fields a 1-character ``str`` or an 8-bit value. Fields with a
    default in the spec may be left out.
    """
    out = [Const(code, 8) for code in spec.type_code]
    for field in spec.fields:
        value = values.get(field.name, field.default)
        if value is None:
            raise ValueError(f"{spec.name}.{field.name} has no value")
        n = field.length
        if field.kind is Kind.ALPHA:
            packed = _alpha(value, n) if isinstance(value, str) else Value.cast(value)
            out += [packed[8 * i:8 * i + 8] for i in range(n)]
        elif field.kind is Kind.CHAR:
            out.append(Const(ord(value), 8) if isinstance(value, str) else Value.cast(value))
        else:
            wide = Cat(value, Const(0, 8 * n))
            out += [wide[8 * (n - 1 - i):8 * (n - i)] for i in range(n)]
    assert len(out) == spec.length
    return out


def message_bytes(type_code, values):
    """Byte expressions of the ITCH message ``type_code`` (see :func:`spec_bytes`)."""
    return spec_bytes(itch.SPECS[type_code], values)


class ItchEncoder(wiring.Component):
    """Turns engine events into ITCH 5.0 messages, byte for byte as ``tickwire.feed.FeedEncoder``.

    An accepted event's message starts on the next cycle and goes out at one byte per cycle;
    the next event is accepted with the last byte. ``price × tick`` (A, U) comes from a
    shift-and-add multiplier that finishes before the price bytes are due.

    Parameters
    ----------
    locates : int
        Entries of the stock locate table (locates ``0 … locates − 1``; higher locates alias).

    Members
    -------
    i_event : In(stream.Signature(EVENT_LAYOUT))
    o_msg : Out(stream.Signature(MESSAGE_LAYOUT))
    """

    i_event: In(stream.Signature(EVENT_LAYOUT))
    o_msg: Out(stream.Signature(MESSAGE_LAYOUT))

    def __init__(self, locates=64):
        self._locates = locates
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.stocks = stocks = Memory(shape=STOCK_LAYOUT, depth=self._locates, init=[])
        wr = stocks.write_port()
        rd = stocks.read_port()
        stock, tick = rd.data.name, rd.data.tick

        inp, out = self.i_event, self.o_msg
        pev = inp.payload
        ev = Signal(EVENT_LAYOUT)
        typ = Signal(ItchType)
        x_shares = Signal(32)
        index = Signal(range(MAX_MESSAGE))
        sending = Signal()      # a message or an empty marker is on o_msg

        # What the incoming event becomes.
        next_typ = Signal(ItchType)
        with m.Switch(pev.kind):
            for kind, code in ((EventKind.SYSTEM, ItchType.S), (EventKind.DIRECTORY, ItchType.R),
                               (EventKind.TRADING, ItchType.H), (EventKind.ADD, ItchType.A),
                               (EventKind.EXECUTE, ItchType.E), (EventKind.REDUCE, ItchType.X),
                               (EventKind.DELETE, ItchType.D)):
                with m.Case(kind):
                    m.d.comb += next_typ.eq(code)
            with m.Case(EventKind.REPLACE):
                with m.Switch(pev.mode):
                    with m.Case(ReplaceMode.KEPT):
                        m.d.comb += next_typ.eq(
                            Mux(pev.remaining == pev.qty, ItchType.NONE, ItchType.X))
                    with m.Case(ReplaceMode.MOVED):
                        m.d.comb += next_typ.eq(ItchType.U)
                    with m.Default():
                        m.d.comb += next_typ.eq(ItchType.D)

        # Message bytes of each type, from the ITCH tables.
        header = {"stock_locate": ev.symbol, "timestamp": ev.timestamp}
        h_reason = Signal(32, init=_alpha("", 4).value)
        for (halted, reason), text in TRADING_REASONS.items():
            with m.If((ev.halted == halted) & (ev.reason == reason)):
                m.d.comb += h_reason.eq(_alpha(text, 4))
        price = Signal(32)      # ev.price × tick, ready 16 cycles after the event
        messages = {
            ItchType.S: message_bytes(b"S", {"stock_locate": 0, "timestamp": ev.timestamp,
                                             "event_code": ev.reason}),
            ItchType.R: message_bytes(b"R", {
                **header, "stock": ev.name, "market_category": "Q",
                "financial_status_indicator": "N", "round_lot_size": ev.qty,
                "round_lots_only": "N", "issue_classification": "C", "issue_sub_type": "Z",
                "authenticity": "P", "short_sale_threshold_indicator": "N", "ipo_flag": "N",
                "luld_reference_price_tier": "1", "etp_flag": "N", "etp_leverage_factor": 0,
                "inverse_indicator": "N"}),
            ItchType.H: message_bytes(b"H", {
                **header, "stock": stock, "reason": h_reason,
                "trading_state": Mux(ev.halted, ord("H"), ord("T"))}),
            ItchType.A: message_bytes(b"A", {
                **header, "order_reference_number": ev.order_id,
                "buy_sell_indicator": Mux(ev.side, ord("S"), ord("B")), "shares": ev.qty,
                "stock": stock, "price": price}),
            ItchType.E: message_bytes(b"E", {
                **header, "order_reference_number": ev.order_id, "executed_shares": ev.qty,
                "match_number": ev.match}),
            ItchType.X: message_bytes(b"X", {
                **header, "order_reference_number": ev.order_id, "canceled_shares": x_shares}),
            ItchType.D: message_bytes(b"D", {**header, "order_reference_number": ev.order_id}),
            ItchType.U: message_bytes(b"U", {
                **header, "original_order_reference_number": ev.order_id,
                "new_order_reference_number": ev.other_id, "shares": ev.qty, "price": price}),
        }

        length = Signal.like(out.payload.length)
        with m.Switch(typ):
            for code, msg in messages.items():
                with m.Case(code):
                    m.d.comb += length.eq(len(msg))
                    with m.Switch(index):
                        for i, byte in enumerate(msg):
                            with m.Case(i):
                                m.d.comb += out.payload.data.eq(byte)

        is_last = Signal()
        m.d.comb += [
            is_last.eq((typ == ItchType.NONE) | (index == length - 1)),
            out.valid.eq(sending),
            out.payload.last.eq(is_last),
            out.payload.flush.eq(ev.last),
            out.payload.empty.eq(typ == ItchType.NONE),
            out.payload.length.eq(length),
        ]

        with m.If(out.valid & out.ready):
            m.d.sync += index.eq(index + 1)
            with m.If(is_last):
                m.d.sync += sending.eq(0)

        # A new event is taken when nothing is being sent or with the last byte going out.
        m.d.comb += [
            inp.ready.eq(~sending | (out.ready & is_last)),
            rd.addr.eq(pev.symbol),
            rd.en.eq(inp.ready),
            wr.addr.eq(pev.symbol),
            wr.data.name.eq(pev.name),
            wr.data.tick.eq(pev.tick),
            wr.en.eq(inp.valid & inp.ready & (pev.kind == EventKind.DIRECTORY)),
        ]
        with m.If(inp.valid & inp.ready):
            m.d.sync += [
                ev.eq(pev),
                typ.eq(next_typ),
                index.eq(0),
                x_shares.eq(Mux(pev.kind == EventKind.REPLACE, pev.remaining - pev.qty, pev.qty)),
                # Events without a message go out only to carry the end of their command.
                sending.eq((next_typ != ItchType.NONE) | pev.last),
            ]

        # Shift-and-add price × tick, one tick bit per cycle from the cycle after acceptance.
        step = Signal(range(17), init=16)
        multiplicand = Signal(32)
        with m.If(inp.valid & inp.ready):
            m.d.sync += [step.eq(0), price.eq(0), multiplicand.eq(pev.price)]
        with m.Elif(step != 16):
            m.d.sync += [step.eq(step + 1), multiplicand.eq(multiplicand << 1)]
            with m.If(tick.bit_select(step, 1)):
                m.d.sync += price.eq(price + multiplicand)
        return m
