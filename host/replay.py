"""``tickwire replay``: play a command file into an engine; write the feed pcap and the reports."""

from .commands import read_commands
from .engine import open_engine
from .progress import progress
from .session import TradingSession, atomic_output

__all__ = ["replay"]


def replay(commands, engine="model", pcap_path=None, reports_path=None, params=None,
           show_progress=False):
    """Replay a command file. Returns the session summary.

    The file is read and checked whole first (a malformed row raises
    :class:`~tickwire.commands.CommandFileError` before anything is written); the outputs are
    renamed into place only when the replay has finished.
    """
    rows = read_commands(commands) if isinstance(commands, str) else commands
    eng = open_engine(engine) if params is None else open_engine(engine, params)
    try:
        with _maybe(pcap_path, "wb") as pcap_file, _maybe(reports_path, "w") as reports_file:
            session = TradingSession(eng, pcap_file, reports_file)
            for row in progress(rows, "replay", "cmd", enabled=show_progress):
                session.play(row)
            session.close()
    finally:
        eng.close()
    return session.summary()


class _maybe:
    def __init__(self, path, mode):
        self.inner = atomic_output(path, mode) if path else None

    def __enter__(self):
        return self.inner.__enter__() if self.inner else None

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc) if self.inner else None
