"""cocotb testbench of the gateware matching engine (``tickwire.hdl.matching_engine``).

cocotbext-eth style: a :class:`TB` owns clock and reset, a :class:`CommandDriver` feeds
``i_cmd`` with random idle cycles, an :class:`EventMonitor` takes ``o_event`` under random
backpressure, and a :class:`Scoreboard` compares every event bit for bit, in order, against the
reference model (``tickwire.sim.model``) run on the same commands. A functional coverage tally
(:func:`coverage`) of the event stream is logged at the end and written as JSON.

The bench is configured through the environment (``run_bench`` sets it):

==================  ===========================================================
``TW_COMMANDS``     file of ``Command.to_bytes()`` records
``TW_PARAMS``       ``ModelParams`` as JSON
``TW_MODE``         ``check`` (scoreboard against the model) or ``engine`` (no model,
                    no idle, no backpressure: write the events to ``TW_EVENTS``)
``TW_EVENTS``       output file of ``Event`` records (``engine`` mode)
``TW_COVERAGE``     output JSON of the coverage tally (``check`` mode)
``TW_SEED``, ``TW_IDLE``, ``TW_STALL``  randomness of the driver and the monitor
==================  ===========================================================
"""

import dataclasses
import json
import os
import random
from collections import Counter
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from tickwire.protocol.link import (
    COMMAND_BYTES,
    EVENT_BYTES,
    Action,
    Command,
    Event,
    EventKind,
    ModelParams,
    Reason,
    ReplaceMode,
    Stp,
    Tif,
)
from tickwire.sim.model import ExchangeModel

__all__ = ["TB", "CommandDriver", "EventMonitor", "Scoreboard", "coverage", "group_events",
           "run_bench", "read_commands", "write_commands"]

_E = EventKind
_KIND = {k.value: k.name for k in EventKind}
_REASON = {r.value: r.name for r in Reason}


# -- record files ------------------------------------------------------------------------------

def write_commands(path, commands):
    Path(path).write_bytes(b"".join(cmd.to_bytes() for cmd in commands))


def read_commands(path):
    """Commands from a record file (values outside an enum, such as STP mode 3, which the
    benches send on purpose, stay plain integers)."""
    raw = Path(path).read_bytes()
    return [Command.from_bytes(raw[i:i + COMMAND_BYTES]) for i in range(0, len(raw), COMMAND_BYTES)]


_EVENT_OFFSETS = Event.BITS
_COMMAND_OFFSETS = Command.BITS


def field(value, name):
    """One field of an event bit vector."""
    shift, mask = _EVENT_OFFSETS[name]
    return (value >> shift) & mask


# -- functional coverage -----------------------------------------------------------------------

def coverage(commands, events):
    """Tally of what the event stream exercised: ``events[i]`` are command ``i``'s event bit
    vectors. Bins: order type × outcome, STP mode × action, replace mode, band/halt/breaker,
    full book, walk depth (price levels per aggressing command), expiry, cancel outcome."""
    tally = Counter()
    for cmd, evs in zip(commands, events):
        kinds = [field(e, "kind") for e in evs]
        reasons = [field(e, "reason") for e in evs]
        if cmd.action == Action.NEW:
            order = "MARKET" if cmd.market else Tif(cmd.tif).name
            if cmd.min_qty:
                order += "+MIN"
            if kinds[0] == _E.REJECT:
                outcome = "reject " + _REASON.get(reasons[0], "?")
            else:
                traded = _E.EXECUTE in kinds
                end = kinds[-1]
                if end == _E.ADD:
                    outcome = "partial, rest" if traded else "rest"
                elif end == _E.KILL:
                    outcome = ("partial, " if traded else "") + "kill " + _REASON.get(
                        reasons[-1], "?")
                else:
                    outcome = "filled"
            tally[f"order {order}: {outcome}"] += 1
        elif cmd.action == Action.CANCEL:
            tally[f"cancel: {_KIND[kinds[0]]} {_REASON.get(reasons[0], '')}".rstrip()] += 1
        elif cmd.action == Action.REPLACE:
            if kinds[0] == _E.REPLACE and field(evs[0], "mode") < 3:
                tally[f"replace {ReplaceMode(field(evs[0], 'mode')).name}"] += 1
            else:
                tally[f"replace {_KIND[kinds[0]]} {_REASON.get(reasons[0], '')}".rstrip()] += 1
        elif cmd.action in (Action.HALT, Action.RESUME):
            tally[f"{Action(cmd.action).name.lower()}: {_KIND[kinds[0]]}"] += 1
        stp_name = Stp(cmd.stp).name if cmd.stp < 3 else "STP3"
        for e in evs:
            kind, reason = field(e, "kind"), field(e, "reason")
            if reason == Reason.SELF_TRADE and kind in (_E.DELETE, _E.KILL):
                tally[f"stp {stp_name}: {_KIND[kind]}"] += 1
            if kind == _E.TRADING and reason == Reason.BREAKER:
                tally["breaker trip"] += 1
            if reason == Reason.BOOK_FULL:
                tally["book full"] += 1
            if reason == Reason.OUT_OF_BAND:
                tally["out of band"] += 1
            if reason == Reason.HALTED:
                tally["halted reject"] += 1
            if kind == _E.DELETE and reason == Reason.EXPIRED:
                tally["expired DAY order"] += 1
        prices = {field(e, "price") for e in evs if field(e, "kind") == _E.EXECUTE}
        if prices:
            tally[f"walk {min(len(prices), 4)}{'+' if len(prices) >= 4 else ''} level(s)"] += 1
    return tally


