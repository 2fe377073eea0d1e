import os

import pytest
import tshark
from test_protocol_itch import LENGTHS, sample_values
from tickwire.protocol import itch, moldudp64
from tickwire.protocol.moldudp64 import Packetizer, decode_packet, encode_packet
from tickwire.protocol.pcap import PcapWriter, ethernet_udp_frame, udp_payloads

os.environ.setdefault("ITCH_NO_CPP", "1")
from itch.parser import MessageParser  # noqa: E402

PORT, REQUEST_PORT = 26400, 26401
DECODE_AS = [f"udp.port=={PORT},moldudp64", f"udp.port=={REQUEST_PORT},moldudp64"]


def test_known_bytes():
    assert moldudp64.HEADER.offsets == {"session": 0, "sequence": 10, "count": 18}
    assert encode_packet("SESS1", 0x0102030405060708, [b"ab", b"c"]) == bytes.fromhex(
        "53455353312020202020" "0102030405060708" "0002" "0002" "6162" "0001" "63")
    assert moldudp64.encode_heartbeat("S", 5) == b"S         " + bytes.fromhex("0000000000000005"
                                                                               "0000")
    assert moldudp64.encode_end_of_session("S", 5)[-2:] == b"\xff\xff"
    assert moldudp64.encode_request("S", 9, 3)[10:] == bytes.fromhex("0000000000000009" "0003")


def test_decode():
    packet = decode_packet(encode_packet("SESS1", 42, [b"ab", b"", b"c"]))
    assert packet == ("SESS1", 42, 3, (b"ab", b"", b"c"))
    assert not packet.is_heartbeat and not packet.is_end_of_session
    assert decode_packet(moldudp64.encode_heartbeat("X", 7)).is_heartbeat
    eos = decode_packet(moldudp64.encode_end_of_session("X", 7))
    assert eos.is_end_of_session and eos.sequence == 7 and eos.messages == ()
    assert moldudp64.decode_request(moldudp64.encode_request("X", 7, 2)) == ("X", 7, 2)


def test_malformed():
    good = encode_packet("SESS1", 1, [b"abc", b"de"])
    with pytest.raises(ValueError, match="shorter than the 20-byte header"):
        decode_packet(good[:19])
    with pytest.raises(ValueError, match=r"claimed 3, found 2"):
        decode_packet(good[:18] + b"\x00\x03" + good[20:])
    with pytest.raises(ValueError, match=r"invalid message count \(claimed 1"):
        decode_packet(good[:18] + b"\x00\x01" + good[20:])
    with pytest.raises(ValueError, match="runs 1 bytes past the end"):
        decode_packet(good[:-1])
    with pytest.raises(ValueError, match="truncated block length"):
        decode_packet(good[:18] + b"\x00\x03" + good[20:] + b"\x00")
    with pytest.raises(ValueError, match="claimed 0"):
        decode_packet(moldudp64.encode_heartbeat("S", 1) + b"\x00\x00")
    with pytest.raises(ValueError, match="claimed 65535"):
        decode_packet(moldudp64.encode_end_of_session("S", 1) + b"\x00\x01x")
    with pytest.raises(ValueError, match="expected 20"):
        moldudp64.decode_request(good)
    with pytest.raises(ValueError, match="count 0"):
        moldudp64.decode_request(moldudp64.encode_heartbeat("S", 1))
    with pytest.raises(ValueError, match="longer than 10"):
        encode_packet("ELEVENCHARS", 1, [b"x"])
    with pytest.raises(ValueError, match="at most 65534"):
        encode_packet("S", 1, [b""] * 0xFFFF)


def test_packetizer_exact_fill_and_overflow():
    p = Packetizer("SESS1", max_payload=20 + 2 * (2 + 10), first_sequence=5)
    assert p.next_sequence == 5
    assert p.add(b"a" * 10) == []
    (full,) = p.add(b"b" * 10)
    assert len(full) == 44 and decode_packet(full) == ("SESS1", 5, 2, (b"a" * 10, b"b" * 10))
    assert p.next_sequence == 7 and p.flush() == []
    assert p.add(b"c" * 10) == []
    (closed,) = p.add(b"d" * 11)
    assert decode_packet(closed) == ("SESS1", 7, 1, (b"c" * 10,))
    assert p.next_sequence == 9
    (last,) = p.flush()
    assert decode_packet(last) == ("SESS1", 8, 1, (b"d" * 11,))


def test_packetizer_overflow_and_fill_at_once():
    p = Packetizer("S", max_payload=20 + 12 + 12)
    p.add(b"x" * 11)
    closed, filled = p.add(b"y" * 22)
    assert decode_packet(closed).messages == (b"x" * 11,)
    assert decode_packet(filled) == ("S", 2, 1, (b"y" * 22,)) and len(filled) == 44


