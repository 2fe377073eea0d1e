"""Market-data distribution end to end on loopback multicast: loss, re-requests, late join."""

import asyncio
import random

from tickwire.engine.model import ModelEngine
from tickwire.marketdata.publisher import MulticastPublisher
from tickwire.marketdata.rerequest import RerequestServer
from tickwire.marketdata.snapshot import SnapshotServer
from tickwire.marketdata.subscriber import Subscriber
from tickwire.offline.gen import generate
from tickwire.offline.session import TradingSession

GROUP = "239.255.77.1"
SESSION = "TICKWIRE01"
ROWS = generate(3000, seed=11, symbols=4)


def free_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LossyPublisher(MulticastPublisher):
    """Drops data packets on the wire when ``drop(index)`` says so (history still has them)."""

    def __init__(self, *args, drop=lambda index: False, **kwargs):
        super().__init__(*args, **kwargs)
        self.drop, self.index, self.lost = drop, 0, 0

    def send(self, packet):
        count = int.from_bytes(packet[18:20], "big")
        if count not in (0, 0xFFFF):
            self.index += 1
            if self.drop(self.index):
                self.lost += 1
                return
        super().send(packet)


def reference_view(book, locates):
    l3 = {ref: (o.locate, o.side, o.shares, o.price) for ref, o in book.orders.items()}
    levels = {(loc, side): book.levels(loc, side) for loc in locates for side in "BS"}
    return l3, levels


def subscriber_view(sub, locates):
    levels = {(loc, side): sub.book.levels(loc, side) for loc in locates for side in "BS"}
    return sub.book.l3(), levels


def priority(orders):
    """Order references per (locate, side, price), in book order."""
    out = {}
    for ref, o in orders.items():
        out.setdefault((o.locate, o.side, o.price), []).append(ref)
    return out


class Rig:
    """Publisher, re-request and snapshot servers around a trading session."""

    def __init__(self, drop=lambda index: False, history_messages=1_000_000):
        self.port = free_port()
        self.rerequest = RerequestServer(SESSION, max_messages=history_messages)
        self.snapshot = SnapshotServer(SESSION)
        self.publisher = LossyPublisher(GROUP, self.port, session=SESSION, drop=drop,
                                        heartbeat_interval=0.2,
                                        listeners=[self.rerequest.store,
                                                   self.snapshot.on_packet])
        self.session = TradingSession(ModelEngine(), feed_session=SESSION)
        self.session.feed.sink = self.publisher

    async def start(self):
        await self.publisher.start()
        await self.rerequest.start()
        await self.snapshot.start()
        return self

    def subscriber(self, **kwargs):
        return Subscriber(GROUP, self.port, rerequest=self.rerequest.address,
                          rerequest_interval=0.3, **kwargs)

    async def play(self, rows, every=10):
        for i, row in enumerate(rows):
            self.session.play(row)
            if i % every == 0:
                await asyncio.sleep(0)
        self.session.feed.packetizer.flush()

    @property
    def locates(self):
        return [info.locate for info in self.session.exchange.symbols.values()]

    async def close(self):
        self.session.close()
        await self.publisher.close()

    def shutdown(self):
        self.rerequest.close()


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_loss_random_and_burst_every_message_once():
    rng = random.Random(3)
    burst = range(700, 1200)
    seen = [[], []]

    async def main():
        rig = await Rig(drop=lambda i: i in burst or rng.random() < 0.01).start()
        subs = [rig.subscriber(on_message=lambda s, m, out=out: out.append(s))
                for out in seen]
        for sub in subs:
            await sub.start()
        try:
            half = len(ROWS) * 2 // 3
            await rig.play(ROWS[:half])
            mid = rig.publisher.next_sequence
            for sub in subs:
                await sub.wait_for(mid, timeout=20)
                assert subscriber_view(sub, rig.locates) == \
                    reference_view(rig.session.book, rig.locates)
            await rig.play(ROWS[half:])
            await rig.close()
            for sub in subs:
                await asyncio.wait_for(sub.complete.wait(), 20)
            ref = reference_view(rig.session.book, rig.locates)
            for sub in subs:
                assert subscriber_view(sub, rig.locates) == ref
                assert sub.book.book.last_trade == rig.session.book.last_trade
                assert dict(sub.book.book.volume) == dict(rig.session.book.volume)
                assert sub.book.book.halted == rig.session.book.halted
                assert sub.requests > 0 and sub.lost == 0 and not sub.stale
            assert rig.publisher.lost >= 500
            return rig.publisher.next_sequence
        finally:
            for sub in subs:
                await sub.close()
            rig.shutdown()

    end = run(main())
    for got in seen:
        assert got == list(range(1, end))


