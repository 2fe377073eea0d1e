"""Engine transports: one interface, whatever runs the matching engine.

An engine has ``params`` (its :class:`~tickwire.protocol.link.ModelParams`), ``process(command)
-> list[Event]`` and ``close()``. The host never knows which one it talks to. A *batch* engine
(``batch = True``) cannot answer one command at a time; it has ``process_all(commands) ->
list[list[Event]]`` instead (one list per command), and :func:`tickwire.offline.replay.replay` plays
it in three passes (see there). A batch engine that runs the feed encoder too sets ``frames``
after ``process_all``: the feed's Ethernet frames (no FCS) as ``[(time_ns, frame)]``, which the
replay writes to its pcap instead of the host's own encoding (``None``: no feed). A device
that runs the feed encoder behind a link (``serial``) has ``feed_packets()`` instead: the
MoldUDP64 packets it sent, once it has sent everything, which the replay frames and writes
(:mod:`tickwire.offline.device_feed`); and ``counters``, its link's counts for the summary.

========  =====================================================================
model     the reference model, in process
amaranth  the gateware (``tickwire.hdl.matching_engine``) in Amaranth's simulator, in process
cocotb    the gateware's Verilog, engine and feed encoder, under cocotb (Verilator, or
          ``cocotb:icarus``), batch; the replay's pcap comes from the gateware's feed
serial    a board, or ``make board-pty`` behind a pseudo-terminal, over a serial port:
          ``serial:/dev/ttyUSB1[,baud=3000000][,retransmit=S][,timeout=S][,board=NAME]``
          (any pyserial URL)
========  =====================================================================

Engines are found through the ``tickwire.engines`` entry points (``pyproject.toml``), as Glasgow
finds its applets: each names a class with ``from_spec(option, params)``, where ``option`` is
what follows the name's colon and ``params`` the capacity asked for (``None``: the engine's own
default; a board reports its own). The host imports none of the simulated engines.
"""

from importlib.metadata import entry_points

__all__ = ["ENGINE_HELP", "EngineSpecError", "InProcessEngine", "engine_names", "open_engine"]

GROUP = "tickwire.engines"

#: What ``--engine`` accepts, for help texts.
ENGINE_HELP = ("engine: model (default), amaranth (Amaranth simulator), cocotb or cocotb:icarus "
               "(Verilator / Icarus), serial:URL[,baud=N][,retransmit=S][,timeout=S][,board=NAME] "
               "(a board, or make board-pty's /dev/pts/N)")


class EngineSpecError(ValueError):
    """An ``--engine`` spec names no engine, or an option the engine does not take."""


def _entry_points():
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def engine_names():
    """The registered engine names."""
    return sorted(_entry_points())


def open_engine(spec, params=None):
    """Open an engine by its command-line spec (``model``, ``amaranth``, ``cocotb[:icarus]``,
    ``serial:URL``); ``params`` is the capacity (``None``: the engine's default)."""
    name, _, option = spec.partition(":")
    found = _entry_points().get(name)
    if found is None:
        raise EngineSpecError(f"unknown engine {spec!r}; choose from "
                              f"{', '.join(engine_names())}")
    return found.load().from_spec(option, params)


class InProcessEngine:
    """Base of the engines that answer one command at a time in this process and take no
    option after their name: ``from_spec``, ``process_all`` and ``close`` for them."""

    batch = False

    def __init__(self, params):
        self.params = params

    @classmethod
    def from_spec(cls, option, params=None):
        if option:
            raise EngineSpecError(f"the {cls.name} engine takes no option (got {option!r})")
        return cls(params)

    def process_all(self, commands):
        return [self.process(cmd) for cmd in commands]

    def close(self):
        pass
