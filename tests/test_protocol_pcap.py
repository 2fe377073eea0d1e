import io
import struct
import zlib

import pytest
import tshark
from hypothesis import given, settings
from hypothesis import strategies as st
from tickwire.protocol import pcap
from tickwire.protocol.pcap import (
    PcapWriter,
    TcpConversationWriter,
    ethernet_fcs,
    ethernet_udp_frame,
    internet_checksum,
    multicast_mac,
    read_pcap,
    udp_payloads,
)

TS = 1_700_000_000_123_456_000


def test_internet_checksum_rfc1071():
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6")) == internet_checksum(
        bytes.fromhex("0001f203f4f5f600"))


def _word_sum_checksum(data):
    """RFC 1071 as written there: add the 16-bit words, fold the carries, complement."""
    data = bytes(data) + b"\x00" * (len(data) % 2)
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=1500))
def test_internet_checksum_is_rfc1071s_word_sum(data):
    assert internet_checksum(data) == _word_sum_checksum(data)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\xff\xff", b"\xff\xff" * 3, b"\x80\x00" * 2,
                                  b"\x00\x01\xff\xfe", b"\xff"])
def test_internet_checksum_edges(data):
    """All zeros, sums that are multiples of 0xFFFF, an odd byte."""
    assert internet_checksum(data) == _word_sum_checksum(data)


def test_ipv4_header_known_answer():
    frame = ethernet_udp_frame(bytes(0x73 - 28), "192.168.0.1", "192.168.0.199", 1, 2,
                               src_mac="00:11:22:33:44:55", dst_mac="66:77:88:99:aa:bb")
    assert frame[:14] == bytes.fromhex("66778899aabb" "001122334455" "0800")
    assert frame[14:34] == bytes.fromhex("45000073000040004011b861c0a80001c0a800c7")


def test_udp_frame_layout_and_checksum():
    payload = b"hello, mold"
    frame = ethernet_udp_frame(payload, "10.1.2.3", "233.54.12.1", 40000, 26400, ttl=1)
    assert frame[:14] == bytes.fromhex("01005e360c01" "020000000001" "0800")
    assert frame[22] == 1 and internet_checksum(frame[14:34]) == 0
    src_port, dst_port, length, checksum = struct.unpack(">HHHH", frame[34:42])
    assert (src_port, dst_port, length) == (40000, 26400, 8 + len(payload))
    assert checksum != 0 and frame[42:] == payload.ljust(60 - 42, b"\x00")
    pseudo = frame[26:34] + bytes([0, 17]) + length.to_bytes(2, "big")
    assert internet_checksum(pseudo + frame[34:34 + length]) == 0


def test_zero_udp_checksum_sent_as_ffff():
    base = ethernet_udp_frame(b"\x00\x00", "10.0.0.1", "10.0.0.2", 1, 2)
    fill = struct.unpack(">H", base[40:42])[0]
    frame = ethernet_udp_frame(fill.to_bytes(2, "big"), "10.0.0.1", "10.0.0.2", 1, 2)
    assert frame[40:42] == b"\xff\xff"


def test_multicast_mac():
    assert multicast_mac("239.255.255.250") == bytes.fromhex("01005e7ffffa")
    assert multicast_mac("224.128.0.1") == bytes.fromhex("01005e000001")
    with pytest.raises(ValueError, match="not a multicast"):
        multicast_mac("10.0.0.1")
    unicast = ethernet_udp_frame(b"x", "10.0.0.1", "10.0.0.2", 1, 2)
    assert unicast[:6] == pcap.mac_bytes(pcap.DEFAULT_DST_MAC)


def test_padding():
    assert len(ethernet_udp_frame(b"", "10.0.0.1", "10.0.0.2", 1, 2)) == 60
    assert len(ethernet_udp_frame(b"", "10.0.0.1", "10.0.0.2", 1, 2, pad=False)) == 42
    assert len(ethernet_udp_frame(bytes(100), "10.0.0.1", "10.0.0.2", 1, 2)) == 142


def test_fcs():
    assert ethernet_fcs(b"123456789") == bytes.fromhex("2639f4cb")
    frame = ethernet_udp_frame(b"payload", "10.0.0.1", "239.1.1.1", 1, 2)
    assert zlib.crc32(frame + ethernet_fcs(frame)) == 0x2144DF1C


