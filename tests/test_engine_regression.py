"""The engine's long regression (``tickwire.sim.fast_regress``): Verilator with a C++ main under
random idle cycles and backpressure, every event byte-equal to the model's.

``make regress`` runs eleven chunks of a million commands or more each (generated sessions,
adversarial streams, hazard streams and level walks, each chunk its own seed); each
chunk takes a few minutes, so ``make regress ARGS='-k chunk3'`` reruns one. ``make test`` runs a
short stream and checks that a difference is caught.
"""

import pytest
from hazards import hazard_commands
from test_hdl_engine_amaranth import HAZARD, TIGHT, adversarial_commands, session_commands
from test_hdl_engine_walks import WALKS, walk_commands
from tickwire.protocol.link import ModelParams
from tickwire.sim import fast_regress
from tickwire.sim.fast_regress import RegressionMismatch, run_regression
from tickwire.sim.runner import BUILD_ROOT, SimulatorMissing, prepare_simulator

#: The generated sessions' book: room for the generator's busy symbols.
SESSION = ModelParams(max_orders=256, max_symbols=4, band_ticks=128, max_qty=1_000_000)

#: chunk → (command source, seed, commands at least); eleven million commands in all.
CHUNKS = [("session", 7 + i, 1_000_000) for i in range(6)] + \
         [("adversarial", 21, 1_000_000), ("adversarial", 22, 1_000_000),
          ("hazard", 31, 1_000_000), ("hazard", 32, 1_000_000), ("walk", 41, 1_000_000)]


def _commands(source, size, seed):
    """``(params, commands)`` of one chunk."""
    if source == "session":
        # The host refuses a few generated requests before the engine: ask for 1 % more.
        return SESSION, session_commands(size + size // 100, seed, SESSION.max_symbols,
                                         SESSION)
    if source == "adversarial":
        return TIGHT, adversarial_commands(size, seed, TIGHT)
    if source == "walk":
        return WALKS, walk_commands(size, seed)[0]
    return HAZARD, hazard_commands(size, seed, HAZARD)


def _run(source, size, seed, **kwargs):
    try:
        prepare_simulator("verilator")
    except SimulatorMissing as exc:
        pytest.skip(str(exc))
    params, commands = _commands(source, size, seed)
    build = BUILD_ROOT / "verilator" / f"regress_{source}"
    result = run_regression(params, commands, build, seed=seed, **kwargs)
    print(f"\n{source} seed {seed}: {result.commands} commands, {result.events} events, "
          f"{result.cycles} cycles; Verilator {result.seconds_sim:.0f} s, "
          f"model {result.seconds_model:.0f} s")
    return result


def test_short_stream_matches_the_model():
    result = _run("adversarial", 5_000, 3, idle=0.2, stall=0.3)
    assert result.commands == 5_000 and result.events > result.commands


def test_a_difference_is_caught(monkeypatch):
    real = fast_regress.expected_events

    def one_wrong(params, commands):
        want = bytearray(real(params, commands))
        want[1000] ^= 1
        return bytes(want)

    monkeypatch.setattr(fast_regress, "expected_events", one_wrong)
    with pytest.raises(RegressionMismatch, match="event 19 "):
        _run("adversarial", 500, 4)


@pytest.mark.regress
@pytest.mark.parametrize("source, seed, size", CHUNKS,
                         ids=[f"chunk{i}-{c[0]}" for i, c in enumerate(CHUNKS)])
def test_regression_chunk(source, seed, size):
    result = _run(source, size, seed)
    assert result.commands >= size
