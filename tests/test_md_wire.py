"""Published packets as others read them (tshark, itchfeed), the re-request server's rules,
the subscriber book against FeedBook, and the feed CLI functions."""

import argparse
import asyncio
import io
import json
import os
import socket
import sys

import pytest
from tickwire.engine.model import ModelEngine
from tickwire.marketdata.book import SubscriberBook
from tickwire.marketdata.cli import add_dump_arguments, add_watch_arguments, feed_dump, feed_watch
from tickwire.marketdata.feed_book import FeedBook
from tickwire.marketdata.history import MessageHistory
from tickwire.marketdata.publisher import MulticastPublisher
from tickwire.marketdata.rerequest import RerequestServer
from tickwire.offline.gen import generate
from tickwire.offline.session import TradingSession
from tickwire.protocol import itch, moldudp64, pcap
from tickwire.protocol.feed import FeedAddress

sys.path.insert(0, os.path.dirname(__file__))
import tshark  # noqa: E402

SESSION = "TICKWIRE01"
GROUP = "239.255.77.2"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_packets(orders=800, seed=4):
    packets, messages = [], []
    session = TradingSession(ModelEngine(), feed_session=SESSION)
    session.feed.sink = lambda p, t: packets.append((p, t))
    session.feed.on_message = messages.append
    for row in generate(orders, seed=seed, symbols=3):
        session.play(row)
    session.close()
    return packets, messages, session


PACKETS, MESSAGES, SESSION_DONE = session_packets()


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """Packets published live on loopback, captured by a listener into a pcap."""
    path = tmp_path_factory.mktemp("md") / "feed.pcap"

    async def main(f):
        writer = pcap.PcapWriter(f)

        def record(packet, ts):
            writer.write(FeedAddress.frame(packet), ts)

        port = free_port()
        async with MulticastPublisher(GROUP, port, listeners=[record]) as pub:
            for packet, ts in PACKETS:
                pub(packet, ts)
        return pub

    with open(path, "wb") as f:
        asyncio.run(main(f))
    return path


@tshark.requires_tshark
def test_tshark_decodes_published_packets(capture):
    decode = [f"udp.port=={FeedAddress.port},moldudp64"]
    assert tshark.problems(tshark.pdml(capture, decode)) == []
    rows = tshark.fields(capture, decode, ["moldudp64.sequence", "moldudp64.count",
                                           "moldudp64.msglen"])
    assert len(rows) == len(PACKETS)
    for row, (packet, _) in zip(rows, PACKETS):
        header = moldudp64.HEADER.decode(packet[:20])
        assert row["moldudp64.sequence"] == [str(header.sequence)]
        assert row["moldudp64.count"] == [str(header.count)]


def test_itchfeed_decodes_payloads(capture, monkeypatch):
    monkeypatch.setenv("ITCH_NO_CPP", "1")
    from itch.parser import MessageParser
    parser = MessageParser()
    theirs = []
    for payload in pcap.udp_payloads(capture, FeedAddress.port):
        if payload[18:20] not in (b"\x00\x00", b"\xff\xff"):
            theirs += list(parser.parse_stream(bytes(payload[20:])))
    assert len(theirs) == len(MESSAGES)
    for msg, raw in zip(theirs, MESSAGES):
        ours = itch.decode(raw)
        assert msg.message_type == raw[:1]
        if raw[:1] == b"A":
            assert (msg.order_reference_number, msg.shares, msg.price) == \
                (ours.order_reference_number, ours.shares, ours.price)


def test_subscriber_book_matches_feedbook():
    reference, ours = FeedBook(), SubscriberBook()
    locates = set()
    for i, raw in enumerate(MESSAGES):
        reference.apply_bytes(raw)
        locates.add(ours.apply(raw))
        if i % 97 == 0 or i == len(MESSAGES) - 1:
            for loc in locates - {0}:
                for side in "BS":
                    assert ours.levels(loc, side) == reference.levels(loc, side)
                    assert ours.levels(loc, side, 3) == reference.levels(loc, side, 3)
                assert ours.top(loc) == reference.top(loc)
    assert ours.book.orders == reference.orders
    assert ours.book.messages == reference.messages
    with pytest.raises(ValueError):
        ours.apply(itch.encode(b"D", stock_locate=1, timestamp=0, order_reference_number=10**9))


