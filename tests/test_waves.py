"""``WAVES=1`` writes a waveform of a cocotb run into its build directory: an FST under
Verilator (``dump.fst``), an FST under Icarus (``<toplevel>.fst``).

The run is a small replay through ``--engine cocotb`` (engine + feed encoder, tiny capacity), in
a build directory of its own: a build with tracing is a different build. Verilator's FST writer
needs the LZ4 headers (Debian: ``apt-get install liblz4-dev``); without them the Verilator case
is skipped, saying so.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from tickwire.offline.commands import write_command_file
from tickwire.offline.gen import generate
from tickwire.offline.replay import replay
from tickwire.protocol.link import ModelParams
from tickwire.sim.engines import CocotbEngine
from tickwire.sim.runner import BUILD_ROOT, SimulatorMissing, prepare_simulator

TINY = ModelParams(max_orders=16, max_symbols=2, band_ticks=16, max_qty=5000)
WAVEFORMS = (".fst", ".vcd")


def _lz4_headers():
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        return False
    result = subprocess.run([compiler, "-E", "-x", "c++", "-"], check=False,
                            input="#include <lz4.h>\n", capture_output=True, text=True)
    return result.returncode == 0


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_waves_written_in_build_dir(sim, tmp_path, monkeypatch):
    try:
        prepare_simulator(sim)
    except SimulatorMissing as exc:
        pytest.skip(str(exc))
    if sim == "verilator" and not _lz4_headers():
        pytest.skip("Verilator's FST tracing needs lz4.h: apt-get install liblz4-dev")
    root = (BUILD_ROOT / sim / "waves").resolve()
    build_dir = Path(f"{root}_exchange_core")   # where CocotbEngine builds for build_dir=root
    if build_dir.exists():
        for old in build_dir.iterdir():
            if old.suffix in WAVEFORMS:
                old.unlink()
    day = tmp_path / "day.csv"
    write_command_file(day, generate(30, seed=1, symbols=2, params=TINY))
    replay(str(day), engine="model", pcap_path=str(tmp_path / "model.pcap"), params=TINY)

    monkeypatch.setenv("WAVES", "1")
    replay(str(day), engine=CocotbEngine(TINY, sim=sim, build_dir=root),
           pcap_path=str(tmp_path / "cocotb.pcap"), params=TINY)

    assert (tmp_path / "cocotb.pcap").read_bytes() == (tmp_path / "model.pcap").read_bytes()
    waves = [p for p in build_dir.iterdir() if p.suffix in WAVEFORMS]
    assert waves, f"no waveform in {build_dir}: {sorted(p.name for p in build_dir.iterdir())}"
    for path in waves:
        data = path.read_bytes()
        assert len(data) > 1000, f"{path}: {len(data)} bytes"
        if path.suffix == ".fst":
            # An FST starts with its header block: type 0, section length 329.
            assert data[0] == 0 and int.from_bytes(data[1:9], "big") == 329, path
