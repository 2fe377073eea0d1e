"""Unit tests of the gateware feed components in Amaranth's simulator, against the software feed."""

import random

import pytest
from amaranth.sim import Simulator
from tickwire.hdl.feed_encoder import FeedEncoder
from tickwire.hdl.itch_encoder import ItchEncoder
from tickwire.hdl.mold_packetizer import MoldPacketizer
from tickwire.hdl.udp_frame_builder import UdpFrameBuilder
from tickwire.marketdata.feed import ItchEventEncoder as SoftwareEncoder
from tickwire.protocol import moldudp64, pcap
from tickwire.protocol.feed import DEFAULT_SESSION, FeedAddress
from tickwire.sim.feed_cycles import (
    EDGE_MAX_PAYLOAD,
    edge_events,
    expected_packets,
    measure_cycles,
    session_events,
)


def _run(dut, *testbenches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    sim.run()


def _messages(events):
    """(message bytes, flush) per event the ItchEncoder sends something for."""
    encoder, out = SoftwareEncoder(), []
    for ev in events:
        msg = encoder.encode(ev)
        if msg is not None or ev.last:
            out.append((msg or b"", ev.last))
    return out


async def _offer(ctx, stream, events):
    """Offer each event on ``stream`` until it is taken."""
    for ev in events:
        ctx.set(stream.payload.as_value(), ev.to_int())
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


def _sink(stream, packets, count, rng, p_ready, check=None):
    """Collects ``count`` packets (bytes) from a ``{data, last, ...}`` stream."""
    async def testbench(ctx):
        current = bytearray()
        while len(packets) < count:
            ctx.set(stream.ready, rng.random() < p_ready)
            _, _, payload, valid, ready = await ctx.tick().sample(
                stream.payload, stream.valid, stream.ready)
            if valid and ready:
                if check is not None and check(payload, current):
                    continue
                current.append(payload.data)
                if payload.last:
                    packets.append(bytes(current))
                    current = bytearray()
    return testbench


def _frame(payload):
    frame = pcap.ethernet_udp_frame(payload, FeedAddress.source, FeedAddress.group,
                                    FeedAddress.source_port, FeedAddress.port)
    return frame + pcap.ethernet_fcs(frame)


async def _offer_bytes(ctx, dut, events, rng):
    """Offer each event on ``dut.i_event`` and its bytes on ``dut.i_event_byte`` (with gaps,
    as the link transmitter sends them) until it is taken."""
    for ev in events:
        ctx.set(dut.i_event.payload.as_value(), ev.to_int())
        ctx.set(dut.i_event.valid, 1)
        for byte in ev.to_bytes():
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.i_event_byte.payload, byte)
            ctx.set(dut.i_event_byte.valid, 1)
            await ctx.tick()
            ctx.set(dut.i_event_byte.valid, 0)
        if not ctx.get(dut.i_event.ready):
            await ctx.tick().until(dut.i_event.ready)
        else:
            await ctx.tick()
    ctx.set(dut.i_event.valid, 0)


@pytest.mark.parametrize("event_bytes", [False, True])
@pytest.mark.parametrize("p_ready", [1.0, 0.6])
def test_itch_encoder(p_ready, event_bytes):
    events = edge_events() + session_events(30, 3)
    expected = _messages(events)
    dut = ItchEncoder(locates=8, event_bytes=event_bytes)
    got = []

    async def source(ctx):
        if event_bytes:
            await _offer_bytes(ctx, dut, events, random.Random(5))
        else:
            await _offer(ctx, dut.i_event, events)

    async def sink(ctx):
        rng, current = random.Random(1), bytearray()
        while len(got) < len(expected):
            ctx.set(dut.o_msg.ready, rng.random() < p_ready)
            _, _, beat, valid, ready = await ctx.tick().sample(
                dut.o_msg.payload, dut.o_msg.valid, dut.o_msg.ready)
            if not (valid and ready):
                continue
            if beat.empty:
                assert beat.last and not current
                got.append((b"", beat.flush))
                continue
            current.append(beat.data)
            if beat.last:
                assert beat.length == len(current)
                got.append((bytes(current), beat.flush))
                current = bytearray()

    _run(dut, source, sink)
    assert got == expected


