"""The journal port: where the exchange hands each engine command, with its request.

The :class:`~tickwire.exchange.front.Exchange` calls :meth:`JournalPort.record` with every
command it builds and the typed request that made it, before the engine sees the command.
Live, the port appends the pair to the write-ahead log. In recovery the sequencer replays each
logged request inside :meth:`JournalPort.replaying`, and the port checks that the request makes
the very command that was logged (byte for byte) instead of appending it.
"""

import contextlib
import time

from tickwire.sequencer.journal.wal import JournalRecord

__all__ = ["JournalPort", "RecoveryError"]


class RecoveryError(RuntimeError):
    """The journal does not replay into the same commands (wrong config or code change)."""


class JournalPort:
    """Appends ``(request, command)`` pairs to a :class:`~.wal.WriteAheadLog`.

    Parameters
    ----------
    wal : WriteAheadLog

    Members
    -------
    append_ns : int
        How long the last append took (encode and write), for the stage times.
    """

    def __init__(self, wal):
        self.wal = wal
        self.append_ns = 0
        self._last_request = None
        self._expected = None           # (logged command or None, replayed?) in recovery

    def record(self, request, command):
        """Journal ``command``, made for ``request``; return its record index (None when
        replaying).

        Raises
        ------
        RuntimeError
            The same request made a second command (one request, at most one command).
        RecoveryError
            In recovery: the command differs from the logged one, or none was logged.
        """
        if self._expected is not None:
            logged, done = self._expected
            if done or logged is None or logged.to_bytes() != command.to_bytes():
                raise RecoveryError(f"replayed command {command} differs from the log's "
                                    f"{None if done else logged}")
            self._expected = (logged, True)
            return None
        if request is None:
            raise ValueError(f"command {command} has no request to journal")
        if request is self._last_request:
            raise RuntimeError(f"one request made more than one engine command: {request}")
        self._last_request = request
        start = time.perf_counter_ns()
        index = self.wal.append(JournalRecord(request, command))
        self.append_ns = time.perf_counter_ns() - start
        return index

    @contextlib.contextmanager
    def replaying(self, index, command):
        """Replay journal record ``index``, whose logged command is ``command`` (or None)."""
        self._expected = (command, False)
        try:
            yield
            logged, done = self._expected
            if logged is not None and not done:
                raise RecoveryError(f"journal record {index}: logged command {logged} "
                                    "not replayed")
        finally:
            self._expected = None
