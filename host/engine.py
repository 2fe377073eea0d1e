"""Engine transports: one interface, whatever runs the matching engine.

An engine has ``params`` (its :class:`~tickwire.sim.model.ModelParams`), ``process(command)
-> list[Event]`` and ``close()``. The host never knows which one it talks to. A *batch* engine
(``batch = True``) cannot answer one command at a time; it has ``process_all(commands) ->
list[list[Event]]`` instead (one list per command), and :func:`tickwire.replay.replay` plays
it in three passes (see there). A batch engine that runs the feed encoder too sets ``frames``
after ``process_all``: the feed's Ethernet frames (no FCS) as ``[(time_ns, frame)]``, which the
replay writes to its pcap instead of the host's own encoding (``None``: no feed).

========  =====================================================================
model     the reference model, in process
amaranth  the gateware (``tickwire.hdl.matching_engine``) in Amaranth's simulator, in process
cocotb    the gateware's Verilog, engine and feed encoder, under cocotb (Verilator, or
          ``cocotb:icarus``), batch; the replay's pcap comes from the gateware's feed
serial    a board, or ``sim/board_pty`` behind a pseudo-terminal, over a serial port:
          ``serial:/dev/ttyUSB1[,baud=3000000][,timeout=S]`` (any pyserial URL)
========  =====================================================================
"""

import tempfile
from collections import deque

from .protocol.link import Event
from .sim.model import ExchangeModel, ModelParams

__all__ = ["ModelEngine", "AmaranthEngine", "CocotbEngine", "open_engine", "ENGINES"]


class ModelEngine:
    """The reference model (``tickwire.sim.model``) in this process."""

    name = "model"
    batch = False

    def __init__(self, params=ModelParams()):
        self.params = params
        self.model = ExchangeModel(params)
        self.process = self.model.process

    def process_all(self, commands):
        return [self.process(cmd) for cmd in commands]

    def close(self):
        pass


class AmaranthEngine:
    """The gateware matching engine in Amaranth's Python simulator, in this process.

    One testbench drives ``i_cmd`` and takes ``o_event`` (always ready). ``process`` queues a
    command and steps the simulator until that command's ``last`` event came out;
    ``process_all`` queues them all, so that the engine runs back to back. ``cycles`` counts
    clock cycles so far.
    """

    name = "amaranth"
    batch = False

    def __init__(self, params=ModelParams()):
        from amaranth.sim import Simulator

        from .hdl.matching_engine import MatchingEngine

        self.params = params
        self.dut = MatchingEngine(params)
        self._queue = deque()
        self._events = []
        self._finished = deque()      # one list of events per finished command
        self.cycles = 0
        self.sim = Simulator(self.dut)
        self.sim.add_clock(1e-8)
        self.sim.add_testbench(self._bench, background=True)

    async def _bench(self, ctx):
        dut = self.dut
        cmd_port, ev_port = dut.i_cmd, dut.o_event
        payload = ev_port.payload.as_value()
        ctx.set(ev_port.ready, 1)
        driving = False
        while True:
            if not driving and self._queue:
                ctx.set(cmd_port.payload.as_value(), self._queue.popleft().to_int())
                ctx.set(cmd_port.valid, 1)
                driving = True
            _, _, ready, valid, value = await ctx.tick().sample(cmd_port.ready, ev_port.valid,
                                                               payload)
            self.cycles += 1
            if driving and ready:
                driving = False
                ctx.set(cmd_port.valid, 0)
            if valid:
                event = Event.from_int(value)
                self._events.append(event)
                if event.last:
                    self._finished.append(self._events)
                    self._events = []

    def _run_until(self, count):
        while len(self._finished) < count:
            self.sim.advance()

    def process(self, cmd):
        self._queue.append(cmd)
        self._run_until(1)
        return self._finished.popleft()

    def process_all(self, commands):
        commands = list(commands)
        out = []
        for start in range(0, len(commands), 256):
            chunk = commands[start:start + 256]
            self._queue.extend(chunk)
            self._run_until(len(chunk))
            out.extend(self._finished.popleft() for _ in chunk)
        return out

    def close(self):
        pass


