"""Gateway benchmark: orders through gateway → risk → WAL (group commit) → model → ack.

:func:`bench_gateway` runs a scratch venue in this process and the open-loop, coordinated-
omission-corrected load generator of :mod:`tickwire.gateways.ouch.load` in a child process,
over loopback TCP (:func:`~tickwire.ops.venue_load.measure_venue`). Phases:

1. *saturation*: offered at ``saturation_rate`` (above what the venue sustains) for
   ``saturation_seconds``; the answered orders per second is the sustained throughput;
2. *latency*: offered at ``rate`` (10k/s, the issue's goal rate) for ``seconds``: send → ack
   p50, p99, p99.9, max, and the stage table (where the time goes);
3. *half_load*: the same at half the sustained throughput, for 2 s;
4. *quiet* and *flood*: offered at ``flood_rate`` for 2 s each, the second beside a login flood
   of ``flood`` concurrent wrong-password logins (wave after wave): the latency they add;
5. *WAL*: group-commit appends from 64 concurrent writers awaiting durability, records/s.

On a 2-core machine the load generator and the venue share the cores: the figures are what
one venue process does with about one core left to it.
"""

import argparse
import asyncio
import json
import os
import tempfile
import time

from tickwire.core.requests import NewOrder
from tickwire.gateways.ouch.load import Phase
from tickwire.ops.venue_load import measure_venue
from tickwire.protocol.link import Side, Tif
from tickwire.sequencer.journal.wal import JournalRecord, WriteAheadLog
from tickwire.util.figure import Figure
from tickwire.util.stages import format_stage_table, plot_stages, write_stage_csv

__all__ = ["bench_gateway", "bench_wal", "bench_main", "add_bench_arguments", "gateway_figures",
           "report_stages"]

GOAL_RATE = 10_000
FLOOD = 40


async def bench_wal(path, seconds=1.0, writers=64, fsync="group"):
    """Appends/s with ``writers`` concurrent appenders each awaiting durability."""
    wal = WriteAheadLog(path, fsync)
    record = JournalRecord(NewOrder(ts=0, account="bench", token="T" * 14, symbol="BENCH",
                                    side=Side.BUY, qty=100, price=1_000_000, tif=Tif.DAY))
    stop = time.perf_counter() + seconds

    async def writer():
        while time.perf_counter() < stop:
            await wal.durable(wal.append(record))

    t0 = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - t0
    out = {"fsync": fsync, "writers": writers, "records": wal.records,
           "records_per_s": round(wal.records / elapsed), "fsyncs": wal.fsyncs,
           "records_per_fsync": round(wal.records / max(1, wal.fsyncs), 1)}
    await wal.close()
    return out


def bench_gateway(rate=GOAL_RATE, seconds=3.0, connections=4, saturation_rate=30000,
                  saturation_seconds=1.0, fsync="group", out=None, flood=FLOOD,
                  flood_rate=1000, flood_seconds=2.0):
    """Run the phases; return (and optionally write as JSON to ``out``) the figures."""
    return asyncio.run(_bench(rate, seconds, connections, saturation_rate, saturation_seconds,
                              fsync, out, flood, flood_rate, flood_seconds))


async def _bench(rate, seconds, connections, saturation_rate, saturation_seconds, fsync, out,
                 flood, flood_rate, flood_seconds):
    phases = [Phase("saturation", saturation_rate, saturation_seconds),
              Phase("latency", rate, seconds), Phase("half_load", None, 2.0)]
    if flood:
        phases += [Phase("quiet", flood_rate, flood_seconds),
                   Phase("flood", flood_rate, flood_seconds, flood)]
    report = await measure_venue(phases, connections, fsync)
    with tempfile.TemporaryDirectory(prefix="tickwire-bench-") as tmp:
        report["wal_append"] = await bench_wal(os.path.join(tmp, "append.wal"), fsync=fsync)
    report["sustained_orders_per_s"] = report["saturation"]["answered_per_s"]
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(report, f, indent=2)
    return report


