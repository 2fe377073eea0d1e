"""A device's own feed: the MoldUDP64 packets a board sent, timed and framed as the host's.

``tickwire replay --engine serial:…`` writes its pcap from these rather than from the host's
encoding of the events, and compares the two (:func:`feed_difference`), so that a bug in a
board's feed encoder shows.

Each packet gets the capture time ``TradingSession`` gives its own: the timestamp of the event
that closed it. A data packet holds the messages of one command (a packet closes at a command's
last event, or when its next message does not fit), so that is its messages' one ITCH
timestamp; the end of session takes the last data packet's. Each is framed for the feed's
multicast group (``FeedAddress.frame``).

The end of session is the device's too: the host asks for it (``SerialEngine.end_session``,
an END_SESSION link frame) and the board's feed encoder sends it; a stream without one is
refused rather than completed by the host.
"""

from tickwire.protocol import moldudp64
from tickwire.protocol.feed import FeedAddress

__all__ = ["DeviceFeedError", "device_frames", "feed_difference"]

#: Where a feed frame's UDP payload starts: Ethernet, IPv4 without options, UDP.
_PAYLOAD_OFFSET = 14 + 20 + 8


class DeviceFeedError(ValueError):
    """The device's packets are not a well-formed MoldUDP64 stream."""


def device_frames(packets):
    """Check the device's MoldUDP64 ``packets`` and time and frame each (see the module):
    ``[(time_ns, frame)]``.

    Raises
    ------
    DeviceFeedError
        A packet that does not decode, a gap or repeat in the sequence numbers, a heartbeat
        (the boards' feed sends none), a packet after the end of session, no end of session,
        or a data packet with messages of several times; the message names the packet.
    """
    frames, next_seq, time, session = [], 1, 0, None
    for number, raw in enumerate(packets):
        where = f"the device's feed packet {number}"
        if frames and _is_end(frames[-1][1]):
            raise DeviceFeedError(f"{where} comes after its end of session")
        try:
            packet = moldudp64.decode_packet(raw)
        except ValueError as error:
            raise DeviceFeedError(f"{where}: {error}") from None
        if packet.is_heartbeat:
            raise DeviceFeedError(f"{where} is a heartbeat; the boards' feed sends none")
        if packet.sequence != next_seq:
            raise DeviceFeedError(f"{where}: sequence {packet.sequence}, expected {next_seq}")
        session = packet.session
        if not packet.is_end_of_session:
            times = {int.from_bytes(msg[5:11], "big") for msg in packet.messages}
            if len(times) != 1:
                raise DeviceFeedError(f"{where} holds messages of several times "
                                      f"{sorted(times)}")
            time = times.pop()
            next_seq += packet.count
        frames.append((time, FeedAddress.frame(raw)))
    if session is not None and not _is_end(frames[-1][1]):
        raise DeviceFeedError(f"the device's feed ends without an end of session (after "
                              f"{len(frames)} packets): a bitstream older than this host?")
    return frames


def _is_end(frame):
    return _decode(frame).is_end_of_session


def _decode(frame):
    return moldudp64.decode_packet(frame[_PAYLOAD_OFFSET:])


def feed_difference(host, device, who="device"):
    """``None`` if the two lists of ``(time_ns, frame)`` are equal, else the first difference:
    the packet's number and MoldUDP64 sequence number, what differs and both versions."""
    for number, (ours, theirs) in enumerate(zip(host, device)):
        if ours != theirs:
            what = "capture time" if ours[1] == theirs[1] else "bytes"
            packet = _decode(ours[1])
            return (f"packet {number} (MoldUDP64 sequence {packet.sequence}, {what}): host "
                    f"{ours[0] / 1e9:.9f} {_payload(ours[1])}, {who} {theirs[0] / 1e9:.9f} "
                    f"{_payload(theirs[1])}")
    if len(host) != len(device):
        return f"{len(host)} packets from the host, {len(device)} from the {who}"
    return None


def _payload(frame):
    return frame[_PAYLOAD_OFFSET:].hex()
