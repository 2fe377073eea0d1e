"""``tickwire replay`` gives the same pcap, reports and summary on every engine.

One generated command file (a few hundred orders, small capacity so that the Verilator build is
quick) is replayed with the model (the reference), the gateware engine in Amaranth's simulator,
and engine + feed encoder gateware under cocotb (Verilator through the command line, Icarus
through the API). With ``--engine cocotb`` the pcap is the gateware feed encoder's own frames
(``CocotbEngine.frames``), not the host's encoding of the events.

The command-line run sizes the engine with ``--max-orders`` and friends (the default
capacity's Verilator build takes minutes).

Builds go to ``build/sim/<sim>/exchange_core_o64_s3_b64_q100000_l0`` (the engine's default),
kept between runs.
"""

import json

import pytest
import tickwire.offline.replay as replay_module
from tickwire.cli.main import main
from tickwire.engine.model import ModelEngine
from tickwire.engine.registry import open_engine
from tickwire.offline.commands import Row, write_command_file
from tickwire.offline.gen import generate
from tickwire.offline.replay import replay
from tickwire.protocol import moldudp64, pcap
from tickwire.protocol.feed import FeedAddress
from tickwire.protocol.link import ModelParams, Side, Tif
from tickwire.sim.engines import CocotbEngine
from tickwire.sim.runner import SimulatorMissing, prepare_simulator

PARAMS = ModelParams(max_orders=128, max_symbols=3, band_ticks=64, max_qty=100_000)
#: Resting DAY orders added at the end of the day, so that their expiry at the close (one
#: command: DELETE × TAIL, 21 bytes each) fills more than one 1400-byte MoldUDP64 packet.
TAIL = 75


def day_rows():
    rows = generate(400, seed=2, symbols=3, params=PARAMS)
    first = next(r for r in rows if r.action == "symbol")
    low = (first.price // 100 - PARAMS.band_ticks // 2 + 1) * 100      # band_low + 1 tick, $0.01
    time = rows[-1].time
    for i in range(TAIL):
        rows.append(Row("new", time + i + 1, firm="F99", token=f"tail-{i}", symbol=first.symbol,
                        side=Side.BUY, qty=100 + i, price=low + 100 * (i % 4), tif=Tif.DAY))
    return rows


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = tmp_path_factory.mktemp("day") / "day.csv"
    write_command_file(path, day_rows())
    return path


def _outputs(directory, name):
    return ((directory / f"{name}.pcap").read_bytes(),
            (directory / f"{name}.jsonl").read_text())


def _replay(day, directory, engine):
    name = engine if isinstance(engine, str) else f"{engine.name}-{engine.sim}"
    summary = replay(str(day), engine=engine, pcap_path=str(directory / f"{name}.pcap"),
                     reports_path=str(directory / f"{name}.jsonl"), params=PARAMS)
    return _outputs(directory, name) + (summary,)


@pytest.fixture(scope="module")
def model(day, tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    feed, reports, summary = _replay(day, directory, "model")
    # The file is worth replaying: trades, self-trade prevention, replaces, host and engine
    # rejects, and a close whose expiries take more than one packet.
    assert summary["trades"] > 20 and summary["replaced"] > 20, summary
    assert summary["cancels"]["self-trade prevention"] and summary["rejects"], summary
    assert summary["cancels"]["expired at the close"] > TAIL, summary
    sizes = [len(frame) for _, frame in pcap.read_pcap(str(directory / "model.pcap"))]
    assert sum(size > 1400 for size in sizes) >= 1, "no full packet"
    return feed, reports, summary


def _require(sim):
    try:
        prepare_simulator(sim)
    except SimulatorMissing as exc:
        pytest.skip(str(exc))


def _same(got, want):
    feed, reports, summary = got
    assert summary == want[2]
    assert reports == want[1]
    assert feed == want[0], "pcaps differ"


def test_amaranth_equals_model(day, model, tmp_path):
    _same(_replay(day, tmp_path, "amaranth"), model)


def test_cocotb_verilator_cli_equals_model(day, model, tmp_path, monkeypatch):
    _require("verilator")
    engines = []

    def recording_open_engine(spec, params=None):
        engines.append(open_engine(spec, params))
        return engines[-1]

    # Only to reach the engine object afterwards; the capacity comes from the command line.
    monkeypatch.setattr(replay_module, "open_engine", recording_open_engine)
    feed, reports, summary = (tmp_path / "cocotb.pcap", tmp_path / "cocotb.jsonl",
                              tmp_path / "summary.json")
    assert main(["-q", "replay", str(day), "--engine", "cocotb", "--pcap", str(feed),
                 "--reports", str(reports), "--summary", str(summary),
                 "--max-orders", str(PARAMS.max_orders), "--max-symbols", str(PARAMS.max_symbols),
                 "--band-ticks", str(PARAMS.band_ticks), "--max-qty", str(PARAMS.max_qty)]) == 0
    [engine] = engines
    assert isinstance(engine, CocotbEngine) and engine.params == PARAMS
    _same((feed.read_bytes(), reports.read_text(), json.loads(summary.read_text())), model)
    # The pcap is the gateware's frames: every one, end of session last, no heartbeat.
    frames = engine.frames
    assert len(frames) == model[2]["feed"]["packets"]
    records = pcap.read_pcap(str(feed))
    assert [f for _, f in records] == [f for _, f in frames]
    payloads = pcap.udp_payloads(str(feed), FeedAddress.port)
    counts = [moldudp64.decode_packet(p).count for p in payloads]
    assert counts[-1] == moldudp64.END_OF_SESSION
    assert moldudp64.HEARTBEAT not in counts and counts.count(moldudp64.END_OF_SESSION) == 1


def test_cocotb_icarus_equals_model(day, model, tmp_path):
    _require("icarus")
    _same(_replay(day, tmp_path, CocotbEngine(PARAMS, sim="icarus")), model)


class _TamperedFeed:
    """A batch engine: the model's events, and the model's frames with one byte changed, as if
    a gateware feed encoder had got it wrong."""

    name, batch, sim = "tampered", True, "none"

    def __init__(self, frames):
        self.params = PARAMS
        self.model = ModelEngine(PARAMS)
        self.good = frames
        self.frames = None

    def process_all(self, commands):
        self.frames = list(self.good)
        ts, frame = self.frames[5]
        self.frames[5] = (ts, frame[:-1] + bytes([frame[-1] ^ 1]))
        return [self.model.process(cmd) for cmd in commands]

    def close(self):
        pass


def test_replay_writes_the_engines_frames(day, model, tmp_path):
    """No simulator: a batch engine's ``frames`` are what the pcap holds, and a feed that
    differs from the host's encoding of the same events fails the replay (after writing)."""
    model_path = tmp_path / "model.pcap"
    model_path.write_bytes(model[0])
    frames = pcap.read_pcap(str(model_path))
    engine = _TamperedFeed(frames)
    with pytest.raises(RuntimeError, match="differs from the host.s .*packet 5 "):
        replay(str(day), engine=engine, pcap_path=str(tmp_path / "t.pcap"), params=PARAMS)
    written = pcap.read_pcap(str(tmp_path / "t.pcap"))
    assert written == engine.frames != frames