def add_bench_arguments(parser):
    parser.add_argument("--rate", type=float, default=GOAL_RATE,
                        help="orders/s offered in the latency phase (default 10000)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="length of the latency phase (default 3)")
    parser.add_argument("--connections", type=int, default=4,
                        help="client connections (accounts) of the load generator (default 4)")
    parser.add_argument("--saturation-rate", type=float, default=30000,
                        help="orders/s offered in the saturation phase (default 30000)")
    parser.add_argument("--saturation-seconds", type=float, default=1.0,
                        help="length of the saturation phase (default 1): its orders/s is "
                             "what was answered until the last answer")
    parser.add_argument("--flood", type=int, default=FLOOD,
                        help="concurrent bad logins of the flood phase (0: no quiet/flood "
                             "phases; default 40)")
    parser.add_argument("--fsync", choices=("record", "group", "none"), default="group",
                        help="WAL fsync policy (default: group commit)")
    parser.add_argument("--out", default="build/bench_gateway.json",
                        help="where the JSON report goes")
    return parser


def bench_main(args):
    report = bench_gateway(args.rate, args.seconds, args.connections, args.saturation_rate,
                           args.saturation_seconds, args.fsync, args.out, args.flood)
    print(json.dumps(report, indent=2))
    report_stages(report, os.path.dirname(os.path.abspath(args.out)))
    return 0


def report_stages(report, out_dir="build", echo=print):
    """Print the latency phase's stage table and write it beside the bench's JSON as
    ``bench_gateway_stages.csv`` and ``bench_gateway_stages.png``; return the PNG's path."""
    lat = report["latency"]
    echo(f"where the time went in the venue at {lat['offered_per_s']:,.0f} orders/s offered "
         f"({lat['answered']:,} orders; send → ack p50 {lat['p50_us']:,.0f} µs, of which the "
         f"load generator's send lag {lat['send_lag_p50_us']:,.0f} µs), by stage:")
    for line in format_stage_table(lat["stages"]):
        echo("  " + line)
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, "bench_gateway_stages.csv")
    png = os.path.join(out_dir, "bench_gateway_stages.png")
    write_stage_csv(csv_path, lat["stages"])
    plot_stages(png, lat["stages"], f"order path by stage at {lat['offered_per_s']:,.0f} "
                                    "orders/s offered (tickwire bench --only gateway)")
    echo(f"wrote {csv_path} and {png}")
    return png


def gateway_figures(out_dir="build", echo=print, **options):
    """The #16 goal figures, the stage table at 10k/s (printed, and written with its plot
    into ``out_dir``), and the WAL's group commit; ``options`` go to :func:`bench_gateway`
    (``make bench`` passes none)."""
    r = bench_gateway(out=os.path.join(out_dir, "bench_gateway.json"), **options)
    report_stages(r, out_dir, echo)
    lat, half, sat = r["latency"], r["half_load"], r["saturation"]
    shared = f"load generator and venue share the 2 cores; {r['event_loop']}"
    rows = [Figure("sustained orders/s with risk, journal (fsync) and the model engine",
                   r["sustained_orders_per_s"], "ops/s",
                   note=f"goal ≥ 50k (stretch 100k); {sat['offered_per_s']:,.0f}/s offered; "
                        f"{shared}")]
    for pct, goal in (("p50", "≤ 200 µs"), ("p99", "≤ 1 ms")):
        rows.append(Figure(f"send → ack {pct} at 10k orders/s offered, durable",
                           lat[f"{pct}_us"], "µs",
                           note=f"goal {goal}; open loop, CO-corrected; answered "
                                f"{lat['answered_per_s']:,.0f}/s"))
    rows.append(Figure("send → ack p99.9 at 10k orders/s offered, durable", lat["p99.9_us"],
                       "µs"))
    rows.append(Figure("load generator send lag p50 at 10k orders/s offered",
                       lat["send_lag_p50_us"], "µs",
                       note=f"p99 {lat['send_lag_p99_us']:,.0f} µs; the generator's own lateness, "
                            "part of send → ack"))
    rows.append(Figure("venue CPU per order at 10k orders/s offered", lat["cpu_us_per_order"],
                       "µs", note="the venue process's user+system time / answered orders"))
    for pct in ("p50", "p99", "p99.9"):
        rows.append(Figure(f"gateway latency {pct} at {half['offered_per_s']:,}/s",
                           half[f"{pct}_us"], "µs",
                           note="half the sustained rate" if pct == "p50" else None))
    if "flood" in r:
        quiet, flood = r["quiet"], r["flood"]
        rows.append(Figure(f"send → ack p99 at {quiet['offered_per_s']:,.0f}/s, quiet",
                           quiet["p99_us"], "µs"))
        rows.append(Figure(f"latency under a login flood ({flood['flood']} concurrent bad "
                           "logins)", flood["p99_us"], "µs",
                           note=f"p99; {flood['p99_us'] - quiet['p99_us']:+,.0f} µs from quiet "
                                "(goal ± 1 ms)"))
    for stage in lat["stages"]:
        for pct in ("p50", "p99", "p99.9"):
            rows.append(Figure(f"stage {stage['stage']} {pct} at 10k orders/s",
                               stage[f"{pct}_us"], "µs"))
    rows.append(Figure("WAL appends, group commit", r["wal_append"]["records_per_s"], "rec/s",
                       note=f"{r['wal_append']['records_per_fsync']} records per fsync"))
    return rows


if __name__ == "__main__":
    raise SystemExit(bench_main(add_bench_arguments(argparse.ArgumentParser(
        prog="python -m tickwire.bench.gateway")).parse_args()))