def format_coverage(tally):
    width = max((len(k) for k in tally), default=0)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in sorted(tally.items()))


# -- bench components --------------------------------------------------------------------------

class TB:
    """Clock, reset and the stream components bound to the DUT's ports."""

    def __init__(self, dut, seed=1, idle=0.0, stall=0.0):
        self.dut = dut
        self.log = dut._log
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.driver = CommandDriver(dut, random.Random(seed), idle)
        self.monitor = EventMonitor(dut, random.Random(seed + 1), stall)

    async def reset(self):
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.rst.value = 1
        dut.i_cmd__valid.value = 0
        dut.o_event__ready.value = 0
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst.value = 0


class CommandDriver:
    """Drives ``i_cmd`` with commands, idling each cycle before a command with probability
    ``idle``. Inputs change on the falling clock edge and the handshake is judged on settled
    values (``ReadOnly``), so no write races the rising edge in any simulator."""

    def __init__(self, dut, rng, idle):
        self.dut, self.rng, self.idle = dut, rng, idle

    async def send(self, commands):
        dut, clk = self.dut, self.dut.clk
        pending = iter(commands)
        current = None
        while True:
            await FallingEdge(clk)
            if current is None:
                if self.idle and self.rng.random() < self.idle:
                    dut.i_cmd__valid.value = 0
                    continue
                current = next(pending, None)
                if current is None:
                    dut.i_cmd__valid.value = 0
                    return
                dut.i_cmd__payload.value = current.to_int()
                dut.i_cmd__valid.value = 1
            await ReadOnly()
            if dut.i_cmd__ready.value == 1:
                current = None          # taken at the next rising edge


class EventMonitor:
    """Takes ``o_event`` beats, dropping ``ready`` with probability ``stall`` per cycle, and hands
    each event bit vector to ``callback``. Checks that an offered event stays offered, unchanged,
    until taken."""

    def __init__(self, dut, rng, stall):
        self.dut, self.rng, self.stall = dut, rng, stall

    async def run(self, commands_expected, callback):
        dut, clk = self.dut, self.dut.clk
        done = 0
        held = None
        while done < commands_expected:
            await FallingEdge(clk)
            ready = not (self.stall and self.rng.random() < self.stall)
            dut.o_event__ready.value = int(ready)
            await ReadOnly()
            valid = dut.o_event__valid.value == 1
            value = dut.o_event__payload.value.to_unsigned() if valid else None
            if held is not None:
                assert valid and value == held, "o_event changed while stalled"
            held = None
            if valid and ready:
                callback(value)
                done += field(value, "last")
            elif valid:
                held = value
        await FallingEdge(clk)
        dut.o_event__ready.value = 0


