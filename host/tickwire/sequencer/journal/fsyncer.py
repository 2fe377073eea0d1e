"""The group commit's fsync, in a helper process of its own: no GIL between the loop and the disk.

A thread that fsyncs for the event loop needs the interpreter's lock twice per commit: to start
the fsync once an append has woken it, and to hand the completion back. The loop thread holds
that lock while it runs the engine (the append comes just before it), so each hand-off waited
for the loop to go idle or for the switch interval (measured on ``make run`` at 1,000
requests/s: append → writer awake p50 510 µs, fsync returned → loop p50 195 µs, against an
fsync of ~200 µs). A process has its own interpreter: it sleeps in ``read`` on a pipe, wakes as
soon as the loop writes a request, fsyncs the file (the same open file, inherited: ``fsync``
flushes the file's data whichever descriptor names it) while the loop goes on with the engine,
and writes its answer to a pipe the loop watches (``add_reader``), so the completion is the
loop's next I/O event.

Wire (pipes, big-endian, each message one atomic ``write``)::

    request  Q target     records written before the request (what the fsync must cover)
    answer   q target     the request's target, or -errno if the fsync failed (then it exits)
             Q ended      when the fsync returned: CLOCK_MONOTONIC ns (``time.perf_counter_ns``,
                          the same clock in every process)

The helper runs this file as a script under a bare interpreter (``-I -S``: no site, nothing but
the standard library), so it starts in milliseconds, and ignores SIGINT (the owner stops it).
It ends when the request pipe reaches end of file: when :meth:`Fsyncer.close` closes it, or when
the owner dies, killed or not (the kernel closes the owner's end), so no helper outlives its WAL.
"""

import os
import signal
import struct
import subprocess
import sys
import time

__all__ = ["FsyncFailed", "Fsyncer", "serve"]

_REQUEST = struct.Struct(">Q")
_ANSWER = struct.Struct(">qQ")


class FsyncFailed(OSError):
    """The helper's fsync failed, or the helper is gone."""


def serve(fd, requests, answers):
    """The helper's loop: fsync ``fd`` for each request read from ``requests`` and answer on
    ``answers``; return at end of file (0), after a failed fsync (1), or if nobody reads the
    answers any more (0)."""
    while True:
        data = os.read(requests, 4096)          # whole 8-byte requests: 4096 is a multiple
        if not data:
            return 0
        target = _REQUEST.unpack_from(data, len(data) - _REQUEST.size)[0]
        try:
            os.fsync(fd)
        except OSError as exc:
            answer, code = _ANSWER.pack(-(exc.errno or 5), time.perf_counter_ns()), 1
        else:
            answer, code = _ANSWER.pack(target, time.perf_counter_ns()), None
        try:
            os.write(answers, answer)
        except BrokenPipeError:
            return 0
        if code is not None:
            return code


class Fsyncer:
    """The owner's side of one helper process: fsync requests out, answers on the loop.

    Parameters
    ----------
    fd : int
        The open file the helper fsyncs.
    loop : asyncio event loop
        The loop whose thread sends the requests and gets the answers.
    on_synced : callable
        ``on_synced(target, ended_ns)``, on the loop, when an fsync covering records
        ``< target`` returned at ``ended_ns`` (``perf_counter_ns``).
    on_failed : callable
        ``on_failed(message)``, on the loop, if an fsync failed or the helper ended.

    Members
    -------
    busy : bool
        A request is out, its answer not yet taken.
    pid : int
    """

    def __init__(self, fd, loop, on_synced, on_failed):
        self.loop, self._on_synced, self._on_failed = loop, on_synced, on_failed
        requests, self._requests = os.pipe()
        self._answers, answers = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(fd), str(requests),
                 str(answers)], pass_fds=(fd, requests, answers), stdin=subprocess.DEVNULL)
        except BaseException:
            os.close(self._requests)
            os.close(self._answers)
            raise
        finally:
            os.close(requests)
            os.close(answers)
        self.pid = self.process.pid
        self.busy = False
        self._closed = False
        loop.add_reader(self._answers, self._readable)

    def request(self, target):
        """Ask for an fsync covering the records ``< target`` (written before this call)."""
        os.write(self._requests, _REQUEST.pack(target))
        self.busy = True

    def _readable(self):
        data = os.read(self._answers, _ANSWER.size)
        if len(data) < _ANSWER.size:
            self._stop_reading()
            code = self.process.wait()
            self._on_failed(f"the fsync helper (pid {self.pid}) ended (exit status {code})")
            return
        target, ended = _ANSWER.unpack(data)
        self.busy = False
        if target < 0:
            self._stop_reading()
            self._on_failed(f"fsync failed: {FsyncFailed(-target, os.strerror(-target))}")
            return
        self._on_synced(target, ended)

    def _stop_reading(self):
        if not self._closed:
            self._closed = True
            if not self.loop.is_closed():
                self.loop.remove_reader(self._answers)
            os.close(self._answers)
            os.close(self._requests)

    def close(self):
        """Stop the helper (after its running fsync, if any); return its process to wait for."""
        self._stop_reading()
        return self.process


def _main(argv):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, requests, answers = (int(arg) for arg in argv)
    return serve(fd, requests, answers)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
