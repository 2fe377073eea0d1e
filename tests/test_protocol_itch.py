import os
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tickwire.protocol import itch
from tickwire.protocol.fields import U48, A, Kind, MessageSpec

os.environ.setdefault("ITCH_NO_CPP", "1")
from itch import messages as feed_messages  # noqa: E402
from itch import parser as feed_parser

# protocols.md §1.2
LENGTHS = {b"S": 12, b"R": 39, b"H": 25, b"Y": 20, b"L": 26, b"V": 35, b"W": 12, b"K": 28,
           b"J": 35, b"h": 21, b"A": 36, b"F": 40, b"E": 31, b"C": 36, b"X": 23, b"D": 19,
           b"U": 35, b"P": 44, b"Q": 40, b"B": 19, b"I": 50, b"N": 20, b"O": 48}


# Strategies and samples shared with the OUCH tests.
_ALPHA = string.ascii_uppercase + string.digits + " .-"


def field_strategy(field):
    if field.kind is Kind.ALPHA:
        return st.text(_ALPHA, max_size=field.length).map(lambda s: s.rstrip(" "))
    if field.kind is Kind.CHAR:
        return st.sampled_from(string.ascii_letters + string.digits + " ")
    return st.integers(0, (1 << (8 * field.length)) - 1)


def message_strategy(spec):
    return st.fixed_dictionaries({f.name: field_strategy(f) for f in spec.fields})


def sample_values(spec, seed=0):
    """Distinct, recognisable values for every field: wrong offsets show up."""
    values = {}
    for i, field in enumerate(spec.fields, seed + 1):
        if field.kind is Kind.ALPHA:
            values[field.name] = ("Z" + chr(ord("A") + i % 26) * field.length)[:field.length - 1]
        elif field.kind is Kind.CHAR:
            values[field.name] = chr(ord("a") + i % 26)
        else:
            values[field.name] = int.from_bytes(bytes(range(i, i + field.length)), "big")
    return values


def test_all_23_types_and_lengths():
    assert {code: spec.length for code, spec in itch.SPECS.items()} == LENGTHS
    assert list(itch.SPECS) == list(LENGTHS)
    assert set(itch.SPECS) == set(feed_messages.messages)


def test_offsets_from_spec():
    assert itch.HEADER_LENGTH == 11
    for spec in itch.SPECS.values():
        assert list(spec.offsets.values())[:3] == [1, 3, 5]
    assert itch.SPECS[b"A"].offsets == {
        "stock_locate": 1, "tracking_number": 3, "timestamp": 5, "order_reference_number": 11,
        "buy_sell_indicator": 19, "shares": 20, "stock": 24, "price": 32}
    assert itch.SPECS[b"I"].offsets["price_variation_indicator"] == 49
    assert itch.SPECS[b"O"].offsets["near_execution_time"] == 32
    assert itch.SPECS[b"R"].offsets["inverse_indicator"] == 38
    assert itch.SPECS[b"Q"].offsets["cross_type"] == 39


def test_known_bytes_add_order():
    raw = itch.encode(b"A", stock_locate=0x0102, tracking_number=0x0304,
                      timestamp=0x0A0B0C0D0E0F, order_reference_number=0x1122334455667788,
                      buy_sell_indicator="S", shares=100, stock="AAPL", price=1502500)
    assert raw == bytes.fromhex(
        "41" "0102" "0304" "0a0b0c0d0e0f" "1122334455667788" "53" "00000064"
        "4141504c20202020" "0016ed24")
    rec = itch.decode(raw)
    assert rec == (0x0102, 0x0304, 0x0A0B0C0D0E0F, 0x1122334455667788, "S", 100, "AAPL", 1502500)
    assert rec.type_code == b"A" and type(rec).__name__ == "AddOrder"
    assert rec.to_bytes() == raw


def test_known_bytes_system_event_replace_and_mwcb():
    assert itch.encode(b"S", stock_locate=0, timestamp=1, event_code=itch.SystemEvent.
                       START_OF_MESSAGES) == bytes.fromhex("53" "0000" "0000" "000000000001" "4f")
    assert itch.encode(b"U", stock_locate=7, timestamp=0, original_order_reference_number=1,
                       new_order_reference_number=2, shares=300, price=200_000_0000) == \
        bytes.fromhex("55" "0007" "0000" "000000000000" "0000000000000001" "0000000000000002"
                      "0000012c" "77359400")
    raw = bytes.fromhex("56" "0000" "0000" "000000000002" "0000000000000001"
                        "0000000000000100" "ffffffffffffffff")
    assert itch.decode(raw) == (0, 0, 2, 1, 256, 2**64 - 1)


def test_known_bytes_trading_action_alpha_padding():
    raw = itch.encode(b"H", stock_locate=1, timestamp=0, stock="ZVZZT",
                      trading_state=itch.TradingState.TRADING, reason="T1")
    assert raw[11:] == b"ZVZZT   T T1  "
    rec = itch.decode(raw)
    assert (rec.stock, rec.trading_state, rec.reserved, rec.reason) == ("ZVZZT", "T", " ", "T1")


def _itchfeed_attributes(cls):
    """Positional raw attribute names of an itchfeed class, header first."""
    import inspect
    import re
    names = re.findall(r"self\.(\w+),", inspect.getsource(cls.__init__))
    return ["stock_locate", "tracking_number", "timestamp",
            *[n for n in names[2:] if n != "message_format"]]


