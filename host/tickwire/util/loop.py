"""Which event loop is running, for the reports; and prompt hand-offs from helper threads.

The venue runs on asyncio's own loop: uvloop was measured beside it (the venue under the
open-loop load generator, CPU per answered order) and saved nothing measurable, because the
time goes to the order path's Python, not to the loop (see the stage table); so it is not a
dependency. The reports still name the loop, so a figure says what it was measured on.

A helper thread (the load generators' sender) returning from a blocking call needs the GIL
back before it can go on, and a busy thread gives it up only when asked, after the
interpreter's switch interval: 5 ms by default (measured when the WAL's fsync ran on a thread:
fsync and regaining the GIL beside a busy thread, p50 6.0 ms at 5 ms, 0.84 ms at 200 µs; the
WAL now fsyncs from a process of its own, :mod:`tickwire.sequencer.journal.fsyncer`).
:func:`prompt_handoffs` lowers the interval for the process.
"""

import asyncio
import ctypes
import sys

__all__ = ["HANDOFF_SWITCH_S", "loop_name", "precise_sleeps", "prompt_handoffs"]

_PR_SET_TIMERSLACK = 29

#: The GIL switch interval (s) a process with hand-off threads runs at.
HANDOFF_SWITCH_S = 0.0002


def loop_name():
    """The running loop's package and class, e.g. ``asyncio _UnixSelectorEventLoop``."""
    loop = asyncio.get_running_loop()
    return f"{type(loop).__module__.split('.')[0]} {type(loop).__name__}"


def prompt_handoffs(interval=HANDOFF_SWITCH_S):
    """Lower the interpreter's GIL switch interval to ``interval`` seconds (never raise it)."""
    if sys.getswitchinterval() > interval:
        sys.setswitchinterval(interval)


def precise_sleeps():
    """End this thread's sleeps (and those of the threads it starts afterwards) on time.

    Linux lets a sleep run up to the thread's *timer slack* late (50 µs by default) to batch
    wake-ups; a load generator sleeping to each request's due time was that much late on every
    one, counted in the venue's open-loop latency. This sets the slack to 1 ns
    (``prctl(PR_SET_TIMERSLACK)``). Returns False where that is not available (not Linux):
    the generators report their send lag either way.
    """
    if not sys.platform.startswith("linux"):
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0) == 0
