"""The link layer in Amaranth's simulator, driven with the host's codec (``tickwire.serial_link``).

Behind the link, the reference model stands in for the engine (``sim/tb_link.py``).
"""

from amaranth.sim import Simulator
from tickwire.engine.serial import FrameReader, decode_frame, encode_frame
from tickwire.hdl.link_layer import LinkLayer
from tickwire.protocol import moldudp64
from tickwire.protocol.link import Action, Command, Event, ModelParams, Side, pack_name
from tickwire.protocol.serial_frames import FrameType, NakReason, decode_status, encode_params
from tickwire.sim.model import ExchangeModel
from tickwire.sim.tb_link import model_core_testbench

PARAMS = ModelParams(max_orders=64, max_symbols=4, band_ticks=64)


def _commands():
    return [
        Command(seq=1, timestamp=10, action=Action.DECLARE, symbol=1, name=pack_name("ACME"),
                price=100, qty=100, tick=100, breaker=0),
        Command(seq=2, timestamp=20, action=Action.NEW, symbol=1, side=Side.SELL, price=101,
                qty=300, order_id=1, firm=1),
        Command(seq=3, timestamp=30, action=Action.NEW, symbol=1, side=Side.BUY, price=101,
                qty=100, order_id=2, firm=2),
    ]


class Host:
    """The host end of the link inside a testbench: bytes in on ``i_rx``, frames out."""

    def __init__(self, link, gap=2):
        self.link = link
        self.gap = gap
        self.reader = FrameReader()
        self.frames = []
        self.bytes_out = 0

    async def send(self, ctx, wire):
        for byte in wire:
            ctx.set(self.link.i_rx.payload, byte)
            ctx.set(self.link.i_rx.valid, 1)
            await ctx.tick()
            ctx.set(self.link.i_rx.valid, 0)
            if self.gap:
                await ctx.tick().repeat(self.gap)

    def collector(self):
        async def process(ctx):
            ctx.set(self.link.o_tx.ready, 1)
            async for _, _, valid, byte in ctx.tick().sample(self.link.o_tx.valid,
                                                             self.link.o_tx.payload):
                if valid:
                    self.bytes_out += 1
                    self.frames += [decode_frame(f) for f in self.reader.feed(bytes([byte]))]
        return process

    async def wait(self, ctx, predicate, limit=20000):
        for _ in range(limit):
            if predicate():
                return
            await ctx.tick()
        raise AssertionError(f"timed out; frames so far: {[chr(t) for t, _ in self.frames]}")

    def of_type(self, ftype):
        return [p for t, p in self.frames if t == ftype]


def _run(script, heartbeat=5000, **kwargs):
    link = LinkLayer(heartbeat_cycles=heartbeat, info=encode_params(PARAMS), **kwargs)
    host = Host(link)
    log = []
    sim = Simulator(link)
    sim.add_clock(1e-6)
    sim.add_process(host.collector())
    sim.add_testbench(model_core_testbench(link.o_cmd, link.i_event, link.i_mold, PARAMS, log,
                                           end_of_session=link.o_end_of_session),
                      background=True)
    done = []

    async def main(ctx):
        await script(ctx, host, link)
        done.append(1)

    sim.add_testbench(main)
    sim.run()
    assert done
    return host, log


def _hello(n=4096):
    return encode_frame(FrameType.HELLO, n.to_bytes(2, "little"))


def test_commands_events_and_feed():
    commands = _commands()
    model = ExchangeModel(PARAMS)
    expected = [e for c in commands for e in model.process(c)]

    async def script(ctx, host, link):
        await host.send(ctx, _hello())
        await host.wait(ctx, lambda: host.of_type(FrameType.STATUS))
        status, params = decode_status(host.of_type(FrameType.STATUS)[0])
        assert params == PARAMS and status["expected_seq"] == 0
        for seq, command in enumerate(commands):
            await host.send(ctx, encode_frame(FrameType.COMMAND,
                                              bytes([seq]) + command.to_bytes()))
            await host.wait(ctx, lambda n=seq + 1: len(host.of_type(FrameType.MOLD)) == n)
        assert len(host.of_type(FrameType.EVENT)) == len(expected)

    host, log = _run(script)
    events = [Event.from_bytes(p) for p in host.of_type(FrameType.EVENT)]
    assert events == expected
    assert [c for c, _ in log] == commands
    assert all(p[:10] == b"TICKWIRE01" for p in host.of_type(FrameType.MOLD))


