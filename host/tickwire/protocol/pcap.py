"""Ethernet/IPv4/UDP and TCP frames, and classic pcap files.

The frame bytes built here (Ethernet II, IPv4 with its header checksum and DF set, UDP or TCP
with a real checksum, zero padding to the 60-byte Ethernet minimum) are the contract the
gateware frame builder reproduces; :func:`ethernet_fcs` gives the 4 bytes it appends.
"""

import functools
import ipaddress
import struct
import zlib

__all__ = [
    "DEFAULT_SRC_MAC", "DEFAULT_DST_MAC", "LINKTYPE_ETHERNET",
    "mac_bytes", "multicast_mac", "internet_checksum", "ethernet_udp_frame",
    "ethernet_tcp_frame", "ethernet_fcs", "PcapWriter", "read_pcap", "parse_pcap", "udp_payloads",
    "TcpConversationWriter", "TCP_FIN", "TCP_SYN", "TCP_PSH", "TCP_ACK",
]

DEFAULT_SRC_MAC = "02:00:00:00:00:01"
DEFAULT_DST_MAC = "02:00:00:00:00:02"
LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
PROTO_TCP, PROTO_UDP = 6, 17
TCP_FIN, TCP_SYN, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x08, 0x10
_MIN_FRAME = 60

_ETH = struct.Struct(">6s6sH")
_IPV4 = struct.Struct(">BBHHHBBH4s4s")
_UDP = struct.Struct(">HHHH")
_PSEUDO_TAIL = struct.Struct(">BBH")
_TCP = struct.Struct(">HHIIBBHHH")
_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_PCAP_MAGIC_US, _PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D


def mac_bytes(mac):
    """``"02:00:00:00:00:01"`` (or 6 bytes) to 6 bytes."""
    if isinstance(mac, (bytes, bytearray)):
        raw = bytes(mac)
    else:
        raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"bad MAC address {mac!r}")
    return raw


@functools.lru_cache(maxsize=256)
def _address(ip):
    """``ipaddress.IPv4Address(ip)``, parsed once per address (a feed frames every packet
    between the same two; parsing both four times a frame cost ~50 µs per order)."""
    return ipaddress.IPv4Address(ip)


def multicast_mac(group):
    """Ethernet address of an IPv4 multicast group: 01:00:5e and the group's low 23 bits."""
    group = _address(group)
    if not group.is_multicast:
        raise ValueError(f"{group} is not a multicast address")
    return b"\x01\x00\x5e" + (int(group) & 0x7F_FFFF).to_bytes(3, "big")


