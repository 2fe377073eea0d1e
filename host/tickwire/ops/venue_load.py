"""A scratch venue under open-loop load from another process: the gateway's measured figures.

:func:`measure_venue` starts a :class:`~tickwire.ops.serve.Venue` (model engine, a write-ahead
log in a temporary directory, risk, sequencer, gateway on a free loopback port) and the load
generator of :mod:`tickwire.gateways.ouch.load` in a child process (spawned, so it shares no
interpreter with the venue; on a 2-core machine it still shares the cores). The venue's stage
times are reset when each phase starts and read when it ends, so every phase has its own stage
table. Used by ``make bench`` (the gateway figures) and by ``tickwire run`` (saturation).
"""

import asyncio
import multiprocessing
import os
import queue as queues
import resource
import tempfile

from tickwire.accounts.config import make_config, parse_config
from tickwire.gateways.ouch.load import PASSWORD, SYMBOL, load_process
from tickwire.ops.serve import Venue
from tickwire.util.loop import loop_name

__all__ = ["measure_venue"]


def _config(connections):
    return parse_config(make_config(
        {f"b{c}": {"firm": f"B{c:02d}", "password": PASSWORD} for c in range(connections)},
        symbols={SYMBOL: 100.0}, n=2**10))


async def measure_venue(phases, connections=4, fsync="group", engine="model"):
    """Run ``phases`` (:class:`~tickwire.gateways.ouch.load.Phase` s) against a scratch
    venue; return ``{phase name: figures}``, each with its ``stages`` (stage table rows) and
    ``cpu_us_per_order`` (the CPU time of the venue's process and of its WAL's fsync helper
    per answered order), and ``server_wal``
    (records, fsyncs) and ``event_loop``."""
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="tickwire-load-") as tmp:
        venue = Venue(_config(connections), os.path.join(tmp, "load.wal"), engine, fsync=fsync,
                      client_timeout=60)
        await venue.start()
        stages = venue.sequencer.stages
        queue, started = spawn.Queue(), spawn.Queue()
        proc = spawn.Process(target=load_process,
                             args=(venue.gateway.port, connections, phases, queue, started))
        proc.start()
        loop = asyncio.get_running_loop()
        report = {}
        try:
            while len(report) < len(phases):
                message = await loop.run_in_executor(None, _next_message, queue, proc)
                if message[0] == "start":
                    stages.reset()
                    cpu = _cpu_s(venue)
                    started.put(message[1])
                else:
                    _, name, figures = message
                    per_order = (_cpu_s(venue) - cpu) / max(1, figures["answered"]) * 1e6
                    report[name] = dict(figures, stages=stages.rows(),
                                        cpu_us_per_order=round(per_order, 1))
            await loop.run_in_executor(None, proc.join, 10)
        finally:
            if proc.is_alive():
                proc.kill()
            report["server_wal"] = {"records": venue.wal.records, "fsyncs": venue.wal.fsyncs}
            report["event_loop"] = loop_name()
            await venue.stop()
    return report


def _next_message(queue, proc, timeout=600):
    """The generator's next message; a clear error at once if it died without one."""
    for _ in range(timeout):
        try:
            return queue.get(True, 1)
        except queues.Empty:
            if proc.exitcode is not None:
                raise RuntimeError(f"the load generator (pid {proc.pid}) exited with code "
                                   f"{proc.exitcode} before its figures (its error is above)") \
                    from None
    raise RuntimeError(f"the load generator sent nothing for {timeout} s")


def _cpu_s(venue):
    """CPU seconds of the venue so far: its process and its WAL's fsync helper."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + _process_cpu_s(venue.wal.fsync_pid)


def _process_cpu_s(pid):
    """CPU seconds (user + system) of process ``pid`` from ``/proc`` (0 if there is none)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