def test_end_session_frame_ends_the_feed_once():
    """END_SESSION pulses the core's end of session: one MoldUDP64 end-of-session packet
    (count 0xFFFF) with the next sequence number; a damaged one is refused, a repeat ignored."""
    command = _commands()[0]

    async def script(ctx, host, link):
        await host.send(ctx, _hello())
        await host.send(ctx, encode_frame(FrameType.COMMAND, bytes([0]) + command.to_bytes()))
        await host.wait(ctx, lambda: len(host.of_type(FrameType.MOLD)) == 1)
        bad = bytearray(encode_frame(FrameType.END_SESSION))
        bad[1] ^= 0x10
        await host.send(ctx, bytes(bad))
        await host.wait(ctx, lambda: host.of_type(FrameType.NAK))
        await host.send(ctx, encode_frame(FrameType.END_SESSION))
        await host.wait(ctx, lambda: len(host.of_type(FrameType.MOLD)) == 2)
        await host.send(ctx, encode_frame(FrameType.END_SESSION))
        await host.send(ctx, encode_frame(FrameType.QUERY))
        await host.wait(ctx, lambda: host.of_type(FrameType.STATUS)[1:])

    host, _ = _run(script)
    mold = [moldudp64.decode_packet(p) for p in host.of_type(FrameType.MOLD)]
    assert len(mold) == 2 and not mold[0].is_end_of_session
    assert mold[1].is_end_of_session and mold[1].sequence == 1 + mold[0].count
    assert host.of_type(FrameType.NAK)[0][1] in (NakReason.CRC, NakReason.FRAMING)


def test_crc_error_nak_and_retransmit():
    command = _commands()[0]

    async def script(ctx, host, link):
        await host.send(ctx, _hello())
        good = encode_frame(FrameType.COMMAND, bytes([0]) + command.to_bytes())
        bad = bytearray(good)
        bad[10] ^= 0x04
        await host.send(ctx, bytes(bad))
        await host.wait(ctx, lambda: host.of_type(FrameType.NAK))
        assert host.of_type(FrameType.NAK)[0] == bytes([0, NakReason.CRC])
        await host.send(ctx, good)
        await host.wait(ctx, lambda: len(host.of_type(FrameType.EVENT)) == 2)
        # Sent again with the old number: refused, not run twice.
        await host.send(ctx, good)
        await host.wait(ctx, lambda: len(host.of_type(FrameType.NAK)) == 2)
        assert host.of_type(FrameType.NAK)[1] == bytes([1, NakReason.SEQUENCE])
        # A COBS block past the frame end and a short frame: framing errors.
        await host.send(ctx, b"\x09\x43\x00" + encode_frame(FrameType.QUERY)[:-3] + b"\x00")
        await host.send(ctx, encode_frame(FrameType.QUERY))
        await host.wait(ctx, lambda: len(host.of_type(FrameType.STATUS)) == 2)

    host, log = _run(script)
    assert len(log) == 1
    status, _ = decode_status(host.of_type(FrameType.STATUS)[-1])
    assert status["crc_errors"] == 1
    assert status["framing_errors"] == 2
    assert status["expected_seq"] == 1
    assert status["rx_frames"] == 4      # hello, command, command again, query


def test_flow_control_allowance():
    commands = _commands()

    async def script(ctx, host, link):
        await host.send(ctx, _hello(60))
        frames = [encode_frame(FrameType.COMMAND, bytes([seq]) + c.to_bytes())
                  for seq, c in enumerate(commands)]
        await host.send(ctx, frames[0])
        await ctx.tick().repeat(3000)
        assert host.bytes_out == 60          # stopped at the allowance, nothing lost
        # The engine is still busy with the first: the second command waits in the link's
        # register, a third is refused; credits still get through.
        await host.send(ctx, frames[1])
        await host.send(ctx, frames[2])
        await host.send(ctx, encode_frame(FrameType.CREDIT, (1000).to_bytes(2, "little")))
        await host.wait(ctx, lambda: len(host.of_type(FrameType.MOLD)) == 2
                        and host.of_type(FrameType.NAK))
        assert host.of_type(FrameType.NAK) == [bytes([2, NakReason.BUSY])]
        await host.send(ctx, frames[2])
        await host.wait(ctx, lambda: len(host.of_type(FrameType.MOLD)) == 3)

    host, log = _run(script)
    model = ExchangeModel(PARAMS)
    assert [Event.from_bytes(p) for p in host.of_type(FrameType.EVENT)] == [
        e for c in commands for e in model.process(c)]
    assert [c for c, _ in log] == commands


