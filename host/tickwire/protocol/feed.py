"""The feed's constants, shared by the gateware feed encoder and the host: the MoldUDP64
session name, the ITCH trading-action reasons of TRADING events, and where the feed goes."""

from tickwire.protocol import pcap
from tickwire.protocol.link import Reason

__all__ = ["DEFAULT_SESSION", "MAX_PAYLOAD", "TRADING_REASONS", "FeedAddress"]

DEFAULT_SESSION = "TICKWIRE01"

#: A MoldUDP64 packet of the feed carries at most this many bytes of UDP payload.
MAX_PAYLOAD = 1400

#: (halted, Reason) of a TRADING event → ITCH 'H' reason (A4).
TRADING_REASONS = {
    (0, Reason.NONE): "",
    (0, Reason.OPERATOR): "T3",
    (1, Reason.OPERATOR): "H11",
    (1, Reason.BREAKER): "LUDP",
}


class FeedAddress:
    """Where the feed goes: multicast group and port, and the publisher's address."""
    group = "233.54.12.111"
    port = 26400
    source = "10.0.0.1"
    source_port = 26400

    @classmethod
    def frame(cls, payload):
        """The Ethernet/IPv4/UDP frame (no FCS) carrying one MoldUDP64 packet of the feed."""
        return pcap.ethernet_udp_frame(payload, cls.source, cls.group, cls.source_port, cls.port)
