"""The networked main job and the gateway benchmark, at toy sizes."""

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tickwire.bench.gateway import bench_gateway, gateway_figures
from tickwire.gateways.ouch.load import Phase
from tickwire.ops.firms import FirmsError, play_day
from tickwire.ops.run_job import DEFAULT_RATE, add_run_arguments, print_report, run_session
from tickwire.ops.venue_load import measure_venue
from tickwire.util.stages import STAGES


def test_run_session_report_and_files(tmp_path):
    report = asyncio.run(run_session(orders=400, clients=3, seed=2, symbols=2,
                                     out_dir=str(tmp_path), progress=False, rate=500,
                                     saturation_seconds=0.5))
    assert report["requests"] > 350 and report["unanswered"] == 0
    load = report["load"]
    assert load["mode"] == "open loop" and load["offered_per_s"] == 500
    assert load["achieved_per_s"] > 0 and load["send_lag"]["count"] == report["requests"]
    assert load["event_loop"].split()[0] in ("asyncio", "uvloop")
    # the day's requests were spread at the offered rate (a hang guard would catch a stall)
    assert report["elapsed_s"] >= (report["requests"] - 1) / 500
    assert report["saturation"]["orders_per_s"] > 0
    printed = []
    print_report(report, echo=printed.append)
    text = "\n".join(printed)
    assert "500 requests/s offered (open loop)" in text and "answered; event loop" in text
    assert "from each request's intended send time" in text
    assert "orders/s sustained (measured apart" in text
    # the firms played the day from a process of their own (the venue's is this one)
    assert load["venue_pid"] == os.getpid() and load["firms_pid"] != os.getpid()
    assert f"the firms in a process of their own (pid {load['firms_pid']})" in text
    assert "as the firms' process saw it" in text
    assert "journal append" in text and "socket write" in text       # the stage table
    assert report["accepted"] > 100 and report["fills"] > 0
    assert report["latency"]["count"] > 300 and report["latency"]["p50_us"] > 0
    assert set(report["top_of_book"]) == {"AAPL", "MSFT"}
    assert set(report["positions"]) == {"c00", "c01", "c02"}
    assert json.loads((tmp_path / "run.json").read_text())["orders"] == report["orders"]
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "session.wal").exists() and (tmp_path / "feed.pcap").exists()
    assert (tmp_path / "stages.png").read_bytes()[:4] == b"\x89PNG"
    stages = (tmp_path / "stages.csv").read_text().splitlines()
    assert stages[0] == "stage,count,p50_us,p99_us,p99.9_us,max_us"
    assert [line.split(",")[0] for line in stages[1:]] == list(STAGES)
    assert {row["stage"]: row["count"] for row in report["stages"]}["decode"] == \
        report["requests"]
    import argparse
    args = add_run_arguments(argparse.ArgumentParser()).parse_args(["--orders", "10"])
    assert args.orders == 10 and args.clients == 8 and args.rate == DEFAULT_RATE
    assert args.saturation_seconds > 0


def test_bench_gateway_small(tmp_path):
    report = bench_gateway(rate=400, seconds=0.5, connections=2, saturation_rate=800,
                           saturation_seconds=0.5, out=str(tmp_path / "b.json"), flood=4,
                           flood_rate=200, flood_seconds=0.5)
    for phase in ("saturation", "latency", "half_load", "quiet", "flood"):
        assert report[phase]["answered"] == report[phase]["orders"]
        assert 0 < report[phase]["p50_us"] <= report[phase]["p99.9_us"]
        # the generator's own lateness is measured apart (and is part of the latency)
        assert 0 < report[phase]["send_lag_p50_us"] <= report[phase]["send_lag_p99_us"]
        stages = {row["stage"]: row for row in report[phase]["stages"]}
        assert list(stages) == list(STAGES)
        # every order passed every stage (socket write counts messages: Accepted, Executed)
        assert all(stages[s]["count"] == report[phase]["orders"] for s in STAGES[:-1])
        assert stages["socket write"]["count"] >= report[phase]["orders"]
    assert report["flood"]["flood_logins"] >= 4
    assert report["wal_append"]["records_per_fsync"] > 1
    assert json.loads((tmp_path / "b.json").read_text())["sustained_orders_per_s"] > 0


class _LateExecutor(concurrent.futures.ThreadPoolExecutor):
    """The venue's default executor, handing over the generator's "start" 0.5 s late (a
    loaded machine), while the venue's loop goes on answering."""

    def submit(self, fn, /, *args, **kwargs):
        def late():
            message = fn(*args, **kwargs)
            if isinstance(message, tuple) and message[0] == "start":
                time.sleep(0.5)
            return message
        return super().submit(late)


def test_a_phase_starts_once_the_venue_reset_its_stage_clocks(tmp_path):
    """Each phase's stage table counts that phase's orders: the generator waits until the
    venue has reset its clocks (it sent its first orders 0.2 s after saying "start", and a
    venue that took the message later counted fewer orders than it answered)."""
    async def main():
        asyncio.get_running_loop().set_default_executor(_LateExecutor(2))
        return await measure_venue([Phase("quiet", 400, 0.5, 0)], connections=2)

    quiet = asyncio.run(main())["quiet"]
    assert quiet["answered"] == quiet["orders"] == 200
    assert {row["stage"]: row["count"] for row in quiet["stages"]}["decode"] == 200


