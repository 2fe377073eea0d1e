"""``make bench``: measured figures, printed as a table and written to ``build/bench.json``.

Each benchmark is a function returning :class:`Figure` rows; a row names a peer and the ratio
against it when the peer ran in the same process on the same input. Nothing here asserts a
goal: the numbers are reported, and the closing notes compare them with the goals.
"""

import functools
import gc
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .protocol.link import Action, Command, EventKind, Side, Tif

__all__ = ["Figure", "BENCHMARKS", "run_benchmarks", "book_stream", "model_orders_per_second"]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    peer: str | None = None
    ratio: float | None = None      # value / peer's value (higher is better for rates)
    note: str | None = None


def book_stream(n, seed=7, levels=64, cancel_ratio=0.3):
    """A GTC limit + cancel stream on one symbol: [("add", id, side, price_ticks, qty) |
    ("cancel", id)]. Cancels only name orders still open, found by playing the stream into
    the reference model, so every engine sees the same valid stream."""
    from .sim.model import ExchangeModel, ModelParams
    rng = random.Random(seed)
    model = ExchangeModel(ModelParams(max_orders=1 << 16, band_ticks=1024))
    model.process(Command(action=Action.DECLARE, symbol=1, price=10000, qty=100, tick=100,
                          name=0x2020202020205754))
    open_ids, slot_of, ops = [], {}, []
    mid = 10000
    for order_id in range(1, n + 1):
        if open_ids and rng.random() < cancel_ratio:
            i = rng.randrange(len(open_ids))
            victim = open_ids[i]
            open_ids[i] = open_ids[-1]
            open_ids.pop()
            if victim in slot_of:
                ops.append(("cancel", victim))
                for ev in model.process(Command(action=Action.CANCEL, symbol=1,
                                                order_id=victim, slot=slot_of.pop(victim))):
                    pass
                continue
        side = rng.randrange(2)
        offset = rng.randrange(-2, levels // 2)
        price = mid - offset if side == Side.BUY else mid + offset
        qty = rng.randrange(1, 11) * 100
        ops.append(("add", order_id, side, price, qty))
        for ev in model.process(Command(action=Action.NEW, symbol=1, side=side, tif=Tif.GTC,
                                        price=price, qty=qty, order_id=order_id)):
            if ev.kind == EventKind.ADD:
                slot_of[ev.order_id] = ev.slot
                open_ids.append(ev.order_id)
            elif ev.kind == EventKind.EXECUTE and ev.remaining == 0:
                slot_of.pop(ev.order_id, None)
    return ops


def _time_model(ops):
    from .sim.model import ExchangeModel, ModelParams
    model = ExchangeModel(ModelParams(max_orders=1 << 16, band_ticks=1024))
    process = model.process
    process(Command(action=Action.DECLARE, symbol=1, price=10000, qty=100, tick=100,
                    name=0x2020202020205754))
    slot_of = {}
    new, cancel, gtc, add = Action.NEW, Action.CANCEL, Tif.GTC, EventKind.ADD
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "add":
            cmd = Command(action=new, symbol=1, side=op[2], tif=gtc, price=op[3], qty=op[4],
                          order_id=op[1])
        else:
            cmd = Command(action=cancel, symbol=1, order_id=op[1], slot=slot_of.pop(op[1]))
        for ev in process(cmd):
            if ev.kind == add:
                slot_of[ev.order_id] = ev.slot
    return time.perf_counter() - t0


def _time_lightmatchingengine(ops):
    from lightmatchingengine.lightmatchingengine import LightMatchingEngine
    engine = LightMatchingEngine()
    ids = {}
    add, cancel = engine.add_order, engine.cancel_order
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "add":
            order, _ = add("WT", float(op[3]), op[4], 1 if op[2] == Side.BUY else 2)
            ids[op[1]] = order.order_id
        else:
            cancel(ids[op[1]], "WT")
    return time.perf_counter() - t0


def _time_pyorderbook(ops):
    import logging
    from pyorderbook import Book, Order, Side as PSide
    logging.getLogger("pyorderbook.book").setLevel(logging.CRITICAL)
    book = Book()
    orders = {}
    bid, ask = PSide.BID, PSide.ASK
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "add":
            order = orders[op[1]] = Order(bid if op[2] == Side.BUY else ask, "WT", op[3], op[4])
            book.match(order)
        else:
            try:
                book.cancel(orders.pop(op[1]))
            except KeyError:
                pass        # it filled an order our model still had open (rare; logged off)
    return time.perf_counter() - t0


def _best_rate(fn, ops, repeat):
    best = None
    for _ in range(repeat):
        gc.collect()
        elapsed = fn(ops)
        best = elapsed if best is None else min(best, elapsed)
    return len(ops) / best


def model_orders_per_second(n=200_000, repeat=3):
    """The reference model against two Python matching engines on one GTC limit + cancel stream."""
    ops = book_stream(n)
    ours = _best_rate(_time_model, ops, repeat)
    rows = [Figure("model: GTC limit + cancel", ours, "ops/s",
                   note=f"{n} ops, one symbol, full event output; each engine's timing "
                   "includes building its inputs")]
    for peer, fn in (("lightmatchingengine", _time_lightmatchingengine),
                     ("pyorderbook", _time_pyorderbook)):
        try:
            theirs = _best_rate(fn, ops, repeat)
        except ImportError:
            rows.append(Figure(f"{peer}: GTC limit + cancel", 0, "ops/s",
                               note="not installed: pip install -e .[bench]"))
            continue
        rows.append(Figure(f"{peer}: GTC limit + cancel", theirs, "ops/s"))
        rows.append(Figure(f"model vs {peer}", ours / theirs, "x", peer=peer,
                           ratio=ours / theirs))
    return rows


def _gateway():
    from .bench_gateway import bench_gateway
    r = bench_gateway()
    lat, half = r["latency"], r["half_load"]
    rows = [Figure("gateway: sustained orders (risk, WAL group commit, model, ack)",
                   r["sustained_orders_per_s"], "ops/s", note="goal ≥ 100k/s; loopback TCP")]
    for name, phase in (("at 20k/s offered", lat), (f"at {half['offered_per_s']:,}/s", half)):
        for pct in ("p50", "p99", "p99.9"):
            rows.append(Figure(f"gateway latency {pct} {name}", phase[f"{pct}_us"], "µs",
                               note="coordinated-omission corrected" if pct == "p50" else None))
    rows.append(Figure("WAL appends, group commit", r["wal_append"]["records_per_s"], "rec/s",
                       note=f"{r['wal_append']['records_per_fsync']} records per fsync"))
    return rows


@functools.lru_cache(maxsize=1)
def _engine_cycles():
    from .sim.engine_cycles import hdl_engine_cycles
    return hdl_engine_cycles()


#: exchange-core (Java, LMAX-style) publishes 5 M operations/s on one core.
EXCHANGE_CORE_OPS = 5_000_000


def _engine_gateware():
    c = _engine_cycles()
    sim = "Amaranth simulator, 64 orders / 2 symbols / 64-tick band"
    return [
        Figure("engine: non-crossing add, sustained", c["add_sustained"], "cycles",
               note=f"goal 1; 8 adds back to back, half opening a level; {sim}"),
        Figure("engine: cancel, sustained", c["cancel_sustained"], "cycles",
               note="goal 1; 8 full cancels back to back"),
        Figure("engine: reduce, sustained", c["reduce_sustained"], "cycles", note="goal 1"),
        Figure("engine: kept replace, sustained", c["replace_kept_sustained"], "cycles",
               note="goal 1"),
        Figure("engine: fill within a level", c["fill_in_level"], "cycles",
               note="goal 1 per fill; open FPGA book ~3"),
        Figure("engine: next level", c["fill_new_level"], "cycles",
               note="goal ≤ 2; per fill when each resting order is on its own level"),
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


def _engine_synthesis():
    """Resources and Fmax of the engine alone (a 4-pin wrapper around it) over three nextpnr
    seeds, with the derived command rate at Fmax."""
    from .sim.engine_synth import engine_synth
    from .sim.model import ModelParams
    rows = []
    for device, book in ENGINE_SYNTH_BOOKS.items():
        params = ModelParams(**book)
        r = engine_synth(device, params, seeds=ENGINE_SYNTH_SEEDS)
        built = f"{params.max_orders} orders, {params.max_symbols} symbols, " \
                f"{params.band_ticks} ticks"
        if r.get("fmax_mhz") is not None:
            seeds = ", ".join(f"{k}: {v}" for k, v in r["fmax_by_seed"].items())
            path = r.get("critical_path") or {}
            rows.append(Figure(f"engine {device} Fmax", r["fmax_mhz"], "MHz",
                               peer=f"goal {r['target_mhz']} MHz",
                               ratio=round(r["fmax_mhz"] / r["target_mhz"], 3),
                               note=f"{built}; min over nextpnr seeds ({seeds}), median "
                               f"{r['fmax_median_mhz']}; critical path seed 1: "
                               f"{path.get('from')} → {path.get('to')}, "
                               f"{path.get('routing_ns')} of {path.get('ns')} ns routing"))
            rows.append(Figure(f"engine {device} Fmax, median of seeds", r["fmax_median_mhz"],
                               "MHz", note=built))
            # Derived, not measured on a board: Fmax over the simulated cycles per command.
            per_add = _engine_cycles()["add_sustained"]
            adds = r["fmax_mhz"] * 1e6 / per_add
            rows.append(Figure(f"engine {device}: non-crossing adds/s at Fmax", adds, "ops/s",
                               peer="exchange-core 5 M ops/s",
                               ratio=round(adds / EXCHANGE_CORE_OPS, 3),
                               note=f"min Fmax / {per_add} cycles per add (derived)"))
        elif r.get("error"):
            rows.append(Figure(f"engine {device} Fmax", 0, "MHz", note=f"{built}: "
                               + r["error"][:120]))
        for cell, (used, total) in r.get("nextpnr_util", {}).items():
            if cell in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM", "TRELLIS_COMB",
                        "TRELLIS_FF", "DP16KD"):
                rows.append(Figure(f"engine {device} {cell}", used, "cells",
                                   peer=f"{total} on device", ratio=round(used / total, 3),
                                   note=built))
    return rows


def _feed_gateware():
    from .sim.feed_cycles import estimate_luts, measure_cycles
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


def _link():
    from .link_bench import link_figures
    from .synth import synth_figures
    rows = link_figures()
    for board in ("icebreaker", "ulx3s"):
        # From the last `make bitstream BOARD=...` (a build takes minutes; bench does not run it).
        rows += synth_figures(f"build/{board}/report.json")
    return rows


def _marketdata():
    from .marketdata.bench import md_benchmarks
    return md_benchmarks()


#: name → function returning figures; ``make bench`` runs them all.
BENCHMARKS = {
    "model": model_orders_per_second,
    "gateway": _gateway,
    "engine": _engine_gateware,
    "engine_synthesis": _engine_synthesis,
    "feed": _feed_gateware,
    "link": _link,
    "marketdata": _marketdata,
}


def run_benchmarks(names=None, out="build/bench.json", echo=print):
    figures = []
    for name, fn in BENCHMARKS.items():
        if names and name not in names:
            continue
        echo(f"running {name} ...")
        figures.extend(fn())
    width = max(len(f.name) for f in figures)
    echo(f"{'benchmark':<{width}}  {'value':>14}  unit    peer / note")
    for f in figures:
        extra = f.peer or f.note or ""
        echo(f"{f.name:<{width}}  {f.value:>14,.2f}  {f.unit:<6}  {extra}")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
    echo(f"wrote {path}")
    return figures
