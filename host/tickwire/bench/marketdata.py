"""Market-data benchmarks: subscriber decode + book build against itchfeed, WebSocket fan-out.

Each function returns :class:`tickwire.util.figure.Figure` rows, to be listed in
``tickwire.bench.BENCHMARKS``.
"""

import asyncio
import gc
import json
import os
import time

from tickwire.engine.model import ModelEngine
from tickwire.marketdata.book import SubscriberBook
from tickwire.marketdata.subscriber import Subscriber
from tickwire.marketdata.websocket import BookWebSocketServer
from tickwire.offline.gen import generate
from tickwire.offline.session import TradingSession
from tickwire.protocol import itch
from tickwire.util.figure import Figure

__all__ = ["feed_packets", "subscriber_messages_per_second", "websocket_fanout",
           "md_benchmarks"]


def feed_packets(orders=20_000, seed=7, symbols=8):
    """MoldUDP64 packets of a generated session (``gen.generate``), data packets only."""
    packets = []
    session = TradingSession(ModelEngine())
    session.feed.sink = lambda p, t: packets.append(p)
    for row in generate(orders, seed=seed, symbols=symbols):
        session.play(row)
    session.close()
    return [p for p in packets if p[18:20] not in (b"\x00\x00", b"\xff\xff")]


def _best(fn, repeat):
    best = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    return best


def subscriber_messages_per_second(orders=20_000, repeat=3, packets=None):
    """Our subscriber (gap logic, decode, L3 book with L2 levels) vs itchfeed's parser alone.

    Both run over the same MoldUDP64 packets in this process: ours through
    ``Subscriber._on_packet`` (the datagram path, no socket), itchfeed's pure-Python
    ``MessageParser().parse_stream`` per packet payload (``ITCH_NO_CPP=1``), which only
    decodes and builds no book.
    """
    os.environ["ITCH_NO_CPP"] = "1"
    from itch.parser import MessageParser
    packets = feed_packets(orders) if packets is None else packets
    n = sum(int.from_bytes(p[18:20], "big") for p in packets)

    def ours():
        sub = Subscriber("239.0.0.1", 1)
        handle = sub._on_packet
        for p in packets:
            handle(p, False)
        assert sub.messages == n, (sub.messages, n)

    def theirs():
        parser = MessageParser()
        count = 0
        for p in packets:
            for _ in parser.parse_stream(p[20:]):
                count += 1
        assert count == n, (count, n)

    t_ours, t_theirs = _best(ours, repeat), _best(theirs, repeat)
    rate_ours, rate_theirs = n / t_ours, n / t_theirs
    return [
        Figure("md subscriber: decode + book", rate_ours, "msg/s",
               note=f"{n} messages in {len(packets)} packets"),
        Figure("itchfeed 1.6 parse_stream (pure Python)", rate_theirs, "msg/s"),
        Figure("md subscriber vs itchfeed", rate_ours / rate_theirs, "x", peer="itchfeed",
               ratio=rate_ours / rate_theirs, note="goal ≥ 2x"),
    ]


def websocket_fanout(subscribers=200, rate=10.0, seconds=3.0, symbols=4):
    """Subscribers × updates/s held by the WebSocket server on loopback, clients in-process.

    Every symbol changes far faster than ``rate``; each client subscribes to one symbol and
    should get ``rate`` updates per second. Reports the total delivered and the share of
    clients that held at least 90 % of the rate.
    """
    from websockets.asyncio.client import connect
    names = [f"S{i:03d}" for i in range(symbols)]
    book = SubscriberBook()
    for locate, name in enumerate(names, 1):
        book.apply(itch.encode(b"R", stock_locate=locate, timestamp=0, stock=name,
                               market_category="Q", financial_status_indicator="N",
                               round_lot_size=100, round_lots_only="N",
                               issue_classification="C", issue_sub_type="Z",
                               authenticity="P", short_sale_threshold_indicator="N",
                               ipo_flag="N", luld_reference_price_tier="1", etp_flag="N",
                               etp_leverage_factor=0, inverse_indicator="N"))

    async def main():
        server = await BookWebSocketServer(lambda: book, rate=rate).start()
        host, port = server.address
        clients = []
        for i in range(0, subscribers, 100):
            clients += await asyncio.gather(*(
                connect(f"ws://{host}:{port}", ping_interval=None, compression=None)
                for _ in range(min(100, subscribers - i))))
        counts = [0] * len(clients)
        for i, ws in enumerate(clients):
            await ws.send(json.dumps({"subscribe": [names[i % symbols]], "depth": 5}))

        async def reader(i, ws):
            async for _ in ws:
                counts[i] += 1

        readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(clients)]
        ref, t0 = 1, time.monotonic()
        await asyncio.sleep(0.2)
        start_counts = list(counts)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            for locate in range(1, symbols + 1):
                book.apply(itch.encode(b"A", stock_locate=locate, timestamp=0,
                                       order_reference_number=ref, buy_sell_indicator="B",
                                       shares=100, stock=names[locate - 1],
                                       price=1_000_000 + ref % 50 * 100))
                server.notify(locate)
                ref += 1
            await asyncio.sleep(0.005)
        elapsed = time.monotonic() - t0
        got = [c - s for c, s in zip(counts, start_counts)]
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
        await server.close()
        return got, elapsed, server.notified

    got, elapsed, notified = asyncio.run(main())
    total = sum(got) / elapsed
    held = sum(g / elapsed >= 0.9 * rate for g in got) / len(got)
    return [
        Figure("md websocket fan-out", total, "updates/s",
               note=f"{subscribers} subscribers × {rate:g}/s asked; {held:.0%} held ≥ 90 %; "
                    f"{notified / elapsed:.0f} book updates/s conflated"),
    ]


def md_benchmarks():
    """Both market-data benchmarks (well under a minute); the fan-out at 1,000 clients."""
    return subscriber_messages_per_second() + websocket_fanout(subscribers=1000)


if __name__ == "__main__":
    for figure in md_benchmarks():
        print(figure)
