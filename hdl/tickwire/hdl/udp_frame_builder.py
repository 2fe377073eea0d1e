"""Payloads → Ethernet II / IPv4 / UDP multicast frames with FCS (gateware of ``pcap.ethernet_udp_frame``)."""

import ipaddress

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.crc.catalog import CRC32_ETHERNET
from amaranth.lib.wiring import In, Out
from tickwire.hdl.mold_packetizer import MOLD_LAYOUT, PACKET_LAYOUT
from tickwire.protocol import pcap

__all__ = ["FRAME_LAYOUT", "UdpFrameBuilder"]

#: A frame byte; ``last`` marks the frame's last FCS byte.
FRAME_LAYOUT = MOLD_LAYOUT

_ETH, _IP, _UDP = pcap._ETH.size, pcap._IPV4.size, pcap._UDP.size
_HEADERS = _ETH + _IP + _UDP
# Offsets of the fields that depend on the payload (RFC 791, RFC 768).
_IP_LENGTH, _IP_CHECKSUM = _ETH + 2, _ETH + 10
_UDP_LENGTH, _UDP_CHECKSUM = _ETH + _IP + 4, _ETH + _IP + 6
_MIN_FRAME = pcap._MIN_FRAME


class _State(enum.Enum, shape=3):
    IDLE = 0
    HEADER = 1
    PAYLOAD = 2
    PAD = 3
    FCS = 4


def _words(raw):
    return sum(int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2))


def _fold(value):
    """Ones' complement fold of a sum of at most 24 bits to 16 bits."""
    once = value[:16] + value[16:24]
    return (once[:16] + once[16])[:16]


class UdpFrameBuilder(wiring.Component):
    """Wraps each payload in Ethernet II, IPv4 and UDP headers, pads and appends the FCS.

    The frame is byte for byte ``pcap.ethernet_udp_frame(payload, src_ip, dst_group, src_port,
    dst_port, src_mac, ttl=ttl)`` (identification 0, DF set, real UDP checksum with 0 sent as
    0xFFFF, zero padding to 60 bytes) followed by ``pcap.ethernet_fcs`` of it. A frame starts
    when a payload's first byte is valid (its ``length`` and ``sum`` give the lengths and the
    checksums) and then leaves at one byte per cycle while ``o_frame`` is ready: the headers,
    padding and FCS never wait, and the payload does not either as long as its source does not
    pause inside a packet (``MoldPacketizer`` does not).

    Parameters
    ----------
    src_mac : str or bytes
    src_ip, dst_group : str
        Source address and IPv4 multicast group (its MAC is 01:00:5e and the low 23 bits).
    src_port, dst_port, ttl : int

    Members
    -------
    i_payload : In(stream.Signature(PACKET_LAYOUT))
    o_frame : Out(stream.Signature(FRAME_LAYOUT))
    """

    i_payload: In(stream.Signature(PACKET_LAYOUT))
    o_frame: Out(stream.Signature(FRAME_LAYOUT))

    def __init__(self, src_mac=pcap.DEFAULT_SRC_MAC, src_ip="10.0.0.1", dst_group="233.54.12.111",
                 src_port=26400, dst_port=26400, ttl=64):
        self._template = pcap.ethernet_udp_frame(b"", src_ip, dst_group, src_port, dst_port,
                                                 src_mac=src_mac, ttl=ttl, pad=False)
        assert len(self._template) == _HEADERS
        ip_header = bytearray(self._template[_ETH:_ETH + _IP])
        ip_header[2:4] = ip_header[10:12] = b"\0\0"
        self._ip_sum = _words(ip_header)
        pseudo = (ipaddress.IPv4Address(src_ip).packed + ipaddress.IPv4Address(dst_group).packed)
        self._udp_sum = _words(pseudo) + pcap.PROTO_UDP + src_port + dst_port
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = CRC32_ETHERNET(data_width=8).create()
        inp, out = self.i_payload, self.o_frame

        state = Signal(_State)
        pos = Signal(16)
        length = Signal(16)
        payload_sum = Signal(16)
        ip_checksum = Signal(16)
        udp_checksum = Signal(16)
        fcs_index = Signal(2)

        ip_length = length + _IP + _UDP
        udp_length = length + _UDP
        m.d.sync += ip_checksum.eq(~_fold(self._ip_sum + ip_length))
        udp = Signal(16)
        m.d.comb += udp.eq(~_fold(self._udp_sum + 2 * udp_length + payload_sum))
        m.d.sync += udp_checksum.eq(Mux(udp == 0, 0xFFFF, udp))

        header = list(self._template)
        variable = {
            _IP_LENGTH: ip_length[8:16], _IP_LENGTH + 1: ip_length[:8],
            _IP_CHECKSUM: ip_checksum[8:16], _IP_CHECKSUM + 1: ip_checksum[:8],
            _UDP_LENGTH: udp_length[8:16], _UDP_LENGTH + 1: udp_length[:8],
            _UDP_CHECKSUM: udp_checksum[8:16], _UDP_CHECKSUM + 1: udp_checksum[:8],
        }
        header_byte = Signal(8)
        with m.Switch(pos):
            for i, byte in enumerate(header):
                with m.Case(i):
                    m.d.comb += header_byte.eq(variable.get(i, byte))

        handshake = out.valid & out.ready
        with m.If(handshake):
            m.d.sync += pos.eq(pos + 1)
        m.d.comb += [
            crc.start.eq(state == _State.IDLE),
            crc.data.eq(out.payload.data),
            crc.valid.eq(handshake & (state != _State.FCS)),
        ]
        with m.Switch(state):
            with m.Case(_State.IDLE):
                with m.If(inp.valid):
                    m.d.sync += [state.eq(_State.HEADER), pos.eq(0),
                                 length.eq(inp.payload.length), payload_sum.eq(inp.payload.sum)]
            with m.Case(_State.HEADER):
                m.d.comb += [out.valid.eq(1), out.payload.data.eq(header_byte)]
                with m.If(handshake & (pos == _HEADERS - 1)):
                    m.d.sync += state.eq(_State.PAYLOAD)
            with m.Case(_State.PAYLOAD):
                m.d.comb += [out.valid.eq(inp.valid), out.payload.data.eq(inp.payload.data),
                             inp.ready.eq(out.ready)]
                with m.If(handshake & inp.payload.last):
                    with m.If(pos < _MIN_FRAME - 1):
                        m.d.sync += state.eq(_State.PAD)
                    with m.Else():
                        m.d.sync += [state.eq(_State.FCS), fcs_index.eq(0)]
            with m.Case(_State.PAD):
                m.d.comb += [out.valid.eq(1), out.payload.data.eq(0)]
                with m.If(handshake & (pos == _MIN_FRAME - 1)):
                    m.d.sync += [state.eq(_State.FCS), fcs_index.eq(0)]
            with m.Case(_State.FCS):
                m.d.comb += [out.valid.eq(1),
                             out.payload.data.eq(crc.crc.word_select(fcs_index, 8)),
                             out.payload.last.eq(fcs_index == 3)]
                with m.If(handshake):
                    m.d.sync += fcs_index.eq(fcs_index + 1)
                    with m.If(fcs_index == 3):
                        m.d.sync += state.eq(_State.IDLE)
        return m