class Scoreboard:
    """Expected event bit vectors from the model, compared in order with what comes out."""

    def __init__(self, params, commands):
        model = ExchangeModel(params)
        self.commands = commands
        self.expected = [[e.to_int() for e in model.process(cmd)] for cmd in commands]
        self.flat = [(i, v) for i, evs in enumerate(self.expected) for v in evs]
        self.got = 0

    def check(self, value):
        assert self.got < len(self.flat), f"extra event {value:#x}"
        index, want = self.flat[self.got]
        if value != want:
            names = [n for n in _EVENT_OFFSETS if field(value, n) != field(want, n)]
            raise AssertionError(
                f"event {self.got} of command #{index} {self.commands[index]} differs in "
                f"{names}: model {_describe(want)}, hdl {_describe(value)}")
        self.got += 1


def _describe(value):
    return {n: field(value, n) for n in _EVENT_OFFSETS if field(value, n)}


def _params():
    return ModelParams(**json.loads(os.environ["TW_PARAMS"]))


@cocotb.test()
async def run_commands(dut):
    """Play ``TW_COMMANDS`` through the engine; check against the model or record the events."""
    mode = os.environ.get("TW_MODE", "check")
    commands = read_commands(os.environ["TW_COMMANDS"])
    seed = int(os.environ.get("TW_SEED", "1"))
    if mode == "engine":
        tb = TB(dut, seed)
    else:
        tb = TB(dut, seed, float(os.environ.get("TW_IDLE", "0.2")),
                float(os.environ.get("TW_STALL", "0.2")))
    await tb.reset()
    out = []
    if mode == "engine":
        callback = out.append
    else:
        board = Scoreboard(_params(), commands)

        def callback(value):
            board.check(value)
            out.append(value)
    cocotb.start_soon(tb.driver.send(commands))
    start = cocotb.utils.get_sim_time("ns")
    await tb.monitor.run(len(commands), callback)
    cycles = int((cocotb.utils.get_sim_time("ns") - start) // 10)
    tb.log.info("%d commands, %d events, %d cycles", len(commands), len(out), cycles)
    if mode == "engine":
        Path(os.environ["TW_EVENTS"]).write_bytes(
            b"".join(v.to_bytes(EVENT_BYTES, "little") for v in out))
        return
    assert board.got == len(board.flat), f"{board.got} of {len(board.flat)} events"
    per_command = board.expected
    tally = coverage(commands, per_command)
    tb.log.info("functional coverage (%d bins):\n%s", len(tally), format_coverage(tally))
    if os.environ.get("TW_COVERAGE"):
        Path(os.environ["TW_COVERAGE"]).write_text(json.dumps(
            {"cycles": cycles, "events": len(out), "bins": dict(tally)}, indent=1))


# -- running it --------------------------------------------------------------------------------

def run_bench(params, commands, build_dir, sim=None, mode="check", seed=1, idle=0.2, stall=0.2,
              work_dir=None):
    """Build the engine for ``sim`` in ``build_dir`` and run ``commands`` through this bench.

    ``mode="engine"`` returns the events per command (``list[list[Event]]``); ``"check"``
    returns the coverage report (``{"cycles", "events", "bins"}``) after the scoreboard passed.
    """
    from tickwire.hdl.matching_engine import MatchingEngine
    from tickwire.sim.runner import run_cocotb

    work = Path(work_dir or build_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cmd_path, ev_path, cov_path = (work / "commands.bin", work / "events.bin",
                                   work / "coverage.json")
    write_commands(cmd_path, commands)
    env = {"TW_COMMANDS": str(cmd_path), "TW_PARAMS": json.dumps(dataclasses.asdict(params)),
           "TW_MODE": mode, "TW_EVENTS": str(ev_path), "TW_COVERAGE": str(cov_path),
           "TW_SEED": str(seed), "TW_IDLE": str(idle), "TW_STALL": str(stall)}
    run_cocotb(MatchingEngine(params), "matching_engine", "tickwire.sim.tb_matching_engine",
               build_dir=build_dir, extra_env=env, sim=sim)
    if mode != "engine":
        return json.loads(cov_path.read_text())
    return group_events(ev_path.read_bytes(), len(commands), "cocotb engine")


def group_events(raw, count, who):
    """Event records (``raw``, as the benches write them) → one list per command, ``last``
    ending each; raises unless there are exactly ``count`` complete groups."""
    out, current = [], []
    for i in range(0, len(raw), EVENT_BYTES):
        event = Event.from_bytes(raw[i:i + EVENT_BYTES])
        current.append(event)
        if event.last:
            out.append(current)
            current = []
    if len(out) != count or current:
        raise RuntimeError(f"the {who} returned events for {len(out)} of {count} commands")
    return out