# itchfeed's attribute names that differ from the spec's (protocols.md §5.4).
ITCHFEED_NAMES = {
    "luld_reference_price_tier": "luld_ref", "level_1": "level1_price",
    "level_2": "level2_price", "level_3": "level3_price",
    "ipo_quotation_release_time": "ipo_release_time",
    "ipo_quotation_release_qualifier": "ipo_release_qualifier",
    "auction_collar_extension": "auction_collar_extention", "canceled_shares": "cancelled_shares",
    "original_order_reference_number": "order_reference_number",
    "price_variation_indicator": "variation_indicator",
}


@pytest.mark.parametrize("code", list(LENGTHS))
def test_field_names_match_itchfeed(code):
    ours = [ITCHFEED_NAMES.get(f.name, f.name) for f in itch.SPECS[code].fields]
    assert ours == _itchfeed_attributes(feed_messages.messages[code])


def _wire(field, value):
    if field.kind is Kind.ALPHA:
        return value.encode().ljust(field.length)
    if field.kind is Kind.CHAR:
        return value.encode()
    return value


@pytest.mark.parametrize("code", list(LENGTHS))
def test_itchfeed_decodes_ours(code):
    spec = itch.SPECS[code]
    values = sample_values(spec)
    raw = itch.encode(code, **values)
    theirs = feed_messages.messages[code](raw)
    names = _itchfeed_attributes(type(theirs))
    assert len(names) == len(spec.fields)
    for field, name in zip(spec.fields, names):
        assert getattr(theirs, name) == _wire(field, values[field.name]), field.name
    assert theirs.to_bytes() == raw


@pytest.mark.parametrize("code", list(LENGTHS))
def test_ours_decodes_itchfeed(code):
    spec = itch.SPECS[code]
    values = sample_values(spec, seed=7)
    cls = feed_messages.messages[code]
    kwargs = {name: _wire(field, values[field.name])
              for field, name in zip(spec.fields, _itchfeed_attributes(cls))}
    raw = feed_messages.create_message(code, **kwargs).to_bytes()
    assert len(raw) == spec.length
    assert itch.decode(raw)._asdict() == values


@pytest.mark.parametrize("code", list(LENGTHS))
@given(data=st.data())
def test_round_trip(code, data):
    spec = itch.SPECS[code]
    values = data.draw(message_strategy(spec))
    raw = spec.encode(**values)
    assert len(raw) == spec.length and raw[:1] == code
    rec = itch.decode(raw)
    assert rec._asdict() == values
    assert rec.to_bytes() == raw


def test_malformed():
    raw = itch.encode(b"D", stock_locate=1, timestamp=2, order_reference_number=3)
    with pytest.raises(ValueError, match="expected 19 bytes, got 18"):
        itch.decode(raw[:-1])
    with pytest.raises(ValueError, match="expected 19 bytes, got 20"):
        itch.decode(raw + b"\x00")
    with pytest.raises(ValueError, match="unknown message type b'z'"):
        itch.decode(b"z" + raw[1:])
    with pytest.raises(ValueError, match="empty"):
        itch.decode(b"")
    with pytest.raises(ValueError, match="unknown message type"):
        itch.encode(b"z", stock_locate=1)


def test_encode_errors():
    base = dict(stock_locate=1, timestamp=2, order_reference_number=3, buy_sell_indicator="B",
                shares=4, stock="AAPL", price=5)
    with pytest.raises(ValueError, match="longer than 8 bytes"):
        itch.encode(b"A", **{**base, "stock": "TOOLONGSYM"})
    with pytest.raises(ValueError, match="one character"):
        itch.encode(b"A", **{**base, "buy_sell_indicator": "BS"})
    with pytest.raises(ValueError, match="48-bit"):
        itch.encode(b"A", **{**base, "timestamp": 1 << 48})
    with pytest.raises(ValueError, match="32-bit"):
        itch.encode(b"A", **{**base, "shares": -1})
    with pytest.raises(ValueError, match="missing field price"):
        itch.encode(b"A", **{k: v for k, v in base.items() if k != "price"})
    with pytest.raises(ValueError, match="unknown fields"):
        itch.encode(b"A", **base, attribution="X")
    with pytest.raises(ValueError, match="not ASCII"):
        itch.encode(b"A", **{**base, "stock": "ÄPPL"})


def test_u48_and_header_specs():
    spec = MessageSpec(b"", "Pair", [U48("a"), A("b", 3), U48("c")])
    raw = spec.encode(a=0xFFFFFFFFFFFF, b="x", c=0x010203040506)
    assert raw == bytes.fromhex("ffffffffffff" "782020" "010203040506")
    assert spec.decode(raw) == (0xFFFFFFFFFFFF, "x", 0x010203040506)
    assert spec.offsets == {"a": 0, "b": 6, "c": 9} and spec.length == 15


def test_itchfeed_parses_a_day():
    raws = [itch.encode(code, **sample_values(itch.SPECS[code], seed=3)) for code in LENGTHS]
    raws.append(itch.encode(b"S", stock_locate=0, timestamp=9, event_code="C"))
    stream = b"".join(len(r).to_bytes(2, "big") + r for r in raws)
    parsed = list(feed_parser.MessageParser().parse_stream(stream))
    assert [m.to_bytes() for m in parsed] == raws