@pytest.mark.parametrize("max_payload, p_ready, packet_output", [
    (EDGE_MAX_PAYLOAD, 1.0, True), (EDGE_MAX_PAYLOAD, 0.5, True), (1400, 0.7, True),
    (EDGE_MAX_PAYLOAD, 0.5, False), (1400, 1.0, False)])
def test_mold_packetizer(max_payload, p_ready, packet_output):
    events = edge_events() + session_events(20, 5)
    messages = _messages(events)
    expected = expected_packets(events, max_payload=max_payload)
    dut = MoldPacketizer(DEFAULT_SESSION, max_payload, packet_output=packet_output)
    got, mold, sums = [], [], []

    async def source(ctx):
        for msg, flush in messages:
            beats = [(b, i == len(msg) - 1, 0) for i, b in enumerate(msg)] or [(0, 1, 1)]
            for data, last, empty in beats:
                ctx.set(dut.i_msg.payload, {"data": data, "last": last, "flush": flush,
                                            "empty": empty, "length": len(msg)})
                ctx.set(dut.i_msg.valid, 1)
                await ctx.tick().until(dut.i_msg.ready)
        ctx.set(dut.i_msg.valid, 0)
        await ctx.tick().until((dut.o_packet if packet_output else dut.o_mold).valid == 0)
        await ctx.tick().repeat(50)
        ctx.set(dut.i_end_of_session, 1)
        await ctx.tick()
        ctx.set(dut.i_end_of_session, 0)

    def record(payload, current):
        if not current:
            sums.append((payload.length, payload.sum))
        return False

    sinks = [_sink(dut.o_mold, mold, len(expected), random.Random(3), p_ready)]
    if not packet_output:
        _run(dut, source, *sinks)
        assert mold == expected
        return
    _run(dut, source, _sink(dut.o_packet, got, len(expected), random.Random(2), p_ready, record),
         *sinks)
    assert got == expected
    assert mold == expected
    for packet, (length, total) in zip(got, sums):
        assert length == len(packet)
        assert total % 0xFFFF == (~pcap.internet_checksum(packet) & 0xFFFF) % 0xFFFF


def test_mold_heartbeat():
    dut = MoldPacketizer(DEFAULT_SESSION, 200, heartbeat_cycles=30, mold_output=False)
    got = []
    msg = bytes(range(1, 20))

    async def source(ctx):
        await ctx.tick().repeat(45)
        for i, data in enumerate(msg):
            ctx.set(dut.i_msg.payload, {"data": data, "last": i == len(msg) - 1, "flush": 1,
                                        "empty": 0, "length": len(msg)})
            ctx.set(dut.i_msg.valid, 1)
            await ctx.tick().until(dut.i_msg.ready)
        ctx.set(dut.i_msg.valid, 0)

    _run(dut, source, _sink(dut.o_packet, got, 4, random.Random(1), 1.0))
    heartbeat = moldudp64.encode_heartbeat(DEFAULT_SESSION, 1)
    assert got[0] == heartbeat
    assert got[1] == moldudp64.encode_packet(DEFAULT_SESSION, 1, [msg])
    assert got[2:] == [moldudp64.encode_heartbeat(DEFAULT_SESSION, 2)] * 2


def test_mold_sequence_after_reset():
    """The sequence number kept in block RAM starts again at 1 after a reset."""
    from amaranth.hdl import Module, ResetInserter, Signal

    rst = Signal()
    dut = MoldPacketizer(DEFAULT_SESSION, 200, packet_output=False)
    top = Module()
    top.submodules.dut = ResetInserter(rst)(dut)
    got = []
    msg = bytes(range(1, 20))

    async def source(ctx):
        for round_ in range(3):
            for i, data in enumerate(msg):
                ctx.set(dut.i_msg.payload, {"data": data, "last": i == len(msg) - 1,
                                            "flush": 1, "empty": 0, "length": len(msg)})
                ctx.set(dut.i_msg.valid, 1)
                await ctx.tick().until(dut.i_msg.ready)
            ctx.set(dut.i_msg.valid, 0)
            await ctx.tick().repeat(80)
            if round_ == 1:
                ctx.set(rst, 1)
                await ctx.tick()
                ctx.set(rst, 0)

    _run(top, source, _sink(dut.o_mold, got, 3, random.Random(1), 1.0))
    assert got == [moldudp64.encode_packet(DEFAULT_SESSION, seq, [msg]) for seq in (1, 2, 1)]


