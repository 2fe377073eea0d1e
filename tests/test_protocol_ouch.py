import re

import pytest
import tshark
from hypothesis import given
from hypothesis import strategies as st
from test_protocol_itch import message_strategy, sample_values
from tickwire.gateways.ouch import wire as ouch
from tickwire.protocol import soupbintcp as soup
from tickwire.protocol.fields import Kind
from tickwire.protocol.pcap import PcapWriter, TcpConversationWriter

# protocols.md §4.1
INBOUND_LENGTHS = {b"O": 49, b"U": 47, b"X": 19, b"M": 20, b"N": 15}
OUTBOUND_LENGTHS = {b"S": 10, b"A": 66, b"U": 80, b"C": 28, b"D": 37, b"E": 40, b"B": 32,
                    b"G": 45, b"F": 41, b"J": 24, b"P": 23, b"I": 23, b"T": 36, b"M": 28,
                    b"N": 23, b"K": 36}
TABLES = {"in": ouch.INBOUND, "out": ouch.OUTBOUND}
ALL_TYPES = [(d, code) for d, table in TABLES.items() for code in table]


def test_lengths():
    assert {c: s.length for c, s in ouch.INBOUND.items()} == INBOUND_LENGTHS
    assert {c: s.length for c, s in ouch.OUTBOUND.items()} == OUTBOUND_LENGTHS


def test_offsets():
    assert ouch.INBOUND[b"O"].offsets["customer_type"] == 48
    assert ouch.INBOUND[b"U"].offsets["minimum_quantity"] == 43
    accepted = ouch.OUTBOUND[b"A"].offsets
    assert (accepted["timestamp"], accepted["order_token"], accepted["order_reference_number"],
            accepted["bbo_weight_indicator"]) == (1, 9, 49, 65)
    replaced = ouch.OUTBOUND[b"U"].offsets
    assert (replaced["previous_order_token"], replaced["bbo_weight_indicator"]) == (65, 79)
    assert ouch.OUTBOUND[b"G"].offsets["reference_price_type"] == 44


def test_known_bytes_enter_order():
    raw = ouch.encode_inbound(
        b"O", order_token="ORD1", buy_sell_indicator=ouch.Side.BUY, shares=100, stock="AAPL",
        price=1502500, time_in_force=ouch.TimeInForce.IMMEDIATE_OR_CANCEL, firm="TKWR",
        display="Y", capacity=ouch.Capacity.AGENCY, intermarket_sweep_eligibility="N",
        minimum_quantity=0, cross_type=ouch.CrossType.NO_CROSS, customer_type="R")
    assert raw == (b"O" b"ORD1          " b"B" + bytes.fromhex("00000064") + b"AAPL    "
                   + bytes.fromhex("0016ed24" "00000000") + b"TKWR" b"YAN"
                   + bytes.fromhex("00000000") + b"NR")
    rec = ouch.decode_inbound(raw)
    assert (rec.order_token, rec.shares, rec.price, rec.time_in_force) == ("ORD1", 100,
                                                                            1502500, 0)
    assert ouch.encode_inbound(b"O", **{**rec._asdict(), "customer_type": " "})[-1:] == b" "


def test_known_bytes_outbound():
    raw = ouch.encode_outbound(b"E", timestamp=0x0102030405060708, order_token="ORD1",
                               executed_shares=40, execution_price=1502400,
                               liquidity_flag=ouch.LiquidityFlag.ADDED, match_number=77)
    assert raw == (b"E" + bytes.fromhex("0102030405060708") + b"ORD1          "
                   + bytes.fromhex("00000028" "0016ecc0") + b"A"
                   + bytes.fromhex("000000000000004d"))
    assert ouch.encode_outbound(b"C", timestamp=1, order_token="T", decrement_shares=5,
                                cancel_reason=ouch.CancelReason.USER_REQUESTED)[23:] == \
        bytes.fromhex("00000005") + b"U"
    assert ouch.encode_outbound(b"S", timestamp=0, event_code=ouch.EventCode.START_OF_DAY) == \
        b"S" + bytes(8) + b"S"


