"""The matching engine's Verilog under cocotb (``tickwire.sim.tb_matching_engine``): random
command streams with idle cycles and backpressure, every event compared bit for bit with the
reference model by the bench's scoreboard, and a functional coverage tally at the end.

Each case builds into its own directory under ``build/sim/<sim>/``. The commands reach the bench
as a file of ``Command.to_bytes()`` records named in the environment. The long regression (ten
million commands) runs without Python per cycle: ``tests/test_engine_regression.py``.
"""

import pytest
from hazards import REQUIRED_BINS, hazard_bins, hazard_commands
from test_hdl_engine_amaranth import (
    HAZARD,
    MEDIUM,
    SMALL,
    TIGHT,
    adversarial_commands,
    session_commands,
)
from tickwire.sim.runner import BUILD_ROOT, SimulatorMissing, prepare_simulator
from tickwire.sim.tb_matching_engine import run_bench

#: (simulator, seed, command source, params, size, idle, stall)
CASES = [
    ("verilator", 1, "session", MEDIUM, 20_000, 0.1, 0.2),
    ("verilator", 2, "adversarial", TIGHT, 6_000, 0.3, 0.3),
    ("verilator", 3, "hazard", HAZARD, 6_000, 0.0, 0.2),
    ("icarus", 1, "adversarial", TIGHT, 1_500, 0.2, 0.2),
    ("icarus", 2, "session", SMALL, 1_000, 0.2, 0.3),
]


def _commands(source, size, seed, params):
    if source == "session":
        return session_commands(size, seed, params.max_symbols, params)
    if source == "hazard":
        return hazard_commands(size, seed, params)
    return adversarial_commands(size, seed, params)


def _run(sim, seed, source, params, size, idle, stall, tag=""):
    try:
        prepare_simulator(sim)
    except SimulatorMissing as exc:
        pytest.skip(str(exc))
    commands = _commands(source, size, seed, params)
    build_dir = (BUILD_ROOT / sim / f"matching_engine_{source}{tag}_{seed}").resolve()
    report = run_bench(params, commands, build_dir=build_dir, sim=sim, seed=seed, idle=idle,
                       stall=stall)
    bins = report["bins"]
    print(f"\n{sim} seed {seed}: {len(commands)} commands, {report['events']} events, "
          f"{report['cycles']} cycles")
    for name in sorted(bins):
        print(f"  {name:<40} {bins[name]}")
    return commands, bins


@pytest.mark.parametrize("sim, seed, source, params, size, idle, stall", CASES,
                         ids=[f"{c[0]}-{c[2]}-{c[1]}" for c in CASES])
def test_engine_random(sim, seed, source, params, size, idle, stall):
    commands, bins = _run(sim, seed, source, params, size, idle, stall)
    assert len(commands) >= min(size, 1000)
    if source == "hazard":
        hazards = hazard_bins(commands, params)
        assert not [b for b in REQUIRED_BINS if not hazards.get(b)], sorted(hazards)
    if size >= 20_000:
        for wanted in ("replace KEPT", "replace MOVED", "replace CROSSED",
                       "walk 2 level(s)", "expired DAY order", "order DAY: rest",
                       "order IOC: partial, kill IOC", "order FOK: kill FOK"):
            assert bins.get(wanted), f"coverage bin {wanted!r} not reached: {sorted(bins)}"
        assert any(k.startswith("stp ") for k in bins)


def test_replay_cocotb_engine_writes_the_model_pcap(tmp_path):
    from tickwire.offline.commands import write_command_file
    from tickwire.offline.gen import generate
    from tickwire.offline.replay import replay
    from tickwire.sim.engines import CocotbEngine

    try:
        prepare_simulator("verilator")
    except SimulatorMissing as exc:
        pytest.skip(str(exc))
    path = tmp_path / "day.csv"
    write_command_file(path, generate(300, seed=6, symbols=3, params=MEDIUM))
    replay(str(path), engine="model", pcap_path=str(tmp_path / "model.pcap"), params=MEDIUM)
    # Reuses the build of the first Verilator case (same design): make finds it up to date.
    engine = CocotbEngine(MEDIUM, sim="verilator",
                          build_dir=(BUILD_ROOT / "verilator" / "matching_engine_session_1")
                          .resolve())
    replay(str(path), engine=engine, pcap_path=str(tmp_path / "cocotb.pcap"), params=MEDIUM)
    assert (tmp_path / "model.pcap").read_bytes() == (tmp_path / "cocotb.pcap").read_bytes()