def test_packetizer_limits():
    p = Packetizer("S", max_payload=1400)
    assert p.add(b"m" * 1378) != []
    with pytest.raises(ValueError, match="1379 bytes does not fit"):
        p.add(b"m" * 1379)
    with pytest.raises(ValueError):
        Packetizer("S", max_payload=21)
    p = Packetizer("S", max_payload=1 << 20)
    out = [pkt for _ in range(0xFFFE) for pkt in p.add(b"")]
    assert len(out) == 1 and decode_packet(out[0]).count == 0xFFFE


def test_packetizer_heartbeat_and_end_of_session():
    p = Packetizer("SESS1", first_sequence=1)
    assert decode_packet(p.heartbeat()) == ("SESS1", 1, 0, ())
    p.add(b"abc")
    p.add(b"de")
    assert decode_packet(p.heartbeat()).sequence == 1
    assert p.next_sequence == 3
    with pytest.raises(ValueError, match="flush"):
        p.end_of_session()
    p.flush()
    assert decode_packet(p.heartbeat()) == ("SESS1", 3, 0, ())
    eos = decode_packet(p.end_of_session())
    assert eos.is_end_of_session and eos.sequence == 3


def _itch_day():
    raws = [itch.encode(code, **sample_values(itch.SPECS[code], seed=11)) for code in LENGTHS]
    return [itch.encode(b"S", stock_locate=0, timestamp=1, event_code="O"), *raws,
            itch.encode(b"S", stock_locate=0, timestamp=2, event_code="C")]


def _write(path, payloads):
    with open(path, "wb") as f:
        writer = PcapWriter(f)
        for i, (payload, port) in enumerate(payloads):
            frame = ethernet_udp_frame(payload, "10.0.0.1", "233.54.12.1", 40000, port)
            writer.write(frame, 1_700_000_000_000_000_000 + i * 1000)


@tshark.requires_tshark
def test_tshark_decodes_packets(tmp_path):
    messages = _itch_day()
    p = Packetizer("TICKWIRE", max_payload=200)
    packets = [pkt for m in messages for pkt in p.add(m)] + p.flush()
    assert len(packets) > 3
    downstream = [*packets, p.heartbeat(), p.end_of_session()]
    request = moldudp64.encode_request("TICKWIRE", 3, 4)
    path = tmp_path / "feed.pcap"
    _write(path, [(pkt, PORT) for pkt in downstream] + [(request, REQUEST_PORT)])

    frames = tshark.pdml(path, DECODE_AS)
    assert tshark.problems(frames) == []
    infos = tshark.fields(path, DECODE_AS, ["_ws.col.Info", "udp.checksum.status",
                                            "ip.checksum.status"])
    assert [row["_ws.col.Info"][0] for row in infos] == (
        ["MoldUDP64 Messages"] * len(packets)
        + ["MoldUDP64 Heartbeat", "MoldUDP64 End Of Session", "MoldUDP64 Request"])
    assert all(row["udp.checksum.status"] == ["1"] and row["ip.checksum.status"] == ["1"]
               for row in infos)

    rows = tshark.fields(path, DECODE_AS, ["moldudp64.session", "moldudp64.sequence",
                                           "moldudp64.count", "moldudp64.msgseq",
                                           "moldudp64.msglen", "moldudp64.msgdata"])
    seen = []
    for row, raw in zip(rows, [*downstream, request]):
        ours = decode_packet(raw) if raw is not request else None
        header = moldudp64.HEADER.decode(raw[:20])
        assert row["moldudp64.session"] == ["TICKWIRE  "]
        assert row["moldudp64.sequence"] == [str(header.sequence)]
        assert row["moldudp64.count"] == [str(header.count)]
        if ours and ours.messages:
            assert row["moldudp64.msgseq"] == [str(ours.sequence + i)
                                               for i in range(ours.count)]
            assert row["moldudp64.msglen"] == [str(len(m)) for m in ours.messages]
            seen += [bytes.fromhex(h) for h in row["moldudp64.msgdata"]]
    assert seen == messages
    assert [r["moldudp64.sequence"] for r in rows[-3:]] == [[str(len(messages) + 1)]] * 2 + [["3"]]


@tshark.requires_tshark
def test_tshark_flags_bad_count(tmp_path):
    good = encode_packet("S", 1, [b"abc"])
    path = tmp_path / "bad.pcap"
    _write(path, [(good[:18] + b"\x00\x02" + good[20:], PORT)])
    assert tshark.problems(tshark.pdml(path, DECODE_AS)) == [
        "frame 1: Invalid Message Count (claimed 2, found 1)", "frame 1: Malformed Packet"]


def test_payloads_parsed_by_itchfeed(tmp_path):
    messages = _itch_day()
    p = Packetizer("TICKWIRE", max_payload=300)
    packets = [pkt for m in messages for pkt in p.add(m)] + p.flush()
    path = tmp_path / "feed.pcap"
    _write(path, [(pkt, PORT) for pkt in packets])
    payloads = udp_payloads(path, dst_port=PORT)
    assert payloads == packets
    parsed = [m.to_bytes() for pay in payloads for m in MessageParser().parse_stream(pay[20:])]
    assert parsed == messages
    decoded = [m for pay in payloads for m in decode_packet(pay).messages]
    assert decoded == messages