def test_late_join_through_snapshot_converges():
    rng = random.Random(5)

    async def main():
        rig = await Rig(drop=lambda i: rng.random() < 0.01).start()
        early = rig.subscriber()
        await early.start()
        late = rig.subscriber(snapshot=rig.snapshot.address)
        try:
            third = len(ROWS) // 3
            await rig.play(ROWS[:third])
            await late.start()
            await rig.play(ROWS[third:2 * third])
            assert rig.snapshot.served == 1
            assert late.synced.is_set()
            mid = rig.publisher.next_sequence
            await late.wait_for(mid, timeout=20)
            await early.wait_for(mid, timeout=20)
            ref = reference_view(rig.session.book, rig.locates)
            assert subscriber_view(late, rig.locates) == ref
            assert subscriber_view(early, rig.locates) == ref
            assert priority(late.book.book.orders) == priority(rig.session.book.orders)
            await rig.play(ROWS[2 * third:])
            await rig.close()
            await asyncio.wait_for(late.complete.wait(), 20)
            assert subscriber_view(late, rig.locates) == \
                reference_view(rig.session.book, rig.locates)
        finally:
            await early.close()
            await late.close()
            rig.shutdown()

    run(main())


def test_data_no_longer_held_is_reported_not_waited_for():
    losses = []

    async def main():
        rig = await Rig(history_messages=300).start()
        try:
            await rig.play(ROWS[:600])
            sub = rig.subscriber(on_loss=lambda first, end: losses.append((first, end)))
            await sub.start()
            await rig.play(ROWS[600:700])
            await rig.close()
            await asyncio.wait_for(sub.complete.wait(), 10)
            assert sub.stale and sub.lost > 0
            await sub.close()
            return rig.rerequest.history.oldest
        finally:
            rig.shutdown()

    oldest = run(main())
    assert losses and losses[0][0] == 1 and losses[0][1] <= oldest


def test_lost_data_recovered_from_snapshot():
    async def main():
        rig = await Rig(history_messages=300, drop=lambda i: 200 <= i < 900).start()
        sub = rig.subscriber(snapshot=rig.snapshot.address)
        await sub.start()
        try:
            await rig.play(ROWS[:1500])
            mid = rig.publisher.next_sequence
            await sub.wait_for(mid, timeout=20)
            assert rig.snapshot.served >= 2
            assert subscriber_view(sub, rig.locates) == \
                reference_view(rig.session.book, rig.locates)
            await rig.close()
        finally:
            await sub.close()
            rig.shutdown()

    run(main())


def test_heartbeats_when_idle():
    async def main():
        port = free_port()
        pub = await MulticastPublisher(GROUP, port, session=SESSION,
                                       heartbeat_interval=0.1).start()
        sub = await Subscriber(GROUP, port).start()
        await asyncio.sleep(0.45)
        await pub.close()
        await asyncio.wait_for(sub.complete.wait(), 5)
        await sub.close()
        return pub.heartbeats, sub.packets

    heartbeats, packets = run(main())
    assert heartbeats >= 2 and packets >= heartbeats + 1
