"""The feed of a live venue: published messages/s and packets/s, publisher latency, re-request
answer time.

A generated day is played once through the model engine to capture its event batches (one per
command). Each benchmark then starts a :class:`~tickwire.ops.serve.Venue` with its whole feed
on loopback (multicast, re-request, snapshot and WebSocket servers on free ports) and a
subscriber that drops 1 % of the packets on receipt and so keeps the re-request server busy,
and hands the batches to the venue's feed as its exchange would (``venue.feed.publish``): ITCH
encoding, MoldUDP64 packing, the snapshot book, the re-request history, the WebSocket
notification and ``sendto``, all in the venue's event loop.
"""

import asyncio
import os
import statistics
import tempfile
import time

from tickwire.accounts.config import make_config, parse_config
from tickwire.engine.model import ModelEngine
from tickwire.marketdata.settings import FeedSettings
from tickwire.marketdata.subscriber import PacketLoss, Subscriber
from tickwire.offline.gen import generate
from tickwire.offline.session import TradingSession
from tickwire.ops.serve import Venue
from tickwire.protocol import moldudp64
from tickwire.util.figure import Figure

__all__ = ["event_batches", "venue_feed_benchmarks"]

_SETTINGS = FeedSettings(group="239.255.91.1", port=0, rerequest_port=0, snapshot_port=0,
                         ws_port=0)


def event_batches(orders=20_000, seed=7, symbols=8):
    """The engine's event batches of a generated day, one per command."""
    session = TradingSession(ModelEngine())
    batches = []
    session.exchange.listeners.append(lambda events: batches.append(list(events)))
    for row in generate(orders, seed=seed, symbols=symbols):
        session.play(row)
    return batches


class _LiveVenue:
    """A started venue with its feed, and a lossy subscriber re-requesting from it."""

    async def __aenter__(self):
        self._dir = tempfile.TemporaryDirectory()
        config = parse_config(make_config({}, n=2**10))
        self.venue = await Venue(config, os.path.join(self._dir.name, "bench.wal"),
                                 fsync="none", feed=_SETTINGS).start()
        md = self.venue.marketdata
        self.subscriber = await Subscriber(*md.feed_address, rerequest=md.rerequest_address,
                                           rerequest_interval=0.2,
                                           drop=PacketLoss(0.01, seed=1)).start()
        return self

    async def __aexit__(self, *exc):
        await self.subscriber.close()
        await self.venue.stop()
        self._dir.cleanup()


async def _throughput(batches, per_turn=64):
    async with _LiveVenue() as live:
        md, publish = live.venue.marketdata, live.venue.feed.publish
        first, packets = md.next_sequence, md.publisher.packets
        t0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(0, len(batches), per_turn):
            for batch in batches[i:i + per_turn]:
                publish(batch)
            await asyncio.sleep(0)          # the servers and the subscriber take their turn
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        messages = md.next_sequence - first
        packets = md.publisher.packets - packets
        try:
            await live.subscriber.wait_for(md.next_sequence, 10)
            caught_up = "the lossy subscriber caught up"
        except TimeoutError:
            caught_up = "the lossy subscriber did NOT catch up"
        requests = md.rerequest.requests
    return messages / elapsed, packets / elapsed, messages / cpu, messages, packets, requests, \
        caught_up


async def _latency(batches):
    """ns from handing a batch to the feed to the return of its first ``sendto``."""
    async with _LiveVenue() as live:
        publisher, publish = live.venue.marketdata.publisher, live.venue.feed.publish
        send, sent_at = publisher.send, []

        def timed_send(packet):
            send(packet)
            sent_at.append(time.perf_counter_ns())

        publisher.send = timed_send
        samples = []
        for i, batch in enumerate(batches):
            before = len(sent_at)
            t0 = time.perf_counter_ns()
            publish(batch)
            if len(sent_at) > before:
                samples.append(sent_at[before] - t0)
            if i % 16 == 0:
                await asyncio.sleep(0)
    return samples


async def _rerequest_times(batches, count=20, requests=500):
    """ns from sending a re-request for ``count`` messages to its first answer packet."""
    async with _LiveVenue() as live:
        md, publish = live.venue.marketdata, live.venue.feed.publish
        for batch in batches:
            publish(batch)
        loop = asyncio.get_running_loop()
        answers = asyncio.Queue()

        class Requester(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                answers.put_nowait(time.perf_counter_ns())

        transport, _ = await loop.create_datagram_endpoint(Requester,
                                                           local_addr=("127.0.0.1", 0))
        end, samples = md.next_sequence - count, []
        try:
            for i in range(requests):
                sequence = 1 + (i * 7919) % end
                t0 = time.perf_counter_ns()
                transport.sendto(moldudp64.encode_request(md.settings.session, sequence, count),
                                 md.rerequest_address)
                samples.append(await asyncio.wait_for(answers.get(), 2) - t0)
                await asyncio.sleep(0.001)       # under the server's 2000 packets/s per client
                while not answers.empty():
                    answers.get_nowait()
        finally:
            transport.close()
    return samples


def _percentiles(samples_ns):
    ordered = sorted(samples_ns)
    return (statistics.median(ordered) / 1000,
            ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1000)


def venue_feed_benchmarks(orders=20_000):
    """Published rates, publisher latency and re-request answer time of a live venue."""
    batches = event_batches(orders)
    rate, packet_rate, cpu_rate, messages, packets, requests, caught_up = asyncio.run(
        _throughput(batches))
    latency = _percentiles(asyncio.run(_latency(batches)))
    answer = _percentiles(asyncio.run(_rerequest_times(batches)))
    live = "re-request, snapshot and WebSocket servers live"
    return [
        Figure("md venue feed published", rate, "msg/s",
               note=f"{messages} messages; {live}; {requests} re-requests from a subscriber "
                    f"dropping 1 %, {caught_up}"),
        Figure("md venue feed packets", packet_rate, "pkt/s", note=f"{packets} packets"),
        Figure("md venue feed published per CPU second", cpu_rate, "msg/s",
               note="messages / the process's CPU time: the rate a whole core would give "
                    "(the machine is shared)"),
        Figure("md publisher latency p50", latency[0], "µs",
               note="engine event batch → first sendto returned (ITCH, MoldUDP64, book, "
                    "history, WebSocket notify)"),
        Figure("md publisher latency p99", latency[1], "µs"),
        Figure("md re-request answer p50", answer[0], "µs",
               note="request for 20 messages → first answer packet, loopback UDP"),
        Figure("md re-request answer p99", answer[1], "µs"),
    ]


if __name__ == "__main__":
    for figure in venue_feed_benchmarks():
        print(figure)