# -- re-request server ---------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def filled_server(n_messages=1000, **kwargs):
    clock = Clock()
    history = MessageHistory(max_messages=kwargs.pop("max_messages", 10**6),
                             max_age=kwargs.pop("max_age", 60.0), clock=clock)
    server = RerequestServer(SESSION, history, clock=clock, **kwargs)
    packetizer = moldudp64.Packetizer(SESSION, max_payload=200)
    for i in range(n_messages):
        for packet in packetizer.add(itch.encode(b"D", stock_locate=1, timestamp=i,
                                                 order_reference_number=i + 1)):
            server.store(packet)
    for packet in packetizer.flush():
        server.store(packet)
    return server, clock


def decoded(packets):
    return [moldudp64.decode_packet(p) for p in packets]


def test_rerequest_answers_within_max_payload():
    server, _ = filled_server(max_payload=300)
    packets = decoded(server.answer(10, 50))
    assert packets[0].sequence == 10 and sum(p.count for p in packets) == 50
    assert all(len(raw) <= 300 for raw in server.answer(10, 50))
    seqs = [p.sequence + i for p in packets for i in range(p.count)]
    assert seqs == list(range(10, 60))
    assert itch.decode(packets[0].messages[0]).order_reference_number == 10


def test_rerequest_rate_limit_per_requester():
    server, clock = filled_server(rate=10, burst=5, max_payload=100)
    a, b = ("127.0.0.1", 1000), ("127.0.0.1", 1001)
    assert len(server.answer(1, 500, a)) == 5        # cut to the burst
    assert server.answer(1, 10, a) == []             # nothing left
    assert server.limited == 1
    assert len(server.answer(1, 500, b)) == 5        # another requester is not affected
    clock.now += 0.3                                 # three tokens back
    assert len(server.answer(1, 500, a)) == 3


def test_rerequest_data_no_longer_held_and_beyond_the_end():
    server, clock = filled_server(max_messages=100)
    assert server.history.oldest == 901
    first = decoded(server.answer(5, 20))[0]
    assert first.sequence == 901 and first.count >= 1          # starts at the oldest held
    first = decoded(server.answer(890, 20))[0]
    assert first.sequence == 901
    beyond = decoded(server.answer(5000, 3))
    assert len(beyond) == 1 and beyond[0].is_heartbeat and beyond[0].sequence == 1001
    clock.now += 61                                            # by age
    server.store(moldudp64.encode_packet(SESSION, 1001, [b"x" * 12]))
    assert server.history.oldest == 1001


def test_rerequest_over_udp_ignores_foreign_session():
    async def main():
        server, _ = filled_server()
        await server.start()
        loop = asyncio.get_running_loop()
        got = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Client,
                                                           local_addr=("127.0.0.1", 0))
        transport.sendto(moldudp64.encode_request("OTHER", 1, 5), server.address)
        transport.sendto(b"short", server.address)
        transport.sendto(moldudp64.encode_request(SESSION, 7, 3), server.address)
        packet = moldudp64.decode_packet(await asyncio.wait_for(got.get(), 2))
        transport.close()
        server.close()
        return server, packet

    server, packet = asyncio.run(main())
    assert server.ignored == 2 and (packet.sequence, packet.count) == (7, 3)


# -- CLI -----------------------------------------------------------------------------------

def test_feed_dump_from_pcap(capture, tmp_path):
    p = argparse.ArgumentParser()
    add_dump_arguments(p)
    out = tmp_path / "feed.jsonl"
    args = p.parse_args(["--pcap", str(capture), "-o", str(out)])
    assert feed_dump(args) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, len(MESSAGES) + 1))
    first_add = next(line for line in lines if line["type"] == "A")
    assert {"order_reference_number", "shares", "price", "stock"} <= set(first_add)


def test_feed_watch_live():
    port = free_port()
    p = argparse.ArgumentParser()
    add_watch_arguments(p)
    stock = itch.decode(next(m for m in MESSAGES if m[:1] == b"R")).stock
    args = p.parse_args([stock, "--group", GROUP, "--port", str(port), "--duration", "1.5",
                         "--refresh", "0.1"])

    class Screen(io.StringIO):
        def isatty(self):
            return False

    screen = Screen()

    async def publish():
        await asyncio.sleep(0.3)
        async with MulticastPublisher(GROUP, port, heartbeat_interval=0.2) as pub:
            for packet, ts in PACKETS:
                pub(packet, ts)

    async def main():
        task = asyncio.create_task(publish())
        await asyncio.to_thread(feed_watch, args, screen)
        await task

    asyncio.run(asyncio.wait_for(main(), 20))
    text = screen.getvalue()
    assert "end of session" in text and f"{stock}   seq {len(MESSAGES)}" in text
