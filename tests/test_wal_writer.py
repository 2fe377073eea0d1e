"""The WAL's group commit: fsyncs in a helper process, and never an ack before its fsync.

The helper is held with SIGSTOP where a test needs an fsync that has not happened yet: a real
process, a real fsync, only late.
"""

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from tickwire.core.requests import Halt
from tickwire.sequencer.journal import wal as wal_module
from tickwire.sequencer.journal.fsyncer import Fsyncer
from tickwire.sequencer.journal.wal import JournalRecord, WalError, WriteAheadLog
from venue_util import login, make_venue

_HANG_S = 10.0          # a hang guard, not a timing


def _rec(i):
    return JournalRecord(Halt(ts=i, symbol="AAPL"))


def _gone(pid):
    """True once process ``pid`` has ended (a zombie nobody reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def _wait_gone(pid):
    """Block (the event loop too) until process ``pid`` has ended."""
    deadline = time.monotonic() + _HANG_S
    while not _gone(pid):
        assert time.monotonic() < deadline, f"hang guard: process {pid} still runs"
        time.sleep(0.001)


async def _with_helper(path):
    """A group-commit WAL at ``path`` with one durable record, and its fsync helper's pid."""
    wal = WriteAheadLog(str(path))
    await asyncio.wait_for(wal.durable(wal.append(_rec(0))), _HANG_S)
    return wal, wal.fsync_pid


async def _until(predicate):
    deadline = time.monotonic() + _HANG_S
    while not predicate():
        assert time.monotonic() < deadline, "hang guard"
        await asyncio.sleep(0.001)


def test_group_fsync_does_not_queue_behind_the_default_executor(tmp_path):
    """The login's scrypt runs in the loop's default executor: a full one delays no fsync."""
    async def main():
        loop = asyncio.get_running_loop()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(pool)
        busy = threading.Event()
        blocked = loop.run_in_executor(None, busy.wait, _HANG_S * 3)   # the pool is full
        wal = WriteAheadLog(str(tmp_path / "g.wal"))
        index = wal.append(_rec(0))
        await asyncio.wait_for(wal.durable(index), _HANG_S)
        assert wal.durable_index == 1 and wal.fsyncs == 1
        assert not blocked.done()
        busy.set()
        await blocked
        await wal.close()

    asyncio.run(main())


def test_the_fsync_runs_in_a_helper_process_that_ends_with_the_log(tmp_path):
    async def main():
        wal, pid = await _with_helper(tmp_path / "p.wal")
        assert pid is not None and pid != os.getpid() and not _gone(pid)
        await wal.close()
        assert _gone(pid) and wal.fsync_pid is None

    asyncio.run(main())


def test_a_failed_fsync_fails_the_waiters_and_later_appends(tmp_path, monkeypatch, caplog):
    """The helper's fsync fails for real: it is given a pipe, which cannot be fsynced."""
    unsyncable, writer = os.pipe()

    def on_a_pipe(fd, loop, on_synced, on_failed):
        return Fsyncer(unsyncable, loop, on_synced, on_failed)

    async def main():
        wal = WriteAheadLog(str(tmp_path / "f.wal"))
        wal.sync()
        monkeypatch.setattr(wal_module, "Fsyncer", on_a_pipe)
        index = wal.append(_rec(1))
        with pytest.raises(WalError, match="fsync failed"):
            await asyncio.wait_for(wal.durable(index), _HANG_S)
        with pytest.raises(WalError):
            wal.append(_rec(2))
        assert wal.durable_index == 0
        await wal.close()

    try:
        asyncio.run(main())
    finally:
        os.close(unsyncable)
        os.close(writer)
    assert "fsync failed" in caplog.text


def test_a_helper_that_dies_fails_the_waiters_with_a_clear_error(tmp_path):
    async def main():
        wal, pid = await _with_helper(tmp_path / "d.wal")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)                     # the loop does not run: it has not noticed
        index = wal.append(_rec(1))         # written; it cannot become durable
        with pytest.raises(WalError, match=f"fsync helper \\(pid {pid}\\)"):
            await asyncio.wait_for(wal.durable(index), _HANG_S)
        with pytest.raises(WalError, match="unusable"):
            wal.append(_rec(2))
        assert wal.durable_index == 1
        await wal.close()

    asyncio.run(main())