def internet_checksum(data):
    """RFC 1071 ones' complement checksum of ``data``.

    The ones' complement sum of the 16-bit words is the data read as one big-endian integer
    modulo 0xFFFF (2**16 is 1 modulo 0xFFFF), written 0xFFFF rather than 0 unless every word is
    zero: one C-level conversion instead of a Python sum over the words.
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF or (0xFFFF if value else 0)
    return ~total & 0xFFFF


def _ipv4(src_ip, dst_ip, protocol, payload, ttl, ident):
    src, dst = _packed(src_ip), _packed(dst_ip)
    fields = [0x45, 0, _IPV4.size + len(payload), ident, 0x4000, ttl, protocol, 0, src, dst]
    fields[7] = internet_checksum(_IPV4.pack(*fields))
    return _IPV4.pack(*fields)


def _transport_checksum(src_ip, dst_ip, protocol, segment):
    pseudo = _packed(src_ip) + _packed(dst_ip) + _PSEUDO_TAIL.pack(0, protocol, len(segment))
    return internet_checksum(pseudo + segment)


def _frame(src_mac, dst_mac, ip_packet, pad):
    frame = _ethernet_header(_hashable(src_mac), _hashable(dst_mac)) + ip_packet
    return frame.ljust(_MIN_FRAME, b"\x00") if pad else frame


# A feed frames every packet between the same two endpoints: what depends only on them is
# computed once per endpoint (it was a third of a frame's cost, ~6 µs).
@functools.lru_cache(maxsize=256)
def _packed(ip):
    return _address(ip).packed


def _hashable(mac):
    return bytes(mac) if isinstance(mac, bytearray) else mac


@functools.lru_cache(maxsize=256)
def _ethernet_header(src_mac, dst_mac):
    return _ETH.pack(mac_bytes(dst_mac), mac_bytes(src_mac), ETHERTYPE_IPV4)


@functools.lru_cache(maxsize=256)
def _udp_dst_mac(dst_ip):
    return multicast_mac(dst_ip) if _address(dst_ip).is_multicast else DEFAULT_DST_MAC


def ethernet_udp_frame(payload, src_ip, dst_ip, src_port, dst_port, src_mac=DEFAULT_SRC_MAC,
                       dst_mac=None, ttl=64, ident=0, pad=True):
    """Build an Ethernet II + IPv4 + UDP frame (without FCS).

    Parameters
    ----------
    payload : bytes
    src_ip, dst_ip : str or ipaddress.IPv4Address
    src_port, dst_port : int
    src_mac, dst_mac : str or bytes
        ``dst_mac=None`` maps a multicast ``dst_ip`` to its group MAC and otherwise uses
        :data:`DEFAULT_DST_MAC`.
    ttl, ident : int
        IPv4 time to live and identification.
    pad : bool
        Pad with zeros to the 60-byte Ethernet minimum.
    """
    if dst_mac is None:
        dst_mac = _udp_dst_mac(dst_ip)
    length = _UDP.size + len(payload)
    payload = bytes(payload)
    checksum = _transport_checksum(src_ip, dst_ip, PROTO_UDP,
                                   _UDP.pack(src_port, dst_port, length, 0) + payload) or 0xFFFF
    segment = _UDP.pack(src_port, dst_port, length, checksum) + payload
    return _frame(src_mac, dst_mac, _ipv4(src_ip, dst_ip, PROTO_UDP, segment, ttl, ident) +
                  segment, pad)


def ethernet_tcp_frame(payload, src_ip, dst_ip, src_port, dst_port, seq, ack, flags,
                       src_mac=DEFAULT_SRC_MAC, dst_mac=DEFAULT_DST_MAC, ttl=64, ident=0,
                       window=65535, pad=True):
    """Build an Ethernet II + IPv4 + TCP frame (20-byte TCP header, no options, no FCS)."""
    header = [src_port, dst_port, seq & 0xFFFF_FFFF, ack & 0xFFFF_FFFF, 5 << 4, flags, window,
              0, 0]
    segment = _TCP.pack(*header) + bytes(payload)
    header[7] = _transport_checksum(src_ip, dst_ip, PROTO_TCP, segment)
    segment = _TCP.pack(*header) + bytes(payload)
    return _frame(src_mac, dst_mac, _ipv4(src_ip, dst_ip, PROTO_TCP, segment, ttl, ident) +
                  segment, pad)


def ethernet_fcs(frame):
    """Frame check sequence of ``frame``: its CRC-32, in the little-endian order it is sent."""
    return (zlib.crc32(frame) & 0xFFFF_FFFF).to_bytes(4, "little")


class PcapWriter:
    """Writes a classic pcap (Ethernet) to a binary file.

    Parameters
    ----------
    fileobj : binary file
    snaplen : int
    nanoseconds : bool
        Nanosecond timestamps (magic 0xa1b23c4d); microseconds (0xa1b2c3d4) by default.
    """

    def __init__(self, fileobj, snaplen=65535, *, nanoseconds=False):
        self._file = fileobj
        self._ns = nanoseconds
        magic = _PCAP_MAGIC_NS if nanoseconds else _PCAP_MAGIC_US
        self._file.write(_PCAP_HEADER.pack(magic, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, frame, ts_ns):
        """Append one frame captured at ``ts_ns`` (ns since the epoch; truncated to µs unless
        the file has nanosecond timestamps)."""
        seconds, fraction = (divmod(ts_ns, 1_000_000_000) if self._ns
                             else divmod(ts_ns // 1000, 1_000_000))
        self._file.write(_PCAP_RECORD.pack(seconds, fraction, len(frame), len(frame)))
        self._file.write(frame)


def read_pcap(path):
    """Read a classic pcap (either byte order, µs or ns) into a list of ``(ts_ns, frame)``."""
    with open(path, "rb") as f:
        return parse_pcap(f.read(), path)


def parse_pcap(data, path="pcap"):
    """:func:`read_pcap` of the file's bytes; ``path`` names it in errors."""
    if len(data) < _PCAP_HEADER.size:
        raise ValueError(f"{path}: too short for a pcap header")
    for order in "<>":
        (magic,) = struct.unpack_from(order + "I", data)
        if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
            break
    else:
        raise ValueError(f"{path}: not a classic pcap file (magic {data[:4].hex()})")
    scale = 1 if magic == _PCAP_MAGIC_NS else 1000
    record = struct.Struct(order + "IIII")
    frames, offset = [], _PCAP_HEADER.size
    while offset < len(data):
        if offset + record.size > len(data):
            raise ValueError(f"{path}: truncated record header at offset {offset}")
        seconds, fraction, caplen, _ = record.unpack_from(data, offset)
        offset += record.size
        if offset + caplen > len(data):
            raise ValueError(f"{path}: truncated frame at offset {offset}")
        frames.append((seconds * 1_000_000_000 + fraction * scale, data[offset:offset + caplen]))
        offset += caplen
    return frames


