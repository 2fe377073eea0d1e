"""The main job's feed audience in a process of its own, off the venue's event loop.

Measured (README, the main job): the subscribers' work in the venue's loop (decoding every
packet into a book, re-requests, JSON from the WebSocket server) raised ``tickwire run``'s
p50 from 2.7 ms to 5–10 ms. :class:`AudienceProcess` runs a
:class:`~tickwire.marketdata.audience.FeedAudience` in a spawned process that knows only the
feed's addresses; the venue's process asks it over a pipe to join late and to check its books
against a :class:`~tickwire.marketdata.audience.VenueView`. A process that dies or errs is an
:class:`AudienceError`; :meth:`AudienceProcess.close` (also on Ctrl-C) leaves no process behind.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal

from tickwire.marketdata.audience import FeedAudience
from tickwire.ops.firms import describe_exit

__all__ = ["AudienceError", "AudienceProcess", "audience_process"]

log = logging.getLogger(__name__)

_ANSWER_S = 60.0        # the longest a request takes: a late join or a check waits 10 s


class AudienceError(RuntimeError):
    """The feed audience's process failed or died."""


async def _receive(conn, timeout):
    """The next message on ``conn`` without blocking the loop; EOFError if the other end
    closed, TimeoutError after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(conn.fileno())
    return conn.recv()


def audience_process(addresses, symbols, seed, conn):
    """The audience's process entry (``multiprocessing`` spawn): start a FeedAudience on
    ``addresses`` for ``symbols``, then answer ``("join", sequence)``, ``("check", view)`` and
    ``("close",)`` on ``conn`` until it is closed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the parent stops us on Ctrl-C
    try:
        asyncio.run(_serve(addresses, symbols, seed, conn))
    except Exception as exc:
        with contextlib.suppress(OSError):         # unless the venue's process is gone
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from exc
    finally:
        conn.close()


async def _serve(addresses, symbols, seed, conn):
    audience = await FeedAudience(addresses, seed=seed).start(symbols)
    conn.send(("started", os.getpid()))
    try:
        while True:
            try:
                message = await _receive(conn, None)
            except EOFError:
                return                  # the venue's process is gone
            if message[0] == "join":
                await audience.join_late(message[1])
                conn.send(("joined",))
            elif message[0] == "check":
                conn.send(("checked", await audience.check(message[1])))
            else:
                conn.send(("closed",))
                return
    finally:
        await audience.close()


class AudienceProcess:
    """The venue's handle on the audience's process: :meth:`start`, then :meth:`join_late`,
    :meth:`check` and :meth:`close` (each waits for the process's answer)."""

    def __init__(self, process, conn):
        self.process, self.conn = process, conn
        self.pid = process.pid

    @classmethod
    async def start(cls, addresses, symbols, seed):
        """Spawn the process and wait until its subscribers and clients are connected."""
        spawn = multiprocessing.get_context("spawn")
        conn, child_conn = spawn.Pipe()
        process = spawn.Process(target=audience_process, name="tickwire-feed-audience",
                                daemon=True, args=(addresses, list(symbols), seed, child_conn))
        process.start()
        child_conn.close()
        self = cls(process, conn)
        try:
            await self._answer("started")
        except BaseException:
            self.kill()
            raise
        log.info("the feed's subscribers: in their own process (pid %d)", self.pid)
        return self

    async def _request(self, message, expected):
        try:
            self.conn.send(message)
        except OSError:
            await self._died()
        return await self._answer(expected)

    async def _died(self):
        await asyncio.get_running_loop().run_in_executor(None, self.process.join, 5)
        raise AudienceError(f"the feed audience's process (pid {self.pid}) "
                            f"{describe_exit(self.process.exitcode)}") from None

    async def _answer(self, expected):
        try:
            message = await _receive(self.conn, _ANSWER_S)
        except EOFError:
            await self._died()
        except TimeoutError:
            raise AudienceError(f"the feed audience's process (pid {self.pid}) did not answer "
                                f"{expected!r} within {_ANSWER_S:.0f} s") from None
        if message[0] == "error":
            raise AudienceError(f"the feed audience's process (pid {self.pid}) failed: "
                                f"{message[1]}")
        return message

    async def join_late(self, at_sequence):
        """The late joiner joins now, the venue's next sequence number ``at_sequence``."""
        await self._request(("join", at_sequence), "joined")

    async def check(self, view):
        """The audience's :meth:`~tickwire.marketdata.audience.FeedAudience.check` of
        ``view`` (a VenueView)."""
        return (await self._request(("check", view), "checked"))[1]

    async def close(self):
        """Close the subscribers and clients and end the process."""
        try:
            if self.process.is_alive() and not self.conn.closed:
                await self._request(("close",), "closed")
        finally:
            if not self.conn.closed:
                self.conn.close()           # its end reads EOF: it ends by itself
            # Off the loop: the venue still serves while the subscribers' process ends.
            await asyncio.get_running_loop().run_in_executor(None, self.process.join, 5)
            self.kill()

    def kill(self, grace=0.0):
        """End the process if it has not ended ``grace`` s from now."""
        if not self.conn.closed:
            self.conn.close()
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