def test_group_commit_covers_what_was_appended_while_an_fsync_was_out(tmp_path):
    async def main():
        wal, pid = await _with_helper(tmp_path / "c.wal")
        os.kill(pid, signal.SIGSTOP)
        try:
            first = asyncio.ensure_future(wal.durable(wal.append(_rec(1))))
            later = [wal.append(_rec(i)) for i in range(2, 50)]     # while it is out
            waiting = asyncio.ensure_future(wal.durable(later[-1]))
            await asyncio.sleep(0.05)
            assert not first.done() and wal.durable_index == 1
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.wait_for(asyncio.gather(first, waiting), _HANG_S)
        assert wal.durable_index == 50 and wal.fsyncs == 3      # one more for the 48
        await wal.close()

    asyncio.run(main())


def test_no_accepted_leaves_before_its_fsync(tmp_path):
    """An order written to the WAL whose fsync has not happened is not acknowledged: the
    Accepted arrives only once the held helper goes on."""
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, inbox = await login(venue, "alice")
        await inbox.count(1)                                    # start of day
        pid = venue.wal.fsync_pid
        os.kill(pid, signal.SIGSTOP)
        try:
            records, durable = venue.wal.records, venue.wal.durable_index
            alice.enter("A1", "B", 100, "AAPL", 100 * 10000)
            await _until(lambda: venue.wal.records == records + 1)  # in the log, not synced
            await asyncio.sleep(0.3)                                # room for a wrong ack
            assert inbox.of(b"A") == [] and venue.wal.durable_index == durable
        finally:
            os.kill(pid, signal.SIGCONT)
        await inbox.wait(lambda box: box.of(b"A"), _HANG_S)
        assert venue.wal.durable_index > records and inbox.of(b"A")[0].order_token == "A1"
        await alice.logout()
        await venue.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_wal_outliving_its_event_loop_gets_a_new_helper(tmp_path):
    wal = WriteAheadLog(str(tmp_path / "l.wal"))
    pids = []

    async def append_durably(i):
        await asyncio.wait_for(wal.durable(wal.append(_rec(i))), _HANG_S)
        pids.append(wal.fsync_pid)

    asyncio.run(append_durably(0))
    asyncio.run(append_durably(1))          # the first loop is closed
    assert wal.durable_index == 2 and pids[0] != pids[1]
    wal.close_sync()
    assert all(_gone(pid) for pid in pids)


def test_one_fsync_out_at_a_time(tmp_path):
    """A busy loop gets one larger group, not an fsync per handful of records: while the loop
    has not taken an fsync's answer, no other is asked for."""
    async def main():
        wal = WriteAheadLog(str(tmp_path / "h.wal"))
        await asyncio.wait_for(wal.durable(wal.append(_rec(0))), _HANG_S)
        fsyncs = wal.fsyncs
        wal.append(_rec(1))                 # asks for an fsync
        for i in range(2, 40):              # the loop stays busy: none of these asks
            time.sleep(0.002)
            wal.append(_rec(i))
        await asyncio.wait_for(wal.durable(39), _HANG_S)
        assert wal.durable_index == 40 and wal.fsyncs == fsyncs + 2
        await wal.close()

    asyncio.run(main())


def test_closing_with_an_fsync_out_makes_everything_durable_and_ends_the_helper(tmp_path):
    async def main():
        wal, pid = await _with_helper(tmp_path / "x.wal")
        for i in range(1, 10):
            wal.append(_rec(i))             # an fsync is out, its answer not taken
        wal.close_sync()
        return pid, wal

    pid, wal = asyncio.run(asyncio.wait_for(main(), 30))
    assert wal.durable_index == 10 and _gone(pid)


_OWNER = """
import asyncio, sys, time
from tickwire.core.requests import Halt
from tickwire.sequencer.journal.wal import JournalRecord, WriteAheadLog

async def main():
    wal = WriteAheadLog(sys.argv[1])
    await wal.durable(wal.append(JournalRecord(Halt(ts=0, symbol="AAPL"))))
    print(wal.fsync_pid, flush=True)
    time.sleep(60)

asyncio.run(main())
"""


def test_the_helper_ends_when_its_owner_is_killed(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path / "k.wal")],
                             stdout=subprocess.PIPE, text=True)
    try:
        pid = int(owner.stdout.readline())
        assert not _gone(pid)
    finally:
        owner.kill()
        owner.wait()
    _wait_gone(pid)                         # the helper does not outlive its owner
