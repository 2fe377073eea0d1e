"""The gateware's figures for ``make bench`` (``tickwire.benchmarks`` entry points): cycles
from simulation, resources and Fmax from Yosys + nextpnr, the link's throughput, and the boards'
last build reports."""

import functools

from tickwire.boards.synth import synth_figures
from tickwire.protocol.link import ModelParams
from tickwire.sim.engine_cycles import hdl_engine_cycles
from tickwire.sim.engine_synth import engine_synth
from tickwire.sim.feed_cycles import estimate_luts, measure_cycles
from tickwire.sim.link_bench import link_figures
from tickwire.util.figure import Figure

__all__ = ["engine_cycle_figures", "engine_synthesis_figures", "feed_figures",
           "link_board_figures"]


@functools.lru_cache(maxsize=1)
def _engine_cycles():
    return hdl_engine_cycles()


#: exchange-core (Java, LMAX-style) publishes 5 M operations/s on one core.
EXCHANGE_CORE_OPS = 5_000_000


def engine_cycle_figures():
    c = _engine_cycles()
    sim = "Amaranth simulator, 64-tick band"
    return [
        Figure("engine: non-crossing add, cycles per command", c["add"], "cycles",
               note=f"goal 1; {sim}"),
        Figure("engine: cancel, cycles per command", c["cancel"], "cycles", note="goal 1"),
        Figure("engine: fill within a level", c["fill_in_level"], "cycles",
               note="goal 1 per fill; open FPGA book ~3"),
        Figure("engine: fill at the next price level", c["fill_new_level"], "cycles"),
        Figure("engine: add latency, last input beat → first event", c["add_latency"],
               "cycles", note="goal ≤ 4; commercial book builder: 11 to an update"),
        Figure("engine: cancel latency", c["cancel_latency"], "cycles"),
        Figure("engine: market order with one fill, latency", c["market_1_fill_latency"],
               "cycles"),
        Figure("engine: FOK/min-qty pre-count per resting order", c["fok_count_per_order"],
               "cycles"),
    ]


def engine_synthesis_figures():
    """Resources and Fmax of the engine alone (a 4-pin wrapper around it), at the largest
    capacities that place on each device today; the issue's capacities do not fit."""
    rows = []
    for device, params in (
            ("up5k", ModelParams(max_orders=256, max_symbols=2, band_ticks=128)),
            ("ecp5", ModelParams(max_orders=1024, max_symbols=2, band_ticks=1024))):
        r = engine_synth(device, params)
        built = f"{params.max_orders} orders, {params.max_symbols} symbols, " \
                f"{params.band_ticks} ticks"
        if r.get("fmax_mhz") is not None:
            rows.append(Figure(f"engine {device} Fmax", r["fmax_mhz"], "MHz",
                               peer=f"goal {r['target_mhz']} MHz",
                               ratio=round(r["fmax_mhz"] / r["target_mhz"], 3), note=built))
            # Derived, not measured on a board: Fmax over the simulated cycles per command.
            adds = r["fmax_mhz"] * 1e6 / _engine_cycles()["add"]
            rows.append(Figure(f"engine {device}: non-crossing adds/s at Fmax", adds, "ops/s",
                               peer="exchange-core 5 M ops/s",
                               ratio=round(adds / EXCHANGE_CORE_OPS, 3),
                               note=f"Fmax / {_engine_cycles()['add']} cycles per add"))
        for cell, (used, total) in r.get("nextpnr_util", {}).items():
            if cell in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "TRELLIS_COMB",
                        "TRELLIS_FF", "DP16KD"):
                rows.append(Figure(f"engine {device} {cell}", used, "cells",
                                   peer=f"{total} on device", ratio=round(used / total, 3),
                                   note=r.get("error", "")[:60] or None))
    return rows


def feed_figures():
    c = measure_cycles()
    cells = estimate_luts()
    return [
        Figure("feed encoder: event → first frame byte", c["latency_cycles"], "cycles",
               note="from the event offered, 12-byte S message; goal ≤ 3 (MoldUDP64 counts the packet first)"),
        Figure("feed encoder: bytes per cycle inside frames", c["bytes_per_cycle"], "B/cycle",
               note=f"{c['frames']} frames; goal 1.0 (1 GbE at 125 MHz)"),
        Figure("feed encoder: iCE40 SB_LUT4 (synth_ice40)", cells.get("SB_LUT4", 0), "LUT4",
               note=f"{cells.get('SB_RAM40_4K', 0)} SB_RAM40_4K, {cells.get('SB_DFF', 0)}+ FF"),
    ]


def link_board_figures():
    rows = link_figures()
    for board in ("icebreaker", "ulx3s"):
        # From the last `make bitstream BOARD=...` (a build takes minutes; bench does not run it).
        rows += synth_figures(f"build/{board}/report.json")
    return rows
