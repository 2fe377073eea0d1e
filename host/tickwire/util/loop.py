"""Which event loop is running, for the reports.

The venue runs on asyncio's own loop: uvloop was measured beside it (the venue under the
open-loop load generator, CPU per answered order) and saved nothing measurable, because the
time goes to the order path's Python, not to the loop (see the stage table); so it is not a
dependency. The reports still name the loop, so a figure says what it was measured on.
"""

import asyncio

__all__ = ["loop_name"]


def loop_name():
    """The running loop's package and class, e.g. ``asyncio _UnixSelectorEventLoop``."""
    loop = asyncio.get_running_loop()
    return f"{type(loop).__module__.split('.')[0]} {type(loop).__name__}"