@pytest.mark.timeout(900)         # a hang guard, not a speed check: tests assert no timings
def test_every_request_is_answered_when_one_order_has_several_replaces_in_flight(tmp_path):
    # Seed 1's day replaces one order twice while its symbol is halted: both replaces must
    # be matched to their answers, or the job waits out its deadline with one unanswered.
    report = asyncio.run(run_session(orders=20000, clients=8, seed=1, symbols=4,
                                     out_dir=str(tmp_path), progress=False, fsync="none",
                                     plot=False, feed=False, rate=0, saturation_seconds=0))
    # feed tested in test_md_serve.py; closed loop (rate 0) as fast as the windows allow
    assert report["requests"] > 19_900 and report["unanswered"] == 0


def test_gateway_bench_prints_and_plots_its_stage_table(tmp_path):
    # the entry point `make bench` (tickwire bench --only gateway) calls, at a toy size
    printed = []
    figures = gateway_figures(out_dir=str(tmp_path), echo=printed.append, rate=400,
                              seconds=0.5, connections=2, saturation_rate=800,
                              saturation_seconds=0.5, flood=2, flood_rate=200,
                              flood_seconds=0.5)
    text = "\n".join(printed)
    assert "where the time went in the venue at 400 orders/s offered" in text
    for stage in STAGES:
        assert f"  {stage} " in text
    assert (tmp_path / "bench_gateway_stages.png").read_bytes()[:4] == b"\x89PNG"
    rows = (tmp_path / "bench_gateway_stages.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in rows[1:]] == list(STAGES)
    assert json.loads((tmp_path / "bench_gateway.json").read_text())["latency"]["orders"] == 200
    names = {f.name for f in figures}
    assert "sustained orders/s with risk, journal (fsync) and the model engine" in names
    assert "send → ack p99 at 10k orders/s offered, durable" in names
    assert "load generator send lag p50 at 10k orders/s offered" in names
    assert "of which the load generator's send lag" in text
    assert "latency under a login flood (2 concurrent bad logins)" in names


def _start_run(tmp_path, *args, started="the firms: "):
    """``tickwire run`` in a subprocess, a long day at a low rate; return it, the pid its log
    names on the first line with ``started`` and the log so far."""
    run = subprocess.Popen(
        [sys.executable, "-m", "tickwire.cli.main", "run", "--orders", "20000", "--rate", "100",
         "--clients", "2", "--symbols", "2", "--out", str(tmp_path), "--no-progress",
         "--no-clearing", "--saturation-seconds", "0", "--fsync", "none", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = []
    for line in run.stderr:
        log.append(line)
        if started in line and "process (pid " in line:
            return run, int(line.rsplit("(pid ", 1)[1].split(")")[0]), log
    raise AssertionError(f"no {started!r} in the log:\n" + "".join(log))


def _gone(pid, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(300)         # a hang guard: a dead firms' process must not hang the job
def test_run_reports_a_firms_process_that_dies(tmp_path):
    run, firms, _ = _start_run(tmp_path, "--no-feed")
    assert firms != run.pid
    os.kill(firms, signal.SIGKILL)
    _, err = run.communicate(timeout=240)
    assert run.returncode == 1
    assert f"tickwire run: the firms' process (pid {firms}) was killed by SIGKILL before the " \
           "day ended" in err


@pytest.mark.timeout(300)
def test_run_stops_the_firms_and_audience_processes_on_ctrl_c(tmp_path):
    run, audience, log = _start_run(tmp_path, started="the feed's subscribers: ")
    for line in run.stderr:
        log.append(line)
        if "the firms: " in line:
            firms = int(line.rsplit("(pid ", 1)[1].split(")")[0])
            break
    assert len({run.pid, audience, firms}) == 3
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=240)
    assert run.returncode == 130, err
    assert "tickwire run: interrupted (the firms' process is stopped)" in err
    assert _gone(firms) and _gone(audience)


@pytest.mark.timeout(300)
def test_run_reports_a_feed_audience_process_that_dies(tmp_path):
    # a short day: the venue asks the dead process for its late joiner, then for its check
    run, audience, _ = _start_run(tmp_path, "--orders", "1000", "--rate", "200",
                                  started="the feed's subscribers: ")
    os.kill(audience, signal.SIGKILL)
    _, err = run.communicate(timeout=240)
    assert run.returncode == 1, err
    assert f"tickwire run: the feed audience's process (pid {audience}) was killed by SIGKILL" \
        in err


@pytest.mark.timeout(300)
def test_firms_process_that_fails_is_a_clear_error_and_is_gone(tmp_path):
    # nothing listens on the port: the firms cannot log in, and say so
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(FirmsError, match=r"the firms' process \(pid \d+\) failed: "
                                         r"ConnectionRefusedError") as failed:
        asyncio.run(play_day(port, [("c00", "x")], [], 100, 32, print, print))
    assert _gone(int(str(failed.value).split("(pid ")[1].split(")")[0]))


@pytest.mark.timeout(120)
def test_a_load_generator_that_dies_is_an_error_at_once(tmp_path):
    """Not a wait of ten minutes for figures that will never come."""
    with pytest.raises(RuntimeError, match="exited with code 1 before its figures"):
        asyncio.run(measure_venue([Phase("broken", 0, 0.5, 0)], connections=1))
