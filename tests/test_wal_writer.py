"""The WAL's group writer thread: durability off the event loop, and never an ack before it."""

import asyncio
import concurrent.futures
import errno
import os
import sys
import threading
import time

import pytest
from tickwire.core.requests import Halt
from tickwire.sequencer.journal import wal as wal_module
from tickwire.sequencer.journal.wal import JournalRecord, WalError, WriteAheadLog
from tickwire.util.loop import HANDOFF_SWITCH_S
from venue_util import login, make_venue

_HANG_S = 10.0          # a hang guard, not a timing


def _rec(i):
    return JournalRecord(Halt(ts=i, symbol="AAPL"))


class _Gate:
    """``os.fsync`` held until :meth:`release`: ``entered`` is set once an fsync waits."""

    def __init__(self, monkeypatch):
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()
        self.returned = 0               # fsyncs that went through since the gate last closed
        real = os.fsync

        def fsync(fd):
            if not self.open.is_set():
                self.entered.set()
                self.open.wait(_HANG_S * 3)
                real(fd)
                self.returned += 1
                return
            real(fd)

        monkeypatch.setattr(wal_module.os, "fsync", fsync)

    def hold(self):
        self.returned = 0
        self.entered.clear()
        self.open.clear()

    def release(self):
        self.open.set()


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


def test_group_fsync_failure_fails_the_waiters_and_later_appends(tmp_path, monkeypatch,
                                                                 caplog):
    async def main():
        wal = WriteAheadLog(str(tmp_path / "f.wal"))
        await wal.durable(wal.append(_rec(0)))

        def broken(fd):
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(wal_module.os, "fsync", broken)
        index = wal.append(_rec(1))
        with pytest.raises(WalError, match="fsync failed"):
            await asyncio.wait_for(wal.durable(index), _HANG_S)
        with pytest.raises(WalError):
            wal.append(_rec(2))
        assert wal.durable_index == 1
        await wal.close()

    asyncio.run(main())
    assert "fsync failed" in caplog.text


def test_group_commit_covers_what_was_appended_while_an_fsync_ran(tmp_path, monkeypatch):
    async def main():
        gate = _Gate(monkeypatch)
        wal = WriteAheadLog(str(tmp_path / "c.wal"))
        gate.hold()
        first = asyncio.ensure_future(wal.durable(wal.append(_rec(0))))
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, _HANG_S)
        later = [wal.append(_rec(i)) for i in range(1, 50)]     # while that fsync waits
        waiting = asyncio.ensure_future(wal.durable(later[-1]))
        await asyncio.sleep(0.05)
        assert not first.done() and wal.durable_index == 0
        gate.release()
        await asyncio.wait_for(asyncio.gather(first, waiting), _HANG_S)
        assert wal.durable_index == 50 and wal.fsyncs == 2      # one more for the 49
        await wal.close()

    asyncio.run(main())


def test_no_accepted_leaves_before_its_fsync(tmp_path, monkeypatch):
    """An order written to the WAL but not yet fsynced is not acknowledged: the Accepted
    arrives only once the held fsync is released."""
    async def main():
        gate = _Gate(monkeypatch)
        venue = await make_venue(tmp_path).start()
        alice, inbox = await login(venue, "alice")
        await inbox.count(1)                                    # start of day
        gate.hold()
        records = venue.wal.records
        alice.enter("A1", "B", 100, "AAPL", 100 * 10000)
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, _HANG_S)
        assert venue.wal.records == records + 1                 # in the log, not on disk
        await asyncio.sleep(0.3)                                # room for a wrong early ack
        assert inbox.of(b"A") == [] and gate.returned == 0
        gate.release()
        await inbox.wait(lambda box: box.of(b"A"), _HANG_S)
        assert gate.returned >= 1 and inbox.of(b"A")[0].order_token == "A1"
        await alice.logout()
        await venue.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_wal_outliving_its_event_loop_gets_a_new_writer(tmp_path):
    wal = WriteAheadLog(str(tmp_path / "l.wal"))

    async def append_durably(i):
        await asyncio.wait_for(wal.durable(wal.append(_rec(i))), _HANG_S)

    asyncio.run(append_durably(0))
    asyncio.run(append_durably(1))          # the first loop is closed
    assert wal.durable_index == 2
    wal.close_sync()


def test_the_group_writer_gets_the_gil_back_promptly(tmp_path):
    """Back from an fsync the writer needs the GIL; a busy loop thread yields it only after
    the switch interval (5 ms by default): starting the writer lowers it."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        wal = WriteAheadLog(str(tmp_path / "s.wal"))

        async def main():
            await asyncio.wait_for(wal.durable(wal.append(_rec(0))), _HANG_S)
            await wal.close()

        asyncio.run(main())
        assert sys.getswitchinterval() <= HANDOFF_SWITCH_S
    finally:
        sys.setswitchinterval(before)


def test_the_next_fsync_waits_until_the_loop_took_the_last(tmp_path, monkeypatch):
    """A busy loop gets one larger group, not an fsync per handful of records: while the loop
    has not taken an fsync's completion, the writer starts no other."""
    real, calls = os.fsync, []

    def counting(fd):
        real(fd)
        calls.append(fd)

    async def main():
        wal = WriteAheadLog(str(tmp_path / "h.wal"))
        await asyncio.wait_for(wal.durable(wal.append(_rec(0))), _HANG_S)
        monkeypatch.setattr(wal_module.os, "fsync", counting)
        index = wal.append(_rec(1))
        deadline = time.monotonic() + _HANG_S
        while not calls and time.monotonic() < deadline:     # the loop stays blocked
            time.sleep(0.001)
        assert len(calls) == 1
        last = wal.append(_rec(2))
        time.sleep(0.2)                     # room for a wrong second fsync
        assert len(calls) == 1 and wal.durable_index == 1
        await asyncio.wait_for(wal.durable(last), _HANG_S)      # the loop takes the first
        assert len(calls) == 2 and wal.durable_index == 3 and index == 1
        await wal.close()

    asyncio.run(main())


@pytest.mark.timeout(30)
def test_closing_from_the_loop_thread_while_the_writer_fsyncs_does_not_hang(tmp_path,
                                                                           monkeypatch):
    """``close_sync`` on the loop's own thread joins the writer, so the loop cannot take that
    writer's completion: a writer whose fsync returns after the stop must end, not wait for it
    (it did: a CI run hung until its deadline)."""
    real = os.fsync
    wal = WriteAheadLog(str(tmp_path / "x.wal"))

    def fsync_until_stopped(fd):
        if threading.current_thread().name.startswith("wal-writer"):
            deadline = time.monotonic() + _HANG_S
            while not wal._stopping and time.monotonic() < deadline:
                time.sleep(0.001)
        real(fd)

    async def main():
        await asyncio.wait_for(wal.durable(wal.append(_rec(0))), _HANG_S)
        monkeypatch.setattr(wal_module.os, "fsync", fsync_until_stopped)
        wal.append(_rec(1))                 # the writer's fsync returns once stopped
        wal.close_sync()

    asyncio.run(main())
    assert wal.durable_index == 2
