"""The simulated gateware as engine transports, registered as ``tickwire.engines`` entry points
(``amaranth``, ``cocotb``): the host finds them through :mod:`tickwire.engine.registry` and never
imports them."""

import tempfile
from collections import deque
from pathlib import Path

from amaranth.sim import Simulator
from tickwire.engine.registry import InProcessEngine
from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.protocol import pcap
from tickwire.protocol.feed import DEFAULT_SESSION, MAX_PAYLOAD, FeedAddress
from tickwire.protocol.link import Event, ModelParams
from tickwire.sim.runner import BUILD_ROOT, simulator_name
from tickwire.sim.tb_exchange_core import run_core

__all__ = ["AmaranthEngine", "CocotbEngine"]


class AmaranthEngine(InProcessEngine):
    """The gateware matching engine in Amaranth's Python simulator, in this process.

    One testbench drives ``i_cmd`` and takes ``o_event`` (always ready). ``process`` queues a
    command and steps the simulator until that command's ``last`` event came out;
    ``process_all`` queues them all, so that the engine runs back to back. ``cycles`` counts
    clock cycles so far.
    """

    name = "amaranth"

    def __init__(self, params=None):
        super().__init__(params or ModelParams())
        params = self.params
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


class CocotbEngine:
    """The gateware's Verilog in a cocotb simulation, run as a batch in a subprocess: the
    matching engine *and* the feed encoder (``tickwire.hdl.exchange_core.EthernetExchangeCore``).

    ``process_all(commands)`` writes the commands as ``Command.to_bytes()`` records, runs the
    cocotb bench ``tickwire.sim.tb_exchange_core`` (commands back to back, outputs always ready)
    and returns the events per command; the host makes the private reports from them. The
    gateware's feed is then in ``frames``: every Ethernet frame, FCS checked and stripped, as
    ``(time_ns, frame)`` with the time of the event that closed its packet (the times
    ``TradingSession`` gives its pcap records), ending with the end of session, which the bench
    sends once the last command's feed is out. ``tickwire.replay`` writes its pcap from them.

    The feed encoder is built as the host's feed: session ``DEFAULT_SESSION``, the
    feed's payload limit (``MAX_PAYLOAD``), the ``FeedAddress`` addresses, and no heartbeats
    (``heartbeat_cycles=0``; a replay's pcap has none, and the bench fails on one).

    The spec ``cocotb:icarus`` picks Icarus; the default is Verilator. ``build_dir`` (default
    ``build/sim/<sim>/exchange_core_<capacity>``) is kept between runs; a given directory gets
    its own sibling ``<dir>_exchange_core``, so that it never mixes with another design's build.
    """

    name = "cocotb"
    batch = True

    def __init__(self, params=None, sim=None, build_dir=None):
        self.params = params or ModelParams()
        self.sim = sim
        self.build_dir = build_dir
        self.frames = None

    @staticmethod
    def feed_options(params):
        """The ``FeedEncoder`` parameters matching the host's feed (see the class)."""
        return {"session": DEFAULT_SESSION, "max_payload": MAX_PAYLOAD, "heartbeat_cycles": 0,
                "src_mac": pcap.DEFAULT_SRC_MAC, "ttl": 64, "src_ip": FeedAddress.source,
                "group": FeedAddress.group, "src_port": FeedAddress.source_port,
                "dst_port": FeedAddress.port, "locates": max(64, params.max_symbols + 1)}

    def process(self, cmd):
        raise TypeError("the cocotb engine is a batch engine: use process_all(commands) "
                        "(tickwire replay does)")

    def process_all(self, commands):
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


    @classmethod
    def from_spec(cls, option, params=None):
        """``cocotb`` (Verilator) or ``cocotb:icarus``."""
        return cls(params, sim=option or None)