def test_answer_token_is_where_each_answer_carries_its_token():
    """The load generator and ``tickwire run``'s firms read the token of an answer by
    :data:`ouch.ANSWER_TOKEN` without decoding it: the same place in each answer they time."""
    for code, field in [(b"A", "order_token"), (b"U", "replacement_order_token"),
                        (b"C", "order_token"), (b"J", "order_token"), (b"I", "order_token")]:
        spec = ouch.OUTBOUND[code]
        raw = spec.encode(**{**sample_values(spec), field: "TOKEN-" + code.decode()})
        assert raw[ouch.ANSWER_TOKEN] == ("TOKEN-" + code.decode()).ljust(14).encode()


def test_directions_differ():
    replace = ouch.encode_inbound(b"U", **sample_values(ouch.INBOUND[b"U"]))
    replaced = ouch.encode_outbound(b"U", **sample_values(ouch.OUTBOUND[b"U"]))
    assert type(ouch.decode_inbound(replace)).__name__ == "ReplaceOrder"
    assert type(ouch.decode_outbound(replaced)).__name__ == "Replaced"
    with pytest.raises(ValueError, match="ReplaceOrder: expected 47 bytes, got 80"):
        ouch.decode_inbound(replaced)
    with pytest.raises(ValueError, match="unknown message type b'E'"):
        ouch.decode_inbound(b"E" + bytes(39))
    with pytest.raises(ValueError, match="expected 66 bytes, got 65"):
        ouch.decode_outbound(b"A" + bytes(64))
    assert ouch.TimeInForce.MARKET_HOURS == 99998 and ouch.TimeInForce.SYSTEM_HOURS == 99999


@pytest.mark.parametrize("direction,code", ALL_TYPES)
@given(data=st.data())
def test_round_trip(direction, code, data):
    table = TABLES[direction]
    values = data.draw(message_strategy(table[code]))
    raw = table.encode(code, **values)
    assert len(raw) == table[code].length
    assert table.decode(raw)._asdict() == values
    assert table.decode(raw).to_bytes() == raw


TSHARK_NAMES = {"time_in_force": "tif", "minimum_quantity": "min_quantity",
                "intermarket_sweep_eligibility": "iso_eligible"}
NOT_DECODED = {b"N"}
PORT = 15000
TIMESTAMP = 34_200_123_456_789


def _session_values(spec, seed):
    values = sample_values(spec, seed)
    for field in spec.fields:
        if field.kind is Kind.ALPHA:
            values[field.name] = f"{field.name[:3].upper()}{seed}"
    if "timestamp" in values:
        values["timestamp"] = TIMESTAMP + seed
    return values


def _tshark_show(field, value):
    if field.kind is Kind.ALPHA:
        return value.ljust(field.length)
    if field.kind is Kind.CHAR:
        return f"'{value}'"
    if field.name == "timestamp":
        hours, rest = divmod(value, 3_600_000_000_000)
        minutes, rest = divmod(rest, 60_000_000_000)
        return f"{hours}:{minutes:02}:{rest // 10**9:02}.{rest % 10**9:09}"
    return str(value)