def test_heartbeat_when_idle_and_rx_overflow():
    async def script(ctx, host, link):
        await host.send(ctx, _hello())
        await host.wait(ctx, lambda: host.of_type(FrameType.STATUS))
        await host.wait(ctx, lambda: len(host.of_type(FrameType.HEARTBEAT)) >= 2, limit=700)
        # The UART lost a byte in the middle of a frame: the frame is refused and counted.
        cmd = _commands()[0]
        wire = encode_frame(FrameType.COMMAND, bytes([0]) + cmd.to_bytes())
        await host.send(ctx, wire[:20])
        ctx.set(link.i_rx_overflow, 1)
        await ctx.tick()
        ctx.set(link.i_rx_overflow, 0)
        await host.send(ctx, wire[20:])
        await host.wait(ctx, lambda: host.of_type(FrameType.NAK))
        await host.send(ctx, encode_frame(FrameType.QUERY))
        await host.wait(ctx, lambda: len(host.of_type(FrameType.STATUS)) == 2)

    host, log = _run(script, heartbeat=300)
    assert log == []
    status, _ = decode_status(host.of_type(FrameType.STATUS)[-1])
    assert status["overflows"] == 1
    assert host.of_type(FrameType.NAK) == [bytes([0, NakReason.OVERFLOW])]


def test_heartbeat_period_and_link_timeout_are_exact():
    """Heartbeats start every ``heartbeat_cycles + 1`` cycles on an idle link (the cycle
    choosing the frame, then ``heartbeat_cycles`` of quiet counted from it), and the link is
    up for exactly ``link_timeout_cycles`` cycles after a good frame."""
    heartbeat, timeout = 97, 300

    async def script(ctx, host, link):
        starts, up = [], 0
        for byte in _hello():       # sent here, not by ``host.send``, to count every cycle
            ctx.set(link.i_rx.payload, byte)
            ctx.set(link.i_rx.valid, 1)
            await ctx.tick()
            up += ctx.get(link.o_link_up)
        ctx.set(link.i_rx.valid, 0)
        for cycle in range(4 * heartbeat + timeout):
            frames, link_up = ctx.get(link.o_status.tx_frames), ctx.get(link.o_link_up)
            up += link_up
            if not starts or frames != starts[-1][1]:
                starts.append((cycle, frames))
            await ctx.tick()
        assert up == timeout
        # The STATUS answer to the hello, then heartbeats only.
        periods = {b[0] - a[0] for a, b in zip(starts[2:], starts[3:])}
        assert periods == {heartbeat + 1}, starts

    _run(script, heartbeat=heartbeat, link_timeout_cycles=timeout)


def test_lfsr_timer_jump_ahead():
    from tickwire.hdl.link_tx import lfsr_jump, lfsr_step
    for width in range(3, 15):
        state, seen = 0, set()
        while state not in seen:
            seen.add(state)
            state = lfsr_step(state, width)
        assert len(seen) == 2 ** width - 1      # maximal length: every count is exact
    for width, steps in ((7, 100), (22, 5000), (25, 777)):
        state = 5
        for _ in range(steps):
            state = lfsr_step(state, width)
        assert lfsr_jump(5, width, steps) == state


def test_link_crc_matches_catalog():
    """``LinkCrc`` (XORs, complemented register, clear) against ``amaranth.lib.crc``'s
    software model of the same CRC, over frames one after another."""
    import random

    from tickwire.hdl.link_rx import LINK_CRC, LinkCrc
    params = LINK_CRC(8)
    rng = random.Random(5)
    frames = [b"123456789"] + [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
                               for _ in range(20)]
    dut = LinkCrc()

    async def testbench(ctx):
        for frame in frames:
            for byte in frame:
                ctx.set(dut.i_data, byte)
                ctx.set(dut.i_step, 1)
                await ctx.tick()
            ctx.set(dut.i_step, 0)
            assert ctx.get(dut.o_crc_n) ^ 0xFFFF == params.compute(frame)
            ctx.set(dut.i_clear, 1)
            await ctx.tick()
            ctx.set(dut.i_clear, 0)
            assert ctx.get(dut.o_crc_n) ^ 0xFFFF == 0xFFFF

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
