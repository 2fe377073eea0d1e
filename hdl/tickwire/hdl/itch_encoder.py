"""Engine event records → ITCH 5.0 messages, one byte per cycle (gateware of ``feed.FeedEncoder``)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.hdl._ast import Concat, Slice
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from tickwire.protocol import itch
from tickwire.protocol.feed import TRADING_REASONS
from tickwire.protocol.fields import Kind
from tickwire.protocol.link import EVENT_BYTES, EVENT_LAYOUT, EventKind, ReplaceMode

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

def spec_bytes(spec, values):
    """Byte expressions of one message of a table-driven ``MessageSpec``, type byte included.

    ``values`` maps field names to Amaranth values or Python constants: integer fields are
    numbers (sent big-endian), ALPHA fields a ``str``, a value packed first character in the
    least significant byte or a list of its byte values (first character first), CHAR fields
    a 1-character ``str`` or an 8-bit value. Fields with a default in the spec may be left
    out. Constant bytes are ``Const`` (a number's bytes above its width too), so that a byte
    program can tell them from the variable ones.
    """
    out = [Const(code, 8) for code in spec.type_code]
    for field in spec.fields:
        value = values.get(field.name, field.default)
        if value is None:
            raise ValueError(f"{spec.name}.{field.name} has no value")
        n = field.length
        if field.kind is Kind.ALPHA and isinstance(value, (list, tuple)):
            out += list(value)
        elif field.kind is Kind.ALPHA and isinstance(value, str):
            out += [Const(byte, 8) for byte in value.encode("ascii").ljust(n, b" ")]
        elif field.kind is Kind.ALPHA:
            packed = Value.cast(value)
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
    still while ``valid`` and not ``ready`` (the stream contract). In the first cycle an event
    is valid its message type goes into a register; the first byte is on ``o_msg`` the cycle
    after, then one byte per cycle while ``o_msg`` is ready, and the event is taken
    (``ready``) with the message's last byte. An event without a message is taken in its
    second cycle, or with its ``empty`` flush beat if it ends its command.

    Bytes 1 on come from a byte program in block RAM (one 512 × 8 block): per message type
    and index, a constant byte or which of the 43 distinct variable bytes (event fields, the
    stock table byte, the price) to send; it is read a cycle ahead, for the next index, as a
    byte goes out. H messages have one program per trading state and reason text.

    The stock locate table (name and tick size per locate, written by DIRECTORY events while
    their R message goes out) is one byte wide in block RAM: 16 bytes per locate, read a byte
    per cycle as the message needs it. ``price × tick`` (A, U) is a most-significant-bit-first
    shift-and-add, one tick bit per byte sent (bytes 1 to 16), done before the price bytes.

    With ``event_bytes`` (the boards, whose link transmitter already sends every event byte
    by byte) the event's bytes also come in on ``i_event_byte``, in wire order (``EVENT_BYTES``
    bytes, least significant first), and go into a second block RAM as overlapping pairs
    (entry ``k``: bytes ``k − 1`` and ``k``); the byte program then names, instead of one of
    43 variable bytes of a wide multiplexer, the pair and its bit offset (0 or 2: the fields
    after ``mode`` start 2 bits into a byte), and only the computed bytes (stock table byte,
    price, ``remaining − qty``, side letter) keep a small multiplexer. The message starts once
    all the event's bytes are in, one cycle later than from the parallel input (the program
    is read two bytes ahead, the pair one ahead).

    Parameters
    ----------
    locates : int
        Entries of the stock locate table, rounded up to a power of two (higher locates
        alias); 32 fill one block RAM.
    event_bytes : bool
        Take the event's bytes from ``i_event_byte`` (see above).

    Members
    -------
    i_event : In(stream.Signature(EVENT_LAYOUT))
    i_event_byte : In(stream.Signature(8, always_ready=True)), if ``event_bytes``
    o_msg : Out(stream.Signature(MESSAGE_LAYOUT))
    """

    def __init__(self, locates=64, event_bytes=False):
        self._locate_bits = max(1, (locates - 1).bit_length())
        self._event_bytes = event_bytes
        ports = {"i_event": In(stream.Signature(EVENT_LAYOUT))}
        if event_bytes:
            ports["i_event_byte"] = In(stream.Signature(8, always_ready=True))
        ports["o_msg"] = Out(stream.Signature(MESSAGE_LAYOUT))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        inp, out = self.i_event, self.o_msg
        ev = inp.payload
        index = Signal(range(MAX_MESSAGE))
        advance = Signal()
        m.d.comb += advance.eq(out.valid & out.ready)

        # The stock locate table: per locate, the tick size's high and low bytes at 0 and 1,
        # the name's bytes (first character first) at 8 to 15, so that an A message's stock
        # bytes (24 to 31) are read at their own index modulo 16.
        m.submodules.stocks = stocks = Memory(shape=8, depth=16 << self._locate_bits, init=[])
        wr = stocks.write_port()
        # Transparent: Yosys maps a non-transparent port on iCE40 with registers and a
        # bypass for a read of the address being written. Only an R message writes, and its
        # reads are unused, so which value such a read gives does not matter.
        rd = stocks.read_port(transparent_for=(wr,))
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
        price = Signal(32)      # ev.price × tick, complete once byte 16 has gone out
        # H: one message per trading state and reason text (each its own byte program).
        trading = {(halted, text): message_bytes(b"H", {
            **header, "stock": stock, "reason": text, "trading_state": "H" if halted else "T"})
            for halted, text in _TRADING_PROGRAMS}
        messages = {
            ItchType.S: message_bytes(b"S", {"stock_locate": 0, "timestamp": ev.timestamp,
                                             "event_code": ev.code}),
            ItchType.R: message_bytes(b"R", {
                **header, "stock": ev.name, "market_category": "Q",
                "financial_status_indicator": "N", "round_lot_size": ev.qty,
                "round_lots_only": "N", "issue_classification": "C", "issue_sub_type": "Z",
                "authenticity": "P", "short_sale_threshold_indicator": "N", "ipo_flag": "N",
                "luld_reference_price_tier": "1", "etp_flag": "N", "etp_leverage_factor": 0,
                "inverse_indicator": "N"}),
            ItchType.H: trading[0, ""],
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
        # The event's type goes into a register in the cycle the event is first valid, and
        # the message follows from the next cycle: the type's logic (with its 32-bit
        # subtraction and comparison) stays out of the valid/ready paths and of the byte
        # selection.
        decoded = Signal()
        arrived = Const(1)          # all the event's bytes are in (always, from the parallel input)
        if self._event_bytes:
            # Bytes counted per event; the link sends each event's bytes once, before the
            # fork offers the next event.
            count = Signal(range(EVENT_BYTES + 1))
            arrived = count == EVENT_BYTES
            with m.If(self.i_event_byte.valid):
                m.d.sync += count.eq(count + 1)
            with m.If(inp.valid & inp.ready):
                m.d.sync += count.eq(0)
        with m.If(inp.valid & ~decoded & arrived):
            m.d.sync += [kept_typ.eq(typ), decoded.eq(1)]
        with m.If(inp.valid & inp.ready):
            m.d.sync += decoded.eq(0)
        length = Signal.like(out.payload.length)
        last_index = Signal.like(index)
        type_code = Signal(8)
        with m.Switch(kept_typ):
            for code, msg in messages.items():
                with m.Case(code):
                    m.d.comb += [length.eq(len(msg)), last_index.eq(len(msg) - 1),
                                 type_code.eq(msg[0])]

        # Bytes 1 on: a program in block RAM gives, per type and index, either the constant
        # byte or a variable byte to send (see ``_byte_program``); it is read ahead of the
        # index going out.
        programs = {_PLACES[code]: msg for code, msg in messages.items() if code is not ItchType.H}
        programs.update({place: trading[key] for key, place in _TRADING_PROGRAMS.items()})
        raw = inp.payload.as_value() if self._event_bytes else None
        contents, groups = _byte_program(programs, raw)
        m.submodules.program = program = Memory(shape=8, depth=len(contents), init=contents)
        step = program.read_port()
        step_index = Signal(6)
        step_slot, step_high = Signal(3), Signal(2)
        with m.Switch(kept_typ):
            for code, (slot, high) in _PLACES.items():
                with m.Case(code):
                    m.d.comb += [step_slot.eq(slot), step_high.eq(high)]
            with m.Case(ItchType.H):
                cases = [(ev.halted == halted, _TRADING_PROGRAMS[halted, ""]) for halted in (0, 1)]
                cases += [((ev.halted == halted) & (ev.reason == reason),
                           _TRADING_PROGRAMS[halted, text])
                          for (halted, reason), text in TRADING_REASONS.items()]
                for condition, (slot, high) in cases:
                    with m.If(condition):
                        m.d.comb += [step_slot.eq(slot), step_high.eq(high)]
        m.d.comb += step.addr.eq(Cat(step_index[:4], step_index[4:6] | step_high, step_slot))

        def select(groups, group, lane):
            # Group by group, lane by lane: ANDs and ORs of a few bits, no wide decoder.
            selected = 0
            for number, sources in enumerate(groups):
                in_group = 0
                for position, source in enumerate(sources):
                    in_group = in_group | Mux(lane == position, source, 0)
                selected = selected | Mux(group == number, in_group, 0)
            return selected

        primed = Const(1)
        if not self._event_bytes:
            # The entry for the next index, read as the current byte goes out.
            m.d.comb += [step_index.eq(index + 1), step.en.eq(advance)]
            entry = step.data
            variable = select(groups, step.data[3:6], step.data[:3])
        else:
            # Two steps: the program two bytes ahead, and with the entry it gave (one byte
            # ahead) the pair of event bytes from the buffer, kept with the entry. Once per
            # event, in the cycle after it is decoded, the program is read for byte 1.
            m.submodules.pairs = pairs = Memory(shape=16, depth=64, init=[])
            pair_wr = pairs.write_port()
            # Transparent for the same reason as the locate table's port: the pairs are all
            # written before the first read.
            pair_rd = pairs.read_port(transparent_for=(pair_wr,))
            previous = Signal(8)
            with m.If(self.i_event_byte.valid):
                m.d.sync += previous.eq(self.i_event_byte.payload)
            m.d.comb += [pair_wr.addr.eq(count),
                         pair_wr.data.eq(Cat(previous, self.i_event_byte.payload)),
                         pair_wr.en.eq(self.i_event_byte.valid)]
            primed = Signal()
            with m.If(decoded & ~primed):
                m.d.sync += primed.eq(1)
            with m.If(inp.valid & inp.ready):
                m.d.sync += primed.eq(0)
            prime = decoded & ~primed
            entry = Signal(8)
            with m.If(advance):
                m.d.sync += entry.eq(step.data)
            m.d.comb += [step_index.eq(Mux(prime, 1, index + 2)), step.en.eq(advance | prime),
                         pair_rd.addr.eq(step.data[:6]), pair_rd.en.eq(advance)]
            pair = Mux(entry[6], pair_rd.data[2:10], pair_rd.data[:8])
            # Computed bytes: entries 0x80 | 52 + n.
            computed = select([groups], 0, entry[:6] - _PAIRS)  # groups: the computed bytes
            variable = Mux(entry[:6] >= _PAIRS, computed, pair)
        m.d.comb += out.payload.data.eq(Mux(index == 0, type_code,
                                            Mux(entry[7], variable, entry[:7])))

        is_last = Signal()
        sends = Signal()
        m.d.comb += [
            is_last.eq((kept_typ == ItchType.NONE) | (index == last_index)),
            # Events without a message go out only to carry the end of their command.
            sends.eq((kept_typ != ItchType.NONE) | ev.last),
            out.valid.eq(inp.valid & decoded & primed & sends),
            out.payload.last.eq(is_last),
            out.payload.flush.eq(ev.last),
            out.payload.empty.eq(kept_typ == ItchType.NONE),
            out.payload.length.eq(length),
            inp.ready.eq(decoded & primed & Mux(sends, out.ready & is_last, 1)),
        ]
        with m.If(advance):
            m.d.sync += index.eq(Mux(is_last, 0, index + 1))

        # Table reads: the byte for the next index, read as the current one goes out.
        slot = Signal(4)
        with m.If((kept_typ == ItchType.H) & (index >= 8)):
            m.d.comb += slot.eq(index - 2)                  # stock bytes 11 to 18
        with m.Elif(index < 16):
            m.d.comb += slot.eq(Cat(index[3], Const(0, 3)))  # tick bytes for bytes 1 to 16
        with m.Else():
            m.d.comb += slot.eq(index + 1)                  # A: stock bytes 24 to 31
        m.d.comb += [rd.addr.eq(Cat(slot, locate)), rd.en.eq(advance)]

        # Table writes, while the R message is valid: tick bytes at indexes 3 and 4 (their bit
        # b stored at bit −b mod 8, so that the multiplier selects it by the index as it is),
        # name bytes as they go out (11 to 18).
        def tick_byte(byte):
            return Cat(byte[0], byte[1:][::-1])

        in_name = (index >= 11) & (index <= 18)
        m.d.comb += [
            wr.addr.eq(Cat((index - 3)[:4], locate)),
            wr.data.eq(Mux(in_name, out.payload.data,
                           Mux(index[0], tick_byte(ev.tick[8:]), tick_byte(ev.tick[:8])))),
            wr.en.eq(out.valid & (kept_typ == ItchType.R) &
                     (in_name | (index == 3) | (index == 4))),
        ]

        # price × tick: with byte k (1 to 16) going out, the table byte holds tick bit 16 − k
        # (high byte for k ≤ 8), stored at bit k mod 8.
        tick_bit = rd.data.bit_select(index[:3], 1)
        with m.If(advance & (index == 0)):
            m.d.sync += price.eq(0)
        with m.Elif(advance & (index <= 16)):
            m.d.sync += price.eq(Mux(tick_bit, (price << 1) + ev.price, price << 1))
        return m


#: Where each type's byte program is in the block RAM: ``(slot, high)``, the entry of index
#: ``i`` being ``slot << 6 | i | high << 4``. The RAM has 8 slots of 64 entries; S shares D's
#: slot at entries 48 + i (D has 19 bytes), the H programs (by trading state and reason text)
#: use H's slot and the upper halves (32 + i) of the types shorter than 32 bytes.
_PLACES = {ItchType.R: (0, 0), ItchType.A: (2, 0), ItchType.E: (3, 0), ItchType.X: (4, 0),
           ItchType.XR: (5, 0), ItchType.D: (6, 0), ItchType.S: (6, 3), ItchType.U: (7, 0)}
_TRADING_PROGRAMS = dict(zip(
    sorted({(0, ""), (1, "")} | {(halted, text) for (halted, _), text in TRADING_REASONS.items()}),
    [(1, 0), (1, 2), (3, 2), (4, 2), (5, 2)], strict=True))


#: Event byte pairs in the buffer of the ``event_bytes`` variant: entries 1 to ``EVENT_BYTES``
#: (its program entries ``0x80 | shift << 6 | entry``); entries from ``_PAIRS`` on name the
#: computed bytes.
_PAIRS = 52


def _event_bits(value):
    """Per bit of ``value``: ``(signal, bit)`` where it is a bit of a signal, else ``None``."""
    value = Value.cast(value)
    if isinstance(value, Signal):
        return [(value, bit) for bit in range(len(value))]
    if isinstance(value, Slice):
        return _event_bits(value.value)[value.start:value.stop]
    if isinstance(value, Concat):
        return [bit for part in value.parts for bit in _event_bits(part)]
    return [None] * len(value)


def _pair_entry(byte, raw):
    """The buffer entry and shift of ``byte`` if it is 8 consecutive bits of ``raw``, else None."""
    bits = _event_bits(byte)
    if raw is None or bits[0] is None or bits[0][0] is not raw:
        return None
    offset = bits[0][1]
    if bits != [(raw, offset + i) for i in range(8)] or offset % 8 not in (0, 2):
        return None
    return offset // 8 + 1, offset % 8 // 2


def _byte_program(programs, raw=None):
    """The byte program of ``programs`` (place → message bytes) and its variable bytes.

    Returns ``(contents, groups)``: ``contents[address]`` is a constant byte (below 0x80) or
    a variable byte. From the parallel input (``raw`` None) that is ``0x80 | group << 3 |
    lane`` for the variable byte ``groups[group][lane]``. With ``raw``, the event's bit
    vector in the ``event_bytes`` variant, a byte that is 8 bits of it is
    ``0x80 | shift << 6 | entry`` (bits ``2 × shift`` on of buffer entry ``entry``) and any
    other is ``0x80 | _PAIRS + n`` for ``groups[n]``. A variable byte (by expression) used at
    several places is listed once. Byte 0 (the type code) is not in the program.
    """
    contents = [None] * (8 << 6)
    lanes = {}
    variables = []
    for (slot, high), msg in programs.items():
        for index, byte in enumerate(msg[1:], 1):
            address = slot << 6 | index | high << 4
            assert contents[address] is None, "two programs overlap"
            if isinstance(byte, Const):
                assert byte.value < 0x80
                contents[address] = byte.value
                continue
            pair = _pair_entry(byte, raw)
            if pair is not None:
                entry, shift = pair
                contents[address] = 0x80 | shift << 6 | entry
                continue
            key = repr(byte)
            if key not in lanes:
                lanes[key] = len(variables)
                variables.append(byte)
            contents[address] = 0x80 | lanes[key] if raw is None else 0x80 | _PAIRS + lanes[key]
    if raw is not None:
        assert _PAIRS + len(variables) <= 64, "more computed bytes than the program can name"
        return [value or 0 for value in contents], variables
    assert len(variables) <= 64, "more variable bytes than the program can select"
    groups = [variables[i:i + 8] for i in range(0, len(variables), 8)]
    return [value or 0 for value in contents], groups