def test_pcap_round_trip(tmp_path):
    buf = io.BytesIO()
    writer = PcapWriter(buf)
    frames = [ethernet_udp_frame(bytes([i]) * i, "10.0.0.1", "239.1.1.1", 5, 6 + i % 2)
              for i in range(5)]
    for i, frame in enumerate(frames):
        writer.write(frame, TS + i * 1_000_999)
    data = buf.getvalue()
    assert data[:24] == bytes.fromhex("d4c3b2a1" "0200" "0400" "00000000" "00000000"
                                      "ffff0000" "01000000")
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    assert read_pcap(path) == [((TS + i * 1_000_999) // 1000 * 1000, f)
                              for i, f in enumerate(frames)]
    assert udp_payloads(path) == [bytes([i]) * i for i in range(5)]
    assert udp_payloads(path, dst_port=7) == [bytes([i]) * i for i in (1, 3)]


def test_read_big_endian_nanosecond(tmp_path):
    frame = ethernet_udp_frame(b"abc", "10.0.0.1", "10.0.0.2", 1, 2)
    data = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    data += struct.pack(">IIII", 3, 999_999_999, len(frame), len(frame)) + frame
    path = tmp_path / "be.pcap"
    path.write_bytes(data)
    assert read_pcap(path) == [(3_999_999_999, frame)]
    path.write_bytes(data[:-1])
    with pytest.raises(ValueError, match="truncated frame"):
        read_pcap(path)
    path.write_bytes(b"\x00" * 24)
    with pytest.raises(ValueError, match="not a classic pcap"):
        read_pcap(path)


@tshark.requires_tshark
def test_tshark_udp_checksums(tmp_path):
    path = tmp_path / "udp.pcap"
    base = ethernet_udp_frame(b"\x00\x00", "10.0.0.1", "10.0.0.2", 1, 2)
    with open(path, "wb") as f:
        writer = PcapWriter(f)
        for payload in [b"", b"odd", bytes(range(256)) * 5, base[40:42]]:
            writer.write(ethernet_udp_frame(payload, "10.0.0.1", "233.54.12.1", 40000, 9), TS)
            writer.write(ethernet_udp_frame(payload, "10.9.8.7", "10.0.0.2", 40000, 9), TS)
    rows = tshark.fields(path, [], ["ip.checksum.status", "udp.checksum.status", "eth.dst",
                                    "udp.length"])
    assert len(rows) == 8
    assert all(r["ip.checksum.status"] == ["1"] and r["udp.checksum.status"] == ["1"]
               for r in rows)
    assert rows[0]["eth.dst"] == ["01:00:5e:36:0c:01"]
    assert tshark.problems(tshark.pdml(path, [])) == []


@tshark.requires_tshark
def test_tshark_tcp_conversation(tmp_path):
    path = tmp_path / "tcp.pcap"
    with open(path, "wb") as f:
        conn = TcpConversationWriter(PcapWriter(f), ("10.0.0.2", 50000), ("10.0.0.1", 15000),
                                     client_isn=0xFFFF_FFF0, mss=100)
        conn.open(TS)
        conn.client_send(b"a" * 250, TS + 10_000)
        conn.server_send(b"b" * 7, TS + 20_000)
        conn.client_send(b"c", TS + 30_000)
        conn.close(TS + 40_000)
    rows = tshark.fields(path, [], ["tcp.flags.str", "tcp.seq", "tcp.ack", "tcp.len",
                                    "tcp.checksum.status", "ip.checksum.status",
                                    "tcp.analysis.flags", "tcp.seq_raw"])
    summary = [(r["tcp.seq"][0], r["tcp.ack"][0], r["tcp.len"][0]) for r in rows]
    assert summary == [("0", "0", "0"), ("0", "1", "0"), ("1", "1", "0"),
                       ("1", "1", "100"), ("101", "1", "100"), ("201", "1", "50"),
                       ("1", "251", "7"), ("251", "8", "1"),
                       ("252", "8", "0"), ("8", "253", "0"), ("253", "9", "0")]
    assert all(r["tcp.checksum.status"] == ["1"] and r["ip.checksum.status"] == ["1"]
               and r["tcp.analysis.flags"] == [] for r in rows)
    assert rows[0]["tcp.seq_raw"] == [str(0xFFFF_FFF0)]
    assert rows[4]["tcp.seq_raw"] == [str((0xFFFF_FFF0 + 101) & 0xFFFF_FFFF)]
    assert tshark.problems(tshark.pdml(path, [])) == []
