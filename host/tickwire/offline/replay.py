"""``tickwire replay``: play a command file into an engine; write the feed pcap and the reports."""

import io

from tickwire.engine.model import ModelEngine
from tickwire.engine.registry import open_engine
from tickwire.offline.commands import read_command_file
from tickwire.offline.session import TradingSession
from tickwire.protocol import pcap
from tickwire.protocol.link import Command
from tickwire.util.files import atomic_output
from tickwire.util.progress import progress

__all__ = ["replay"]


def replay(commands, engine="model", pcap_path=None, reports_path=None, params=None,
           show_progress=False):
    """Replay a command file. Returns the session summary.

    ``engine`` is an engine name for :func:`~tickwire.engine.registry.open_engine` or an engine object.
    A batch engine (``cocotb``) is played in three passes (see ``_batch_playback``). If it ran
    the feed encoder too (its ``frames`` are set), the pcap holds the *gateware's* frames; the
    host still encodes the feed from the events (for the book and the summary), and if the two
    differ the replay raises ``RuntimeError`` once the outputs are written.

    The file is read and checked whole first (a malformed row raises
    :class:`~tickwire.commands.CommandFileError` before anything is written); the outputs are
    renamed into place only when the replay has finished.
    """
    rows = read_command_file(commands) if isinstance(commands, str) else commands
    if not isinstance(engine, str):
        eng = engine                    # an engine object (``tickwire.engine``)
    else:
        eng = open_engine(engine, params)
    frames = None
    if getattr(eng, "batch", False):
        batch = eng
        eng = _batch_playback(batch, rows)
        frames = getattr(batch, "frames", None)
    difference = None
    try:
        with _maybe(pcap_path, "wb") as pcap_file, _maybe(reports_path, "w") as reports_file:
            host_feed = io.BytesIO() if frames is not None else pcap_file
            session = TradingSession(eng, host_feed, reports_file)
            for row in progress(rows, "replay", "cmd", enabled=show_progress):
                session.play(row)
            session.close()
            if frames is not None:
                gateware_feed = io.BytesIO()
                writer = pcap.PcapWriter(gateware_feed)
                for timestamp, frame in frames:
                    writer.write(frame, timestamp)
                if pcap_file is not None:
                    pcap_file.write(gateware_feed.getvalue())
                difference = _feed_difference(host_feed.getvalue(), gateware_feed.getvalue())
    finally:
        eng.close()
    if difference:
        raise RuntimeError(f"engine {batch.name!r}: the gateware's feed differs from the host's "
                           f"encoding of the same events: {difference}"
                           + (f" (the pcap {pcap_path} holds the gateware's)" if pcap_path else ""))
    return session.summary()


def _feed_difference(host, gateware):
    """``None`` if the two pcaps are equal, else where they first differ."""
    if host == gateware:
        return None
    ours, theirs = pcap.parse_pcap(host, "host feed"), pcap.parse_pcap(gateware, "gateware feed")
    for number, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            what = "time" if a[1] == b[1] else "bytes"
            return (f"frame {number} ({what}): host {a[0] / 1e9:.6f} {a[1].hex()}, "
                    f"gateware {b[0] / 1e9:.6f} {b[1].hex()}")
    return f"{len(ours)} frames from the host, {len(theirs)} from the gateware"


class _Recorder:
    """The reference model, recording every command it is given."""

    def __init__(self, params):
        self.model = ModelEngine(params)
        self.params = self.model.params
        self.commands = []

    def process(self, cmd):
        self.commands.append(Command.from_bytes(cmd.to_bytes()))
        return self.model.process(cmd)


class _Playback:
    """Hands out a batch engine's events command by command, checking that the host sends
    exactly the commands the batch was run with."""

    def __init__(self, engine, commands, events):
        self.engine, self.params = engine, engine.params
        self.commands, self.events = commands, events
        self.index = 0

    def process(self, cmd):
        i = self.index
        if i >= len(self.commands) or cmd.to_bytes() != self.commands[i].to_bytes():
            raise RuntimeError(f"engine {self.engine.name!r} diverged from the model before "
                               f"command {i} ({cmd})")
        self.index += 1
        return self.events[i]

    def close(self):
        self.engine.close()


def _batch_playback(engine, rows):
    """A batch engine (``engine.batch``) in three passes: the session is played with the model
    to get its command list (the host's commands depend on events, but on an equal engine they
    are the model's); the batch engine runs that list; the session is played again with the
    engine's events, checking that the commands come out the same."""
    recorder = _Recorder(engine.params)
    session = TradingSession(recorder)
    for row in rows:
        session.play(row)
    session.close()
    return _Playback(engine, recorder.commands, engine.process_all(recorder.commands))


class _maybe:
    def __init__(self, path, mode):
        self.inner = atomic_output(path, mode) if path else None

    def __enter__(self):
        return self.inner.__enter__() if self.inner else None

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc) if self.inner else None