def udp_payloads(path, dst_port=None):
    """UDP payloads of the Ethernet/IPv4 frames of a pcap, optionally only to ``dst_port``."""
    payloads = []
    for _, frame in read_pcap(path):
        if len(frame) < 34 or _ETH.unpack_from(frame)[2] != ETHERTYPE_IPV4:
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != PROTO_UDP:
            continue
        udp = 14 + ihl
        _, port, length, _ = _UDP.unpack_from(frame, udp)
        if dst_port is None or port == dst_port:
            payloads.append(frame[udp + _UDP.size:udp + length])
    return payloads


class TcpConversationWriter:
    """Writes one synthetic TCP connection to a :class:`PcapWriter`.

    :meth:`open` writes the SYN, SYN-ACK, ACK handshake; :meth:`client_send` and
    :meth:`server_send` write PSH-ACK segments of at most ``mss`` bytes with contiguous
    sequence numbers, each acknowledging everything the peer has sent; :meth:`close` writes a
    FIN exchange.

    Parameters
    ----------
    writer : PcapWriter
    client, server : tuple of (str, int)
        IPv4 address and port of each end.
    client_mac, server_mac : str or bytes
    client_isn, server_isn : int
        Initial sequence numbers.
    mss : int
    """

    def __init__(self, writer, client, server, client_mac=DEFAULT_SRC_MAC,
                 server_mac=DEFAULT_DST_MAC, client_isn=1000, server_isn=5000, mss=1460):
        self._writer = writer
        self._ends = {True: (client, client_mac), False: (server, server_mac)}
        self._next = {True: client_isn, False: server_isn}
        self._mss = mss

    def _segment(self, from_client, flags, data, ts_ns):
        (src_ip, src_port), src_mac = self._ends[from_client]
        (dst_ip, dst_port), dst_mac = self._ends[not from_client]
        ack = self._next[not from_client] if flags & TCP_ACK else 0
        frame = ethernet_tcp_frame(data, src_ip, dst_ip, src_port, dst_port,
                                   self._next[from_client], ack, flags, src_mac, dst_mac)
        self._writer.write(frame, ts_ns)
        self._next[from_client] += len(data) + bool(flags & (TCP_SYN | TCP_FIN))

    def open(self, ts_ns):
        """Write the three-way handshake, 1 µs apart, starting at ``ts_ns``."""
        self._segment(True, TCP_SYN, b"", ts_ns)
        self._segment(False, TCP_SYN | TCP_ACK, b"", ts_ns + 1000)
        self._segment(True, TCP_ACK, b"", ts_ns + 2000)

    def send(self, from_client, data, ts_ns):
        """Write ``data`` from one end, split into segments of at most ``mss`` bytes."""
        for start in range(0, len(data), self._mss):
            self._segment(from_client, TCP_PSH | TCP_ACK, data[start:start + self._mss], ts_ns)

    def client_send(self, data, ts_ns):
        self.send(True, data, ts_ns)

    def server_send(self, data, ts_ns):
        self.send(False, data, ts_ns)

    def close(self, ts_ns):
        """Write FIN-ACK from the client, FIN-ACK from the server and the last ACK."""
        self._segment(True, TCP_FIN | TCP_ACK, b"", ts_ns)
        self._segment(False, TCP_FIN | TCP_ACK, b"", ts_ns + 1000)
        self._segment(True, TCP_ACK, b"", ts_ns + 2000)