class CocotbEngine:
    """The gateware's Verilog in a cocotb simulation, run as a batch in a subprocess: the
    matching engine *and* the feed encoder (``tickwire.hdl.exchange_core.EngineFeedCore``).

    ``process_all(commands)`` writes the commands as ``Command.to_bytes()`` records, runs the
    cocotb bench ``tickwire.sim.tb_exchange_core`` (commands back to back, outputs always ready)
    and returns the events per command; the host makes the private reports from them. The
    gateware's feed is then in ``frames``: every Ethernet frame, FCS checked and stripped, as
    ``(time_ns, frame)`` with the time of the event that closed its packet (the times
    ``TradingSession`` gives its pcap records), ending with the end of session, which the bench
    sends once the last command's feed is out. ``tickwire.replay`` writes its pcap from them.

    The feed encoder is built as the host's feed: session ``DEFAULT_SESSION``, the
    ``FeedPublisher`` payload limit, the ``FeedAddress`` addresses, and no heartbeats
    (``heartbeat_cycles=0``; a replay's pcap has none, and the bench fails on one).

    The spec ``cocotb:icarus`` picks Icarus; the default is Verilator. ``build_dir`` (default
    ``build/sim/<sim>/exchange_core_<capacity>``) is kept between runs; a given directory gets
    its own sibling ``<dir>_exchange_core``, so that it never mixes with another design's build.
    """

    name = "cocotb"
    batch = True

    def __init__(self, params=ModelParams(), sim=None, build_dir=None):
        self.params = params
        self.sim = sim
        self.build_dir = build_dir
        self.frames = None

    @staticmethod
    def feed_options(params):
        """The ``FeedEncoder`` parameters matching the host's feed (see the class)."""
        import inspect

        from .feed import DEFAULT_SESSION, FeedPublisher
        from .protocol import pcap
        from .session import FeedAddress

        max_payload = inspect.signature(FeedPublisher).parameters["max_payload"].default
        return {"session": DEFAULT_SESSION, "max_payload": max_payload, "heartbeat_cycles": 0,
                "src_mac": pcap.DEFAULT_SRC_MAC, "ttl": 64, "src_ip": FeedAddress.source,
                "group": FeedAddress.group, "src_port": FeedAddress.source_port,
                "dst_port": FeedAddress.port, "locates": max(64, params.max_symbols + 1)}

    def process(self, cmd):
        raise TypeError("the cocotb engine is a batch engine: use process_all(commands) "
                        "(tickwire replay does)")

    def process_all(self, commands):
        from pathlib import Path

        from .sim.runner import BUILD_ROOT, simulator_name
        from .sim.tb_exchange_core import run_core

        commands = list(commands)
        p = self.params
        sim = self.sim or simulator_name()
        if self.build_dir is None:
            # One build per simulator and capacity, kept between runs.
            build_dir = BUILD_ROOT / sim / (
                f"exchange_core_o{p.max_orders}_s{p.max_symbols}_b{p.band_ticks}"
                f"_q{p.max_qty}_l{p.max_levels or 0}")
        else:
            # A sibling, never a subdirectory: a build nested in another design's build links
            # that design's cocotb main (``../verilator.o``) and crashes.
            build_dir = Path(f"{self.build_dir}_exchange_core")
        with tempfile.TemporaryDirectory(prefix="tickwire-cocotb-") as tmp:
            events, self.frames = run_core(p, commands, build_dir=build_dir.resolve(),
                                           feed_options=self.feed_options(p), sim=sim,
                                           work_dir=tmp)
        return events

    def close(self):
        pass


def _serial_engine(spec, params):
    from .serial_link import SerialEngine
    # The board reports its own capacity; only an explicit choice is passed on.
    return SerialEngine.from_spec(spec, None if params == ModelParams() else params)


ENGINES = {"model": ModelEngine, "amaranth": AmaranthEngine, "cocotb": CocotbEngine,
           "serial": _serial_engine}


def open_engine(spec, params=ModelParams()):
    """Open an engine by its command-line name (``model``, ``amaranth``, ``cocotb[:icarus]``,
    ``serial:URL``)."""
    name, _, option = spec.partition(":")
    if name not in ENGINES:
        raise ValueError(f"unknown engine {spec!r}; choose from {', '.join(ENGINES)}")
    if name == "cocotb" and option:
        return CocotbEngine(params, sim=option)
    if name == "serial":
        return _serial_engine(spec, params)
    return ENGINES[name](params)
