"""The gateware's figures for ``make bench`` (``tickwire.benchmarks`` entry points): cycles
from simulation, resources and Fmax from Yosys + nextpnr, the link's throughput, and the boards'
last build reports."""

import functools

from tickwire.boards.synth import synth_figures
from tickwire.protocol.link import ModelParams
from tickwire.sim.engine_cycles import hdl_engine_cycles
from tickwire.sim.engine_synth import engine_options, engine_synth
from tickwire.sim.feed_cycles import estimate_luts, measure_cycles
from tickwire.sim.link_bench import link_figures
from tickwire.util.figure import Figure

__all__ = ["engine_cycle_figures", "engine_synthesis_figures", "feed_figures",
           "link_board_figures"]


@functools.lru_cache(maxsize=4)
def _engine_cycles(**engine):
    return hdl_engine_cycles(**engine)


#: exchange-core (Java, LMAX-style) publishes 5 M operations/s on one core.
EXCHANGE_CORE_OPS = 5_000_000


def engine_cycle_figures():
    c = _engine_cycles()
    sim = "Amaranth simulator, 64 orders / 2 symbols / 64-tick band"
    return [
        Figure("engine: non-crossing add, sustained", c["add_sustained"], "cycles",
               note=f"goal 1; 8 adds back to back, half opening a level; {sim}; with "
               "best-price registers (ULX3S), 4 without (iCEBreaker)"),
        Figure("engine: cancel, sustained", c["cancel_sustained"], "cycles",
               note="goal 1; 8 full cancels back to back"),
        Figure("engine: reduce, sustained", c["reduce_sustained"], "cycles", note="goal 1"),
        Figure("engine: kept replace, sustained", c["replace_kept_sustained"], "cycles",
               note="goal 1"),
        Figure("engine: fill within a level", c["fill_in_level"], "cycles",
               note="goal 1 per fill; open FPGA book ~3"),
        Figure("engine: next level", c["fill_new_level"], "cycles",
               note="goal ≤ 2; per fill when each resting order is on its own level; the "
               "walker reads the next level's head ahead (lookahead), also 2 with the "
               "order-RAM output register; 4 without it (the boards today), 5 with the "
               "register (ULX3S)"),
        Figure("engine: first event latency", c["first_event_latency"], "cycles",
               note=f"goal ≤ 4; worst of add {c['add_latency']}, cancel "
               f"{c['cancel_latency']}, reject {c['reject_latency']}, crossing NEW "
               f"{c['market_1_fill_latency']}; commercial book builder: 11 to an update"),
        Figure("engine: FOK/min-qty pre-count per resting order", c["fok_count_per_order"],
               "cycles"),
    ]


#: The engine alone on each device, at the issue's book where it fits: (device, params).
ENGINE_SYNTH_BOOKS = {
    "up5k": dict(max_orders=256, max_symbols=2, band_ticks=128),
    "ecp5": dict(max_orders=16384, max_symbols=8, band_ticks=1024),
}

#: nextpnr seeds per device (Fmax is reported as the minimum and median over them).
ENGINE_SYNTH_SEEDS = (1, 2, 3)

#: Engine options measured besides each device's build: (device, options, figure suffix).
ENGINE_SYNTH_VARIANTS = (("ecp5", {"order_register": True}, ", order-RAM output register"),)


def engine_synthesis_figures():
    """Resources and Fmax of the engine alone (a 4-pin wrapper around it) over three nextpnr
    seeds, with the derived command rates at Fmax; then the same for ``ENGINE_SYNTH_VARIANTS``."""
    rows = []
    for device, book in ENGINE_SYNTH_BOOKS.items():
        rows += _synthesis_rows(device, ModelParams(**book), {}, "")
    for device, engine, suffix in ENGINE_SYNTH_VARIANTS:
        rows += _synthesis_rows(device, ModelParams(**ENGINE_SYNTH_BOOKS[device]), engine,
                                suffix)
    return rows


def _synthesis_rows(device, params, engine, suffix):
    """The figures of one build: ``engine`` overrides the device's engine options."""
    rows = []
    r = engine_synth(device, params, seeds=ENGINE_SYNTH_SEEDS, engine=engine)
    built = f"{params.max_orders} orders, {params.max_symbols} symbols, " \
            f"{params.band_ticks} ticks"
    name = f"engine {device}{suffix}"
    if r.get("fmax_mhz") is not None:
        seeds = ", ".join(f"{k}: {v}" for k, v in r["fmax_by_seed"].items())
        path = r.get("critical_path") or {}
        rows.append(Figure(f"{name} Fmax", r["fmax_mhz"], "MHz",
                           peer=f"goal {r['target_mhz']} MHz",
                           ratio=round(r["fmax_mhz"] / r["target_mhz"], 3),
                           note=f"{built}; min over nextpnr seeds ({seeds}), median "
                           f"{r['fmax_median_mhz']}; critical path seed 1: "
                           f"{path.get('from')} → {path.get('to')}, "
                           f"{path.get('routing_ns')} of {path.get('ns')} ns routing"))
        rows.append(Figure(f"{name} Fmax, median of seeds", r["fmax_median_mhz"],
                           "MHz", note=built))
        # Derived, not measured on a board: Fmax over the simulated cycles per command.
        # (The level table in SPRAM takes the same cycles, and the simulator has no SPRAM.)
        options = {k: v for k, v in {**engine_options(device), **engine}.items() if k != "spram"}
        cycles = _engine_cycles(**options)
        for what, key in (("non-crossing adds", "add_sustained"),
                          ("cancels", "cancel_sustained"), ("fills within a level",
                                                           "fill_in_level")):
            rate = r["fmax_mhz"] * 1e6 / cycles[key]
            rows.append(Figure(f"{name}: {what}/s at Fmax", rate, "ops/s",
                               peer="exchange-core 5 M ops/s",
                               ratio=round(rate / EXCHANGE_CORE_OPS, 3),
                               note=f"min Fmax / {cycles[key]} cycles (derived)"))
    elif r.get("error"):
        rows.append(Figure(f"{name} Fmax", 0, "MHz", note=f"{built}: " + r["error"][:120]))
    for cell, (used, total) in r.get("nextpnr_util", {}).items():
        if cell in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "TRELLIS_COMB",
                    "TRELLIS_FF", "DP16KD"):
            rows.append(Figure(f"{name} {cell}", used, "cells",
                               peer=f"{total} on device", ratio=round(used / total, 3),
                               note=built))
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