def _payload_with_zero_checksum():
    """A payload whose UDP checksum computes to 0 (sent as 0xFFFF)."""
    base = b"\x12\x34" * 15 + b"\0\0"
    frame = pcap.ethernet_udp_frame(base, FeedAddress.source, FeedAddress.group,
                                    FeedAddress.source_port, FeedAddress.port)
    return base[:-2] + frame[40:42]


@pytest.mark.parametrize("p_ready", [1.0, 0.7])
def test_udp_frame_builder(p_ready):
    rng = random.Random(4)
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in (1, 17, 18, 19, 20, 21, 255)]
    payloads += [b"\xff" * 40, _payload_with_zero_checksum()]
    assert _frame(payloads[-1])[40:42] == b"\xff\xff"
    dut = UdpFrameBuilder(src_ip=FeedAddress.source, dst_group=FeedAddress.group,
                          src_port=FeedAddress.source_port, dst_port=FeedAddress.port)
    got, bubbles = [], []

    async def source(ctx):
        for payload in payloads:
            total = ~pcap.internet_checksum(payload) & 0xFFFF
            for i, data in enumerate(payload):
                ctx.set(dut.i_payload.payload, {"data": data, "last": i == len(payload) - 1,
                                                "length": len(payload), "sum": total})
                ctx.set(dut.i_payload.valid, 1)
                await ctx.tick().until(dut.i_payload.ready)
        ctx.set(dut.i_payload.valid, 0)

    async def watch(ctx):
        started = False
        async for _, _, valid, ready, last in ctx.tick().sample(
                dut.o_frame.valid, dut.o_frame.ready, dut.o_frame.payload.last):
            if started and not valid:
                bubbles.append(1)
            if valid and ready:
                started = not last

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(_sink(dut.o_frame, got, len(payloads), random.Random(5), p_ready))
    sim.add_testbench(watch, background=True)
    sim.run()
    assert got == [_frame(p) for p in payloads]
    assert not bubbles


def test_feed_encoder_session():
    events = session_events(60, 7)
    expected = [_frame(p) for p in expected_packets(events, end_of_session=False)]
    dut = FeedEncoder()
    got, mold = [], []

    async def source(ctx):
        await _offer(ctx, dut.i_event, events)

    _run(dut, source, _sink(dut.o_frame, got, len(expected), random.Random(6), 0.8),
         _sink(dut.o_mold, mold, len(expected), random.Random(7), 0.3))
    assert got == expected
    assert mold == expected_packets(events, end_of_session=False)


@pytest.mark.parametrize("p_ready", [1.0, 0.4])
def test_feed_encoder_mold_only(p_ready):
    """The boards' feed: MoldUDP64 packets only, with the end of session."""
    events = edge_events() + session_events(40, 8)
    expected = expected_packets(events)
    dut = FeedEncoder(ethernet=False, locates=8)
    assert not hasattr(dut, "o_frame")
    mold = []

    async def source(ctx):
        await _offer(ctx, dut.i_event, events)
        await ctx.tick().until(dut.o_mold.valid)
        await ctx.tick().repeat(2000)
        ctx.set(dut.i_end_of_session, 1)
        await ctx.tick()
        ctx.set(dut.i_end_of_session, 0)

    _run(dut, source, _sink(dut.o_mold, mold, len(expected), random.Random(9), p_ready))
    assert mold == expected


@pytest.mark.parametrize("ethernet", [True, False])
def test_measured_figures(ethernet):
    figures = measure_cycles(orders=20, seed=1, ethernet=ethernet)
    assert figures["bytes_per_cycle"] == 1.0
    assert 0 < figures["latency_cycles"] < 30
