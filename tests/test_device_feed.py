"""``tickwire replay`` with an engine that runs its own feed (a board: ``feed_packets()``): the
pcap is written from the device's MoldUDP64 packets and compared with the host's encoding.

No simulator: a stand-in device is the reference model plus the host's feed publisher, whose
packets are tampered with to show that a difference or a malformed stream is caught.
"""

import json

import pytest
from tickwire.engine.model import ModelEngine
from tickwire.marketdata.feed import FeedPublisher
from tickwire.offline.commands import write_command_file
from tickwire.offline.device_feed import device_frames
from tickwire.offline.gen import generate
from tickwire.offline.replay import FeedMismatch, replay
from tickwire.protocol import moldudp64, pcap
from tickwire.protocol.feed import DEFAULT_SESSION
from tickwire.protocol.link import ModelParams

PARAMS = ModelParams(max_orders=128, max_symbols=2, band_ticks=128, max_qty=65535)


class _Device:
    """The model as a device that runs a feed: ``feed_packets()`` gives its MoldUDP64 packets,
    the last its end of session unless ``end`` is false, after ``tamper(packets)``."""

    name = "device"

    def __init__(self, tamper=None, end=True):
        self.params = PARAMS
        self.model = ModelEngine(PARAMS)
        self.publisher = FeedPublisher(lambda packet, ts: self.packets.append(packet))
        self.packets = []
        self.tamper, self.end = tamper, end
        self.counters = {"retransmits": 0, "naks": 0}

    def process(self, command):
        events = self.model.process(command)
        self.publisher.publish(events)
        return events

    def feed_packets(self):
        if self.end:
            self.publisher.end_of_session()
        packets, self.packets = self.packets, []
        return self.tamper(packets) if self.tamper else packets

    def close(self):
        pass


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = tmp_path_factory.mktemp("day") / "day.csv"
    write_command_file(path, generate(40, seed=3, symbols=2, params=PARAMS))
    return path


@pytest.fixture(scope="module")
def model_pcap(day, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pcap"
    replay(str(day), pcap_path=str(path), params=PARAMS)
    return path.read_bytes()


def test_device_feed_is_the_pcap(day, model_pcap, tmp_path):
    summary = replay(str(day), engine=_Device(), pcap_path=str(tmp_path / "d.pcap"))
    assert (tmp_path / "d.pcap").read_bytes() == model_pcap
    assert summary["feed"]["end_of_session"] == "board"
    assert summary["link"] == {"retransmits": 0, "naks": 0}
    json.dumps(summary)


def _flip_last_byte(number):
    def tamper(packets):
        packets[number] = packets[number][:-1] + bytes([packets[number][-1] ^ 1])
        return packets
    return tamper


def test_a_different_packet_is_named(day, model_pcap, tmp_path):
    with pytest.raises(FeedMismatch, match=r"board's feed differs .* at packet 4 \(MoldUDP64 "
                                           r"sequence \d+, bytes\)"):
        replay(str(day), engine=_Device(_flip_last_byte(4)), pcap_path=str(tmp_path / "d.pcap"))
    # Written whole: the board's feed, for a look at the difference.
    written = pcap.read_pcap(str(tmp_path / "d.pcap"))
    expected = pcap.parse_pcap(model_pcap)
    assert len(written) == len(expected) and written[4] != expected[4]
    assert [f for i, f in enumerate(written) if i != 4] == \
        [f for i, f in enumerate(expected) if i != 4]


@pytest.mark.parametrize("tamper, words", [
    (lambda p: p[:3] + p[4:], "packet 3: sequence"),
    (lambda p: p[:2] + [moldudp64.encode_heartbeat(DEFAULT_SESSION, 1)] + p[2:], "heartbeat"),
    (lambda p: [p[0][:-1]] + p[1:], "packet 0: MoldUDP64 packet"),
    (lambda p: p[:-2] + p[-1:], "sequence"),
    (lambda p: p[:-1], "ends without an end of session"),
])
def test_a_malformed_device_feed_writes_nothing(day, tmp_path, tamper, words):
    with pytest.raises(FeedMismatch, match=words):
        replay(str(day), engine=_Device(tamper), pcap_path=str(tmp_path / "d.pcap"),
               reports_path=str(tmp_path / "d.jsonl"))
    assert list(tmp_path.iterdir()) == []


def test_packets_after_the_end_of_session_are_refused():
    end = moldudp64.encode_end_of_session(DEFAULT_SESSION, 1)
    with pytest.raises(ValueError, match="after its end of session"):
        device_frames([end, end])
