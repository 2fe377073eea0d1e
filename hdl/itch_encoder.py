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


class ItchType(enum.Enum, shape=4):
    """The ITCH messages the feed sends; ``NONE``: no message. ``X`` cancels an order's
    ``qty`` (REDUCE), ``XR`` its ``remaining − qty`` (REPLACE keeping priority)."""
    NONE = 0
    S = 1
    R = 2
    H = 3
    A = 4
    E = 5
    X = 6
    XR = 7
    D = 8
    U = 9


MAX_MESSAGE = max(itch.SPECS[t.name[:1].encode()].length
                  for t in ItchType if t is not ItchType.NONE)

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
    least significant byte (or a list of its byte values, first character first), CHAR fields a 1-character ``str`` or an 8-bit value. Fields with a
    default in the spec may be left out.
    """
    out = [Const(code, 8) for code in spec.type_code]
    for field in spec.fields:
        value = values.get(field.name, field.default)
        if value is None:
            raise ValueError(f"{spec.name}.{field.name} has no value")
        n = field.length
        if field.kind is Kind.ALPHA and isinstance(value, (list, tuple)):
            out += list(value)
        elif field.kind is Kind.ALPHA:
            packed = _alpha(value, n) if isinstance(value, str) else Value.cast(value)
            out += [packed[8 * i:8 * i + 8] for i in range(n)]
        elif field.kind is Kind.CHAR:
            out.append(Const(ord(value), 8) if isinstance(value, str) else Value.cast(value))
        elif isinstance(value, int):
            out += [Const(byte, 8) for byte in value.to_bytes(n, "big")]
        else:
            value = Value.cast(value)
            for i in reversed(range(n)):
                if 8 * i >= len(value):     # bytes above the value are constant zeros
                    out.append(Const(0, 8))
                else:
                    out.append(Cat(value[8 * i:8 * i + 8], Const(0, 8))[:8])
    assert len(out) == spec.length
    return out


def message_bytes(type_code, values):
    """Byte expressions of the ITCH message ``type_code`` (see :func:`spec_bytes`)."""
    return spec_bytes(itch.SPECS[type_code], values)


class ItchEncoder(wiring.Component):
    """Turns engine events into ITCH 5.0 messages, byte for byte as ``tickwire.feed.FeedEncoder``.

    The message is made straight from the input stream's payload, which the producer holds
    still while ``valid`` and not ``ready`` (the stream contract): the first byte is on
    ``o_msg`` in the cycle the event is valid, then one byte per cycle while ``o_msg`` is
    ready, and the event is taken (``ready``) with the message's last byte. An event without
    a message is taken at once, or with its ``empty`` flush beat if it ends its command.

    The stock locate table (name and tick size per locate, written by DIRECTORY events while
    their R message goes out) is one byte wide in block RAM: 16 bytes per locate, read a byte
    per cycle as the message needs it. ``price × tick`` (A, U) is a most-significant-bit-first
    shift-and-add, one tick bit per byte sent (bytes 1 to 16), done before the price bytes.

    Parameters
    ----------
    locates : int
        Entries of the stock locate table, rounded up to a power of two (higher locates
        alias).

    Members
    -------
    i_event : In(stream.Signature(EVENT_LAYOUT))
    o_msg : Out(stream.Signature(MESSAGE_LAYOUT))
    """

    i_event: In(stream.Signature(EVENT_LAYOUT))
    o_msg: Out(stream.Signature(MESSAGE_LAYOUT))

    def __init__(self, locates=64):
        self._locate_bits = max(1, (locates - 1).bit_length())
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        inp, out = self.i_event, self.o_msg
        ev = inp.payload
        index = Signal(range(MAX_MESSAGE))
        at = Signal(MAX_MESSAGE, init=1)       # one-hot index
        advance = Signal()
        m.d.comb += advance.eq(out.valid & out.ready)

        # The stock locate table: per locate, the tick size's high and low bytes at 0 and 1,
        # the name's bytes (first character first) at 8 to 15, so that an A message's stock
        # bytes (24 to 31) are read at their own index modulo 16.
        m.submodules.stocks = stocks = Memory(shape=8, depth=16 << self._locate_bits, init=[])
        wr = stocks.write_port()
        rd = stocks.read_port()
        locate = ev.symbol[:self._locate_bits]

        typ = Signal(ItchType)
        kept_typ = Signal(ItchType)
        x_shares = Signal(32)
        m.d.comb += x_shares.eq(ev.remaining - ev.qty)
        with m.Switch(ev.kind):
            for kind, code in ((EventKind.SYSTEM, ItchType.S), (EventKind.DIRECTORY, ItchType.R),
                               (EventKind.TRADING, ItchType.H), (EventKind.ADD, ItchType.A),
                               (EventKind.EXECUTE, ItchType.E), (EventKind.REDUCE, ItchType.X),
                               (EventKind.DELETE, ItchType.D)):
                with m.Case(kind):
                    m.d.comb += typ.eq(code)
            with m.Case(EventKind.REPLACE):
                with m.Switch(ev.mode):
                    with m.Case(ReplaceMode.KEPT):
                        m.d.comb += typ.eq(Mux(x_shares == 0, ItchType.NONE, ItchType.XR))
                    with m.Case(ReplaceMode.MOVED):
                        m.d.comb += typ.eq(ItchType.U)
                    with m.Default():
                        m.d.comb += typ.eq(ItchType.D)

        # Message bytes of each type, from the ITCH tables. The stock name of H and A is the
        # table byte read for the current index, whichever it is.
        stock = [rd.data] * 8
        header = {"stock_locate": ev.symbol, "timestamp": ev.timestamp}
        h_reason = Signal(32, init=_alpha("", 4).value)
        for (halted, reason), text in TRADING_REASONS.items():
            with m.If((ev.halted == halted) & (ev.reason == reason)):
                m.d.comb += h_reason.eq(_alpha(text, 4))
        price = Signal(32)      # ev.price × tick, complete once byte 16 has gone out
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
                **header, "order_reference_number": ev.order_id, "canceled_shares": ev.qty}),
            ItchType.XR: message_bytes(b"X", {
                **header, "order_reference_number": ev.order_id, "canceled_shares": x_shares}),
            ItchType.D: message_bytes(b"D", {**header, "order_reference_number": ev.order_id}),
            ItchType.U: message_bytes(b"U", {
                **header, "original_order_reference_number": ev.order_id,
                "new_order_reference_number": ev.other_id, "shares": ev.qty, "price": price}),
        }
        length = Signal.like(out.payload.length)
        kept_length = Signal.like(out.payload.length)
        for t, l in ((typ, length), (kept_typ, kept_length)):
            with m.Switch(t):
                for code, msg in messages.items():
                    with m.Case(code):
                        m.d.comb += l.eq(len(msg))
        # From byte 1 on, the bytes are selected by the event's type kept in a register, so
        # that the type's logic (which includes a 32-bit comparison) is not merged into the
        # byte selection; byte 0, the type code, comes from the event itself.
        with m.If(index == 0):
            m.d.sync += kept_typ.eq(typ)
        body = Signal(8)
        _byte_select(m, body, at, kept_typ, {code: [Const(0, 8)] + msg[1:]
                                                for code, msg in messages.items()})
        type_code = Signal(8)
        with m.Switch(typ):
            for code, msg in messages.items():
                with m.Case(code):
                    m.d.comb += type_code.eq(msg[0])
        m.d.comb += out.payload.data.eq(Mux(index == 0, type_code, body))

        is_last = Signal()
        m.d.comb += [
            is_last.eq((typ == ItchType.NONE) | ((index != 0) & (index == kept_length - 1))),
            # Events without a message go out only to carry the end of their command.
            out.valid.eq(inp.valid & ((typ != ItchType.NONE) | ev.last)),
            out.payload.last.eq(is_last),
            out.payload.flush.eq(ev.last),
            out.payload.empty.eq(typ == ItchType.NONE),
            out.payload.length.eq(length),
            inp.ready.eq(Mux(out.valid, out.ready & is_last, 1)),
        ]
        with m.If(advance):
            m.d.sync += index.eq(Mux(is_last, 0, index + 1))
            m.d.sync += at.eq(Mux(is_last, 1, at << 1))

        # Table reads: the byte for the next index, read as the current one goes out.
        slot = Signal(4)
        with m.If((kept_typ == ItchType.H) & (index >= 8)):
            m.d.comb += slot.eq(index - 2)                  # stock bytes 11 to 18
        with m.Elif(index < 16):
            m.d.comb += slot.eq(Cat(index[3], Const(0, 3)))  # tick bytes for bytes 1 to 16
        with m.Else():
            m.d.comb += slot.eq(index + 1)                  # A: stock bytes 24 to 31
        m.d.comb += [rd.addr.eq(Cat(slot, locate)), rd.en.eq(advance)]

        # Table writes, while the R message is valid: tick bytes at indexes 3 and 4, name bytes
        # as they go out (11 to 18).
        in_name = (index >= 11) & (index <= 18)
        m.d.comb += [
            wr.addr.eq(Cat((index - 3)[:4], locate)),
            wr.data.eq(Mux(in_name, out.payload.data, Mux(index[0], ev.tick[8:], ev.tick[:8]))),
            wr.en.eq(out.valid & (kept_typ == ItchType.R) & (in_name | (index == 3) | (index == 4))),
        ]

        # price × tick: with byte k (1 to 16) going out, the table byte holds tick bit 16 − k.
        tick_bit = rd.data.bit_select((0 - index)[:3], 1)
        with m.If(advance & (index == 0)):
            m.d.sync += price.eq(0)
        with m.Elif(advance & (index <= 16)):
            m.d.sync += price.eq(Mux(tick_bit, (price << 1) + ev.price, price << 1))
        return m


def _byte_select(m, data, index, typ, messages):
    """``data`` = byte ``index`` of the message of type ``typ``, as an OR of the distinct bytes
    (by expression), each gated by the positions and types that send it."""
    sources = {}
    for code, msg in messages.items():
        for i, byte in enumerate(msg):
            sources.setdefault(repr(byte), (byte, {}))[1].setdefault(i, []).append(code)
    at = index
    terms = []
    for key, (byte, where) in sources.items():
        sel = 0
        for i, codes in where.items():
            if len(codes) == len(messages):
                sel = sel | at[i]
            else:
                cond = 0
                for c in codes:
                    cond = cond | (typ == c)
                sel = sel | (at[i] & cond)
        terms.append(Mux(sel, byte, 0))
    acc = 0
    for t in terms:
        acc = acc | t
    m.d.comb += data.eq(acc)
