"""``tickwire replay``: play a command file into an engine; write the feed pcap and the reports."""

import io

from tickwire.engine.model import ModelEngine
from tickwire.engine.registry import open_engine
from tickwire.offline.commands import read_command_file
from tickwire.offline.device_feed import DeviceFeedError, device_frames, feed_difference
from tickwire.offline.session import TradingSession
from tickwire.protocol import pcap
from tickwire.protocol.link import Command
from tickwire.util.files import atomic_output
from tickwire.util.progress import progress

__all__ = ["FeedMismatch", "replay"]


def replay(commands, engine="model", pcap_path=None, reports_path=None, params=None,
           show_progress=False):
    """Replay a command file. Returns the session summary.

    ``engine`` is an engine name for :func:`~tickwire.engine.registry.open_engine` or an engine
    object. A batch engine (``cocotb``) is played in three passes (see ``_batch_playback``).
    If the engine ran a feed encoder too (a batch engine's ``frames``, or a board's
    ``feed_packets()``: :mod:`tickwire.offline.device_feed`), the pcap holds *its* feed; the
    host still encodes the feed from the events (for the book and the summary), and if the
    two differ the replay raises :class:`FeedMismatch`, naming the first differing packet,
    once the outputs are written. An engine behind a link adds its ``counters`` to the
    summary (``link``).

    The file is read and checked whole first (a malformed row raises
    :class:`~tickwire.offline.commands.CommandFileError` before anything is written); the
    outputs are renamed into place only when the replay has finished, so a link that fails
    half-way leaves none.
    """
    rows = read_command_file(commands) if isinstance(commands, str) else commands
    source = open_engine(engine, params) if isinstance(engine, str) else engine
    eng, frames = source, None
    if getattr(source, "batch", False):
        eng = _batch_playback(source, rows)
        frames = getattr(source, "frames", None)
    feed_packets = getattr(source, "feed_packets", None)
    who = "board" if feed_packets is not None else "gateware"
    difference = None
    try:
        with _maybe(pcap_path, "wb") as pcap_file, _maybe(reports_path, "w") as reports_file:
            compare = frames is not None or feed_packets is not None
            host_feed = io.BytesIO() if compare else pcap_file
            session = TradingSession(eng, host_feed, reports_file)
            for row in progress(rows, "replay", "cmd", enabled=show_progress):
                session.play(row)
            session.close()
            if feed_packets is not None:
                try:
                    frames = device_frames(feed_packets())
                except DeviceFeedError as error:
                    raise FeedMismatch(f"engine {source.name!r}: {error}") from None
            if frames is not None:
                device_feed = io.BytesIO()
                writer = pcap.PcapWriter(device_feed)
                for timestamp, frame in frames:
                    writer.write(frame, timestamp)
                if pcap_file is not None:
                    pcap_file.write(device_feed.getvalue())
                difference = feed_difference(pcap.parse_pcap(host_feed.getvalue(), "host feed"),
                                             pcap.parse_pcap(device_feed.getvalue(), who), who)
    finally:
        eng.close()
    if difference:
        raise FeedMismatch(f"engine {source.name!r}: the {who}'s feed differs from the host's "
                           f"encoding of the same events at {difference}"
                           + (f" (the pcap {pcap_path} holds the {who}'s)" if pcap_path else ""))
    summary = session.summary()
    if feed_packets is not None:
        summary["feed"]["end_of_session"] = who
    if hasattr(source, "counters"):
        summary["link"] = dict(source.counters)
    return summary


class FeedMismatch(RuntimeError):
    """The feed a device or the gateware produced is not the host's encoding of its events."""


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
