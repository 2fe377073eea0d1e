"""Gateway benchmark: orders through gateway → risk → WAL (group commit) → model → ack.

:func:`bench_gateway` runs the venue in this process and an **open-loop** load generator in a
child process, over loopback TCP. Orders are scheduled at fixed times (``i / rate``) and
latency is measured from the *scheduled* send time to the Accepted, so a stalled server is
charged for every order it delayed (coordinated omission corrected); latencies go into an
HDR histogram (``hdrhistogram``). Orders come in crossing buy/sell pairs so the book stays
small. Phases:

1. *saturation*: offered at ``saturation_rate`` for ``saturation_seconds``; the answered
   orders per second is the sustained throughput;
2. *latency*: offered at ``rate`` (20k/s by default) for ``seconds``: p50, p99, p99.9, max
   (above the sustained rate these are queueing delays, growing with the run's length);
3. *half_load*: the same at half the sustained throughput, for 2 s;
4. *WAL*: group-commit appends from 64 concurrent writers awaiting durability, records/s.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time

from tickwire.accounts.config import make_config, parse_config
from tickwire.core.requests import NewOrder
from tickwire.gateways.ouch import wire as ouch
from tickwire.ops.serve import Venue
from tickwire.protocol import soupbintcp
from tickwire.protocol.link import Side, Tif
from tickwire.sequencer.journal.wal import JournalRecord, WriteAheadLog
from tickwire.util.figure import Figure

__all__ = ["bench_gateway", "bench_wal", "bench_main", "add_bench_arguments", "gateway_figures"]

_PASSWORD = "bench"


def _enter(token, side):
    return soupbintcp.unsequenced_data(ouch.encode_inbound(
        b"O", order_token=token, buy_sell_indicator=side, shares=100, stock="BENCH",
        price=100_0000, time_in_force=99998, firm="", display="Y", capacity="A",
        intermarket_sweep_eligibility="N", minimum_quantity=0, cross_type="N"))


async def _load(port, connections, rate, seconds, phase):
    from hdrh.histogram import HdrHistogram
    hist = HdrHistogram(1, 60 * 10**9, 3)
    scheduled = {}
    answered = [0]
    streams = []
    for c in range(connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(soupbintcp.login_request(f"b{c}", _PASSWORD, "", 0))
        streams.append((reader, writer))
    done = asyncio.Event()
    total = int(rate * seconds)

    async def read(reader):
        framer = soupbintcp.Framer()
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            now = time.perf_counter_ns()
            for ptype, payload in framer.feed(data):
                if ptype == b"S" and payload[:1] in (b"A", b"J"):
                    t0 = scheduled.pop(payload[9:23], None)
                    if t0 is not None:
                        hist.record_value(max(1, now - t0))
                        answered[0] += 1
                        if answered[0] == total:
                            done.set()

    readers = [asyncio.create_task(read(r)) for r, _ in streams]
    await asyncio.sleep(0.2)
    t0 = time.perf_counter_ns()
    step = 10**9 / rate
    sent = 0
    while sent < total:
        now = time.perf_counter_ns()
        due = min(total, int((now - t0) / step) + 1)
        batches = [[] for _ in streams]
        while sent < due:
            token = f"{phase}{sent:013d}".encode()[:14]
            scheduled[token] = t0 + int(sent * step)
            batches[sent % len(streams)].append(_enter(token.decode(), "BS"[sent & 1]))
            sent += 1
        for (_, writer), batch in zip(streams, batches):
            if batch:
                writer.write(b"".join(batch))
        await asyncio.sleep(0.0005)
    send_end = time.perf_counter_ns()
    try:
        await asyncio.wait_for(done.wait(), 30)
    except asyncio.TimeoutError:
        pass
    end = time.perf_counter_ns()
    for _, writer in streams:
        writer.write(soupbintcp.logout_request())
        writer.close()
    for task in readers:
        task.cancel()
    elapsed = (end - t0) / 1e9
    return {
        "offered_per_s": rate, "orders": total, "answered": answered[0],
        "send_s": round((send_end - t0) / 1e9, 3), "elapsed_s": round(elapsed, 3),
        "answered_per_s": round(answered[0] / elapsed, 1),
        "p50_us": hist.get_value_at_percentile(50) / 1000,
        "p99_us": hist.get_value_at_percentile(99) / 1000,
        "p99.9_us": hist.get_value_at_percentile(99.9) / 1000,
        "max_us": hist.get_max_value() / 1000,
    }


def _child(port, connections, phases, queue):
    results = []
    for name, rate, seconds in phases:
        if rate is None:        # half the sustained throughput measured by the first phase
            rate = max(100, round(results[0][1]["answered_per_s"] / 2))
        results.append((name, asyncio.run(_load(port, connections, rate, seconds, name[0]))))
    queue.put(results)


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


def bench_gateway(rate=20000, seconds=3.0, connections=4, saturation_rate=20000,
                  saturation_seconds=2.0, fsync="group", out=None):
    """Run the three phases; return (and optionally write as JSON to ``out``) the figures."""
    return asyncio.run(_bench(rate, seconds, connections, saturation_rate, saturation_seconds,
                              fsync, out))


async def _bench(rate, seconds, connections, saturation_rate, saturation_seconds, fsync, out):
    with tempfile.TemporaryDirectory(prefix="tickwire-bench-") as tmp:
        cfg = parse_config(make_config(
            {f"b{c}": {"firm": f"B{c:02d}", "password": _PASSWORD} for c in range(connections)},
            symbols={"BENCH": 100.0}, n=2**10))
        venue = Venue(cfg, os.path.join(tmp, "bench.wal"), fsync=fsync, client_timeout=60)
        await venue.start()
        queue = multiprocessing.get_context("spawn").Queue()
        phases = [("saturation", saturation_rate, saturation_seconds),
                  ("latency", rate, seconds), ("half_load", None, 2.0)]
        proc = multiprocessing.get_context("spawn").Process(
            target=_child, args=(venue.gateway.port, connections, phases, queue))
        proc.start()
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(None, queue.get)
        await loop.run_in_executor(None, proc.join, 10)
        wal_stats = {"records": venue.wal.records, "fsyncs": venue.wal.fsyncs}
        await venue.stop()
        report = dict(results)
        report["server_wal"] = wal_stats
        report["wal_append"] = await bench_wal(os.path.join(tmp, "append.wal"), fsync=fsync)
    report["sustained_orders_per_s"] = report["saturation"]["answered_per_s"]
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(report, f, indent=2)
    return report


def add_bench_arguments(parser):
    parser.add_argument("--rate", type=float, default=20000, help="offered orders/s")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--saturation-rate", type=float, default=20000)
    parser.add_argument("--saturation-seconds", type=float, default=2.0)
    parser.add_argument("--fsync", choices=("record", "group", "none"), default="group")
    parser.add_argument("--out", default="build/bench_gateway.json")
    return parser


def bench_main(args):
    report = bench_gateway(args.rate, args.seconds, args.connections, args.saturation_rate,
                           args.saturation_seconds, args.fsync, args.out)
    print(json.dumps(report, indent=2))
    return 0


def gateway_figures():
    """The gateway's throughput and latency, and the WAL's group commit."""
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


if __name__ == "__main__":
    raise SystemExit(bench_main(add_bench_arguments(argparse.ArgumentParser(
        prog="python -m tickwire.bench.gateway")).parse_args()))
