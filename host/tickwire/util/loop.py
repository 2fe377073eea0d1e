"""Which event loop is running, for the reports; and prompt hand-offs from helper threads.

The venue runs on asyncio's own loop: uvloop was measured beside it (the venue under the
open-loop load generator, CPU per answered order) and saved nothing measurable, because the
time goes to the order path's Python, not to the loop (see the stage table); so it is not a
dependency. The reports still name the loop, so a figure says what it was measured on.

A helper thread (the WAL's group writer, the load generator's sender) returning from a
blocking call needs the GIL back before it can hand its result over, and a busy loop thread
gives it up only when asked, after the interpreter's switch interval: 5 ms by default, so
every fsync completion waited ~5 ms whenever the loop was busy (measured: fsync and regaining
the GIL beside a busy thread, p50 6.0 ms at 5 ms, 0.84 ms at 200 µs). :func:`prompt_handoffs`
lowers the interval for the process.
"""

import asyncio
import sys

__all__ = ["HANDOFF_SWITCH_S", "loop_name", "prompt_handoffs"]

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