@tshark.requires_tshark
def test_tshark_decodes_session(tmp_path):
    expected = []  # (frame, direction, code, values) for each OUCH message
    path = tmp_path / "oe.pcap"
    with open(path, "wb") as f:
        conn = TcpConversationWriter(PcapWriter(f), ("10.0.0.2", 50000), ("10.0.0.1", PORT))
        ts = 1_700_000_000_000_000_000
        conn.open(ts)
        conn.client_send(soup.login_request("alice", "secret", "", 1), ts)
        conn.server_send(soup.login_accepted("SESS1", 1), ts)
        frame = 5
        for seed, (direction, code) in enumerate(ALL_TYPES):
            spec = TABLES[direction][code]
            values = _session_values(spec, seed)
            raw = spec.encode(**values)
            if direction == "in":
                conn.client_send(soup.unsequenced_data(raw), ts)
            elif code == b"A":
                packet = soup.sequenced_data(raw)
                conn.server_send(packet[:30], ts)
                conn.server_send(packet[30:], ts)
                frame += 1
            else:
                conn.server_send(soup.sequenced_data(raw), ts)
            frame += 1
            expected.append((frame, direction, code, values))
        conn.server_send(soup.server_heartbeat(), ts)
        conn.client_send(soup.client_heartbeat(), ts)
        conn.client_send(soup.logout_request(), ts)
        conn.close(ts)

    decode_as = [f"tcp.port=={PORT},soupbintcp"]
    packets = tshark.pdml(path, decode_as)
    assert tshark.problems(packets) == []
    assert all(severity < tshark.PI_WARN for _, severity, _ in tshark.expert(packets))
    assert len(packets) == frame + 6
    checked = 0
    for number, direction, code, values in expected:
        packet = packets[number - 1]
        (soup_layer,) = tshark.protocol_fields(packet, "soupbintcp")
        assert soup_layer["soupbintcp.packet_type"] == ["'U'" if direction == "in" else "'S'"]
        layers = tshark.protocol_fields(packet, "ouch")
        if code in NOT_DECODED:
            assert layers == [] and "soupbintcp.message" in soup_layer
            continue
        (layer,) = layers
        assert "ouch.unknown_message" not in layer
        assert layer["ouch.packet_type"] == [f"'{code.decode()}'"]
        for field in TABLES[direction][code].fields:
            name = "ouch." + TSHARK_NAMES.get(field.name, field.name)
            if field.name == "reference_price_type":  # tshark 4.0 types it as a U32
                assert layer[name] == [str(ord(values[field.name]))]
            else:
                assert layer[name] == [_tshark_show(field, values[field.name])], name
            checked += 1
    assert checked == sum(len(TABLES[d][c].fields) for d, c in ALL_TYPES if c not in NOT_DECODED)

    calculated = [int(re.search(r"(\d+)", f.get("showname")).group(1))
                  for p in packets for f in p.iter("field")
                  if f.get("name") == "soupbintcp.seq_num"]
    assert calculated == list(range(1, len(OUTBOUND_LENGTHS) + 1))
    info = [row["_ws.col.Info"][0] for row in tshark.fields(path, decode_as, ["_ws.col.Info"])]
    assert info[3:5] == ["Login Request", "Login Accepted"]
    assert info[-6:-3] == ["Server Heartbeat", "Client Heartbeat", "Logout Request"]


def test_framed_stream_decodes():
    stream, expected = b"", []
    for seed, code in enumerate(ouch.OUTBOUND):
        values = _session_values(ouch.OUTBOUND[code], seed)
        stream += soup.sequenced_data(ouch.encode_outbound(code, **values))
        expected.append(values)
    framer, decoded = soup.Framer(), []
    for start in range(0, len(stream), 7):
        decoded += [ouch.decode_outbound(payload)._asdict()
                    for ptype, payload in framer.feed(stream[start:start + 7])
                    if ptype == b"S"]
    assert decoded == expected


@pytest.mark.parametrize("value,error", [
    ("XY", "expected one character, got 'XY'"), ("", "expected one character, got ''"),
    ("é", "'é' is not ASCII"), (5, "expected str or bytes, got 5"),
    (None, "expected str or bytes, got None"), (["x"], r"expected str or bytes, got \['x'\]"),
])
def test_a_char_field_refuses_what_is_not_one_ascii_character(value, error):
    with pytest.raises(ValueError, match=f"SystemEvent.event_code: {error}"):
        ouch.encode_outbound(b"S", timestamp=1, event_code=value)
    assert ouch.encode_outbound(b"S", timestamp=1, event_code=b"S") == \
        ouch.encode_outbound(b"S", timestamp=1, event_code="S") == b"S" + bytes(7) + b"\x01S"
