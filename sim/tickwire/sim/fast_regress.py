"""The matching engine's long regression: Verilator with a C++ main, checked against the model.

The cocotb bench (``tickwire.sim.tb_matching_engine``) runs Python every clock cycle, about 350
commands a second on this machine: ten million would take eight hours. Here a C++ main
(``engine_harness.cpp``) drives the Verilated engine with the same random idle cycles and
backpressure and writes the events to a file; the reference model
(``tickwire.sim.model``) then computes the expected events and the two byte strings must be
equal. ``run_regression(params, commands, build_dir, seed=...)`` does one run and returns a
:class:`RegressionRun`; :func:`build_harness` builds the simulator once per book.
"""

import fcntl
import hashlib
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.protocol.link import COMMAND_BYTES, EVENT_BYTES, Event
from tickwire.sim.model import ExchangeModel
from tickwire.sim.runner import prepare_simulator, write_verilog

__all__ = ["RegressionMismatch", "RegressionRun", "build_harness", "expected_events",
           "run_regression"]

_HARNESS = Path(__file__).with_name("engine_harness.cpp")
_TOP = "matching_engine"


class RegressionMismatch(AssertionError):
    """The engine's events differ from the model's; the message names the first difference."""


@dataclass(frozen=True)
class RegressionRun:
    """One regression run.

    Attributes
    ----------
    commands, events, cycles : int
        Commands played, events compared (all equal to the model's), clock cycles simulated.
    seconds_sim, seconds_model : float
        Wall time of the Verilated run and of the model plus the comparison.
    """

    commands: int
    events: int
    cycles: int
    seconds_sim: float
    seconds_model: float


def build_harness(params, build_dir):
    """Verilate ``MatchingEngine(params)`` with the C++ main into ``build_dir``; return the
    executable. Rebuilt only when the Verilog or the main changed; concurrent callers (pytest
    workers) wait for one build."""
    prepare_simulator("verilator")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        source = write_verilog(MatchingEngine(params), _TOP, build_dir)
        stamp = hashlib.sha256(source.read_bytes() + _HARNESS.read_bytes()).hexdigest()
        binary, stamp_file = build_dir / "harness", build_dir / "harness.sha256"
        if binary.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            return binary
        run = subprocess.run(
            ["verilator", "--cc", "--exe", "--build", "-j", "2", "-O3", "--top-module", _TOP,
             "-Wno-fatal", "-Wno-lint", "-Wno-style", "--Mdir", str(build_dir / "obj"),
             "-o", str(binary), str(source), str(_HARNESS)],
            cwd=build_dir, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"verilator failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        stamp_file.write_text(stamp)
        return binary


def expected_events(params, commands):
    """The model's events for ``commands``, as one byte string of event records."""
    model = ExchangeModel(params)
    return b"".join(event.to_bytes() for command in commands for event in model.process(command))


def _first_difference(got, want, commands, params):
    """Describe the first event where ``got`` and ``want`` (event record strings) differ."""
    index = next((i for i in range(0, min(len(got), len(want)), EVENT_BYTES)
                  if got[i:i + EVENT_BYTES] != want[i:i + EVENT_BYTES]), None)
    if index is None:
        return (f"the engine sent {len(got) // EVENT_BYTES} events, the model "
                f"{len(want) // EVENT_BYTES}")
    number, seen, model = 0, 0, ExchangeModel(params)
    for number, command in enumerate(commands):
        seen += len(model.process(command))
        if seen * EVENT_BYTES > index:
            break
    return (f"event {index // EVENT_BYTES} (command #{number}: {commands[number]}):\n"
            f"  model {Event.from_bytes(want[index:index + EVENT_BYTES])}\n"
            f"  hdl   {Event.from_bytes(got[index:index + EVENT_BYTES])}")


def run_regression(params, commands, build_dir, *, seed=1, idle=0.0, stall=0.05):
    """Play ``commands`` through the Verilated engine (idle cycles before a command and
    dropped ``ready`` cycles with the given probabilities) and compare every event byte for
    byte with the model's; return a :class:`RegressionRun`.

    Raises
    ------
    RegressionMismatch
        If an event differs, is missing or is extra.
    RuntimeError
        If the harness reports a hang or an event that changed while stalled.
    """
    binary = build_harness(params, build_dir)
    work = Path(build_dir).resolve() / f"run_{seed}"
    work.mkdir(exist_ok=True)
    cmd_path, ev_path = work / "commands.bin", work / "events.bin"
    cmd_path.write_bytes(b"".join(command.to_bytes() for command in commands))
    start = time.monotonic()
    run = subprocess.run(
        [str(binary), str(cmd_path), str(ev_path), str(seed), str(round(idle * 1000)),
         str(round(stall * 1000)), str(Event.BITS["last"][0]), str(COMMAND_BYTES),
         str(EVENT_BYTES)],
        capture_output=True, text=True, check=False)
    seconds_sim = time.monotonic() - start
    if run.returncode != 0:
        raise RuntimeError(f"engine harness exit {run.returncode}: {run.stderr.strip()}")
    cycles = int(run.stdout.split()[-1])
    start = time.monotonic()
    got, want = ev_path.read_bytes(), expected_events(params, commands)
    if got != want:
        raise RegressionMismatch(_first_difference(got, want, commands, params))
    return RegressionRun(commands=len(commands), events=len(want) // EVENT_BYTES, cycles=cycles,
                         seconds_sim=seconds_sim, seconds_model=time.monotonic() - start)

