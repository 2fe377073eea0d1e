"""The gateware market-data feed: engine events → ITCH 5.0 → MoldUDP64 (→ UDP multicast frames)."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.itch_encoder import ItchEncoder
from tickwire.hdl.mold_packetizer import MOLD_LAYOUT, MoldPacketizer
from tickwire.hdl.udp_frame_builder import FRAME_LAYOUT, UdpFrameBuilder
from tickwire.protocol import pcap
from tickwire.protocol.feed import DEFAULT_SESSION, FeedAddress
from tickwire.protocol.link import EVENT_LAYOUT

__all__ = ["FeedEncoder"]


class FeedEncoder(wiring.Component):
    """Engine events in; MoldUDP64 packets and, with ``ethernet``, Ethernet frames (with FCS) out.

    The same bytes as ``tickwire.feed.FeedPublisher`` (sent through ``pcap.ethernet_udp_frame``
    on ``o_frame``; see ``ItchEncoder``, ``MoldPacketizer``, ``UdpFrameBuilder``). ``o_mold``
    carries every MoldUDP64 packet (again, with ``ethernet``), for the serial link; with
    ``ethernet`` it reads the packet buffer through its own port, so a slow ``o_mold`` holds
    the feed back (the buffer is freed when both outputs have sent it) but never pauses a frame.

    Parameters
    ----------
    session, max_payload, heartbeat_cycles :
        As ``MoldPacketizer``.
    src_mac, src_ip, group, src_port, dst_port, ttl :
        As ``UdpFrameBuilder``; the defaults are ``tickwire.session.FeedAddress``.
    locates : int
        Entries of the stock locate table.
    ethernet : bool
        Build the UDP/IPv4/Ethernet stage and ``o_frame``. Without it (boards without
        Ethernet), the feed is ``o_mold`` alone and the packetizer has a single reader.
    event_bytes : bool
        The ITCH encoder also takes each event's bytes on ``i_event_byte``, as the link
        transmitter sends them (``ItchEncoder``'s ``event_bytes``).

    Members
    -------
    i_event : In(stream.Signature(EVENT_LAYOUT))
    i_event_byte : In(stream.Signature(8, always_ready=True)), if ``event_bytes``
    i_end_of_session : In(1)
        A pulse sends the end of session (after closing the packet being filled).
    o_frame : Out(stream.Signature(FRAME_LAYOUT)), if ``ethernet``
    o_mold : Out(stream.Signature(MOLD_LAYOUT))
    """

    def __init__(self, session=DEFAULT_SESSION, max_payload=1400, heartbeat_cycles=0,
                 src_mac=pcap.DEFAULT_SRC_MAC, src_ip=FeedAddress.source, group=FeedAddress.group,
                 src_port=FeedAddress.source_port, dst_port=FeedAddress.port, ttl=64, locates=64,
                 ethernet=True, event_bytes=False):
        self._encoder = ItchEncoder(locates=locates, event_bytes=event_bytes)
        self._packetizer = MoldPacketizer(session, max_payload, heartbeat_cycles,
                                          mold_output=True, packet_output=ethernet)
        self._builder = (UdpFrameBuilder(src_mac, src_ip, group, src_port, dst_port, ttl)
                         if ethernet else None)
        ports = {
            "i_event": In(stream.Signature(EVENT_LAYOUT)),
            "i_end_of_session": In(1),
        }
        if event_bytes:
            ports["i_event_byte"] = In(stream.Signature(8, always_ready=True))
        if ethernet:
            ports["o_frame"] = Out(stream.Signature(FRAME_LAYOUT))
        ports["o_mold"] = Out(stream.Signature(MOLD_LAYOUT))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.itch = encoder = self._encoder
        m.submodules.mold = packetizer = self._packetizer
        wiring.connect(m, wiring.flipped(self.i_event), encoder.i_event)
        wiring.connect(m, encoder.o_msg, packetizer.i_msg)
        if hasattr(encoder, "i_event_byte"):
            wiring.connect(m, wiring.flipped(self.i_event_byte), encoder.i_event_byte)
        if self._builder is not None:
            m.submodules.udp = builder = self._builder
            wiring.connect(m, packetizer.o_packet, builder.i_payload)
            wiring.connect(m, builder.o_frame, wiring.flipped(self.o_frame))
        wiring.connect(m, packetizer.o_mold, wiring.flipped(self.o_mold))
        m.d.comb += packetizer.i_end_of_session.eq(self.i_end_of_session)
        return m
