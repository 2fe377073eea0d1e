"""cocotb bench of the gateware ``FeedEncoder`` (hdl/feed_encoder.py).

Parameters come through the environment (``tests/test_hdl_feed_cocotb.py`` sets them):

=====================  ===============================================================
FEED_EVENTS            file of ``Event.to_bytes()`` records to drive
FEED_PCAP              where to write the captured frames (FCS stripped)
FEED_MAX_PAYLOAD       the DUT's ``max_payload``
FEED_HEARTBEAT         the DUT's ``heartbeat_cycles`` (0: none)
FEED_READY             probability that a sink is ready on a cycle (1: always)
FEED_PAUSE             idle cycles after a command, now and then (0: never)
FEED_SEED              seed of the backpressure and pauses
=====================  ===============================================================

The scoreboard compares every frame, in order, with ``pcap.ethernet_udp_frame`` of the
software feed's packets for the same events followed by ``pcap.ethernet_fcs``, and every
``o_mold`` packet with the packet itself; heartbeats may come in between whenever the feed is
idle and must carry the next sequence number. A frame must not pause once started.
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from tickwire.protocol import moldudp64, pcap
from tickwire.protocol.feed import DEFAULT_SESSION, FeedAddress
from tickwire.sim.feed_cycles import expected_packets, read_events

FRAME_BITS = 8


def _bit(handle):
    """A 1-bit output, X read as 0: Icarus runs an ``always @*`` block only once one of its
    inputs changes, so a combinational output of registers still at their initial values
    stays X until then."""
    value = handle.value
    return int(value) if value.is_resolvable else 0


def frame_of(payload):
    frame = FeedAddress.frame(payload)
    return frame + pcap.ethernet_fcs(frame)


class EventDriver:
    """Drives event records into ``i_event``, pausing after the third command and then after
    one command in ten."""

    def __init__(self, dut, rng, pause):
        self.dut, self.rng, self.pause = dut, rng, pause
        self.sent = 0

    async def run(self, events):
        dut = self.dut
        commands = 0
        for ev in events:
            dut.i_event__payload.value = ev.to_int()
            dut.i_event__valid.value = 1
            await RisingEdge(dut.clk)
            while not _bit(dut.i_event__ready):
                await RisingEdge(dut.clk)
            self.sent += 1
            commands += ev.last
            if ev.last and self.pause and (commands == 3 or self.rng.random() < 0.1):
                dut.i_event__valid.value = 0
                await ClockCycles(dut.clk, self.pause)
        dut.i_event__valid.value = 0


class ByteStreamMonitor:
    """Collects ``{data, last}`` packets from a stream, with random backpressure.

    With ``no_bubbles``, fails if ``valid`` drops inside a packet.
    """

    def __init__(self, dut, prefix, rng, ready_probability, no_bubbles):
        self.dut, self.rng, self.p_ready = dut, rng, ready_probability
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.no_bubbles = no_bubbles
        self.packets = []
        self.bubbles = 0
        self.busy_cycles = 0
        self.bytes = 0

    async def run(self):
        clk = self.dut.clk
        current, started = bytearray(), False
        self.ready.value = int(self.rng.random() < self.p_ready)
        while True:
            await RisingEdge(clk)
            valid, ready = _bit(self.valid), int(self.ready.value)
            if started:
                self.busy_cycles += 1
                if not valid:
                    self.bubbles += 1
            if valid and ready:
                word = int(self.payload.value)
                current.append(word & 0xFF)
                self.bytes += 1
                started = True
                if word >> FRAME_BITS & 1:
                    self.packets.append(bytes(current))
                    current, started = bytearray(), False
            self.ready.value = int(self.rng.random() < self.p_ready)


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.seed = int(os.environ.get("FEED_SEED", "1"))
        self.rng = random.Random(self.seed)
        self.max_payload = int(os.environ.get("FEED_MAX_PAYLOAD", "1400"))
        self.heartbeat = int(os.environ.get("FEED_HEARTBEAT", "0"))
        p_ready = float(os.environ.get("FEED_READY", "1"))
        self.events = read_events(os.environ["FEED_EVENTS"])
        self.driver = EventDriver(dut, self.rng, int(os.environ.get("FEED_PAUSE", "0")))
        self.frames = ByteStreamMonitor(dut, "o_frame", random.Random(self.seed + 1), p_ready,
                                        no_bubbles=True)
        self.mold = ByteStreamMonitor(dut, "o_mold", random.Random(self.seed + 2), p_ready,
                                      no_bubbles=False)
        Clock(dut.clk, 10, unit="ns").start()

    async def reset(self):
        dut = self.dut
        dut.rst.value = 1
        dut.i_event__valid.value = 0
        dut.i_event__payload.value = 0
        dut.i_end_of_session.value = 0
        dut.o_frame__ready.value = 0
        dut.o_mold__ready.value = 0
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def wait_frames(self, count, timeout_cycles):
        for _ in range(timeout_cycles):
            if self._data_frames() >= count:
                return
            await RisingEdge(self.dut.clk)
        raise AssertionError(f"timeout: {self._data_frames()} of {count} frames")

    def _data_frames(self):
        return sum(1 for frame in self.frames.packets if not _is_heartbeat(frame))


def _is_heartbeat(frame):
    payload = frame[42:-4]
    return len(payload) >= moldudp64.HEADER_LENGTH and payload[18:20] == b"\0\0"


def check_in_order(received, expected, session, what):
    """Match ``received`` to ``expected`` in order, allowing heartbeats in between.

    Returns the number of heartbeats."""
    heartbeats, next_seq, index = 0, 1, 0
    for number, got in enumerate(received):
        if index < len(expected) and got == expected[index][0]:
            next_seq = expected[index][1]
            index += 1
        elif index < len(expected) and got == expected[index][2](
                moldudp64.encode_heartbeat(session, next_seq)):
            heartbeats += 1
        elif index < len(expected):
            raise AssertionError(f"{what} {number}: got {got.hex()}\n"
                                 f"expected {expected[index][0].hex()}")
        else:
            raise AssertionError(f"{what} {number} after the end of session: {got.hex()}")
    assert index == len(expected), f"{what}: {index} of {len(expected)} received"
    return heartbeats


@cocotb.test()
async def run_feed(dut):
    """All events in; every frame and MoldUDP64 packet out checked against the software feed."""
    tb = TB(dut)
    await tb.reset()
    cocotb.start_soon(tb.frames.run())
    cocotb.start_soon(tb.mold.run())
    payloads = expected_packets(tb.events, DEFAULT_SESSION, tb.max_payload)
    data_payloads, eos = payloads[:-1], payloads[-1]
    budget = 50 * sum(len(p) + 60 for p in payloads) + 50 * len(tb.events) + 10_000
    if tb.driver.pause:
        budget += tb.driver.pause * len(tb.events)
    await tb.driver.run(tb.events)
    await tb.wait_frames(len(data_payloads), budget)
    dut.i_end_of_session.value = 1
    await RisingEdge(dut.clk)
    dut.i_end_of_session.value = 0
    await tb.wait_frames(len(payloads), 10_000)
    await ClockCycles(dut.clk, max(3 * tb.heartbeat, 500))

    expected = []
    for payload in payloads:
        packet = moldudp64.decode_packet(payload)
        count = 0 if packet.count == moldudp64.END_OF_SESSION else packet.count
        expected.append((payload, packet.sequence + count))
    frames = tb.frames.packets
    heartbeats = check_in_order(
        frames, [(frame_of(p), seq, frame_of) for p, seq in expected], DEFAULT_SESSION, "frame")
    mold_heartbeats = check_in_order(
        tb.mold.packets, [(p, seq, lambda x: x) for p, seq in expected],
        DEFAULT_SESSION, "mold packet")
    assert frames[-1] == frame_of(eos), "end of session is not the last frame"
    assert heartbeats == mold_heartbeats
    assert tb.frames.bubbles == 0, f"{tb.frames.bubbles} idle cycles inside frames"
    for frame in frames:
        assert frame[-4:] == pcap.ethernet_fcs(frame[:-4])
    if tb.heartbeat and tb.driver.pause > 2 * tb.heartbeat:
        assert heartbeats > 0, "no heartbeat in the pauses"
    dut._log.info("%d events, %d frames (%d heartbeats), %d bytes in %d busy cycles",
                  len(tb.events), len(frames), heartbeats, tb.frames.bytes,
                  tb.frames.busy_cycles)

    with open(os.environ["FEED_PCAP"], "wb") as f:
        writer = pcap.PcapWriter(f)
        for number, frame in enumerate(frames):
            writer.write(frame[:-4], 1_000 * number)
