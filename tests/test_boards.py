"""Board tops elaborate into build plans with the real core; a broken engine fails loudly."""

import pytest
from amaranth.hdl import Fragment
from tickwire.boards import core as board_core
from tickwire.boards import icebreaker, ulx3s
from tickwire.boards.core import STAND_IN, make_core
from tickwire.boards.synth import report_problems
from tickwire.hdl.feed_encoder import FeedEncoder
from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.protocol.link import ModelParams

PARAMS = ModelParams(max_orders=64, max_symbols=2, band_ticks=64)


def test_pll_settings():
    assert icebreaker.ice40_pll_params(12, 24) == (0, 63, 5)
    assert icebreaker.ice40_pll_params(12, 48) == (0, 63, 4)
    clki, fb, op = ulx3s.ecp5_pll_params(25, 60)
    assert 25 / clki * fb == 60 and 400 <= 60 * op <= 800


@pytest.mark.parametrize("board,top_cls", [(icebreaker, icebreaker.ICEBreakerTop),
                                           (ulx3s, ulx3s.ULX3STop)])
def test_build_plan_holds_the_real_core(board, top_cls):
    core, notes = make_core(PARAMS)
    assert notes == {"engine": "MatchingEngine", "best_price": True, "order_register": False,
                     "lookahead": True, "feed": "FeedEncoder"}
    assert isinstance(core.engine, MatchingEngine) and isinstance(core.feed, FeedEncoder)
    top = top_cls(core, PARAMS)
    plan = board.platform().build(top, do_build=False)
    rtlil = next(text for name, text in plan.files.items() if name.endswith(".il"))
    assert "engine" in rtlil and "feed" in rtlil
    assert any(name.endswith((".pcf", ".lpf")) for name in plan.files)


def test_stand_in_only_on_request():
    core, notes = make_core(PARAMS, stand_in=True)
    assert notes["engine"] == STAND_IN and core.feed is None
    Fragment.get(core, None)


def test_broken_engine_fails_the_build(monkeypatch):
    class Broken(MatchingEngine):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("engine does not elaborate")

    monkeypatch.setattr(board_core, "MatchingEngine", Broken)
    with pytest.raises(RuntimeError, match="does not elaborate"):
        make_core(PARAMS)


def test_report_problems():
    good = {"core": {"engine": "MatchingEngine", "feed": "FeedEncoder"}, "fits": True,
            "meets_timing": True}
    assert report_problems(good) == []
    stand_in = dict(good, core={"engine": STAND_IN, "feed": "none"})
    problems = report_problems(stand_in)
    assert any("not the matching engine" in p for p in problems)
    assert any("feed encoder" in p for p in problems)
    assert report_problems(dict(good, fits=False)) == ["does not fit"]
    assert report_problems(dict(good, meets_timing=False)) == ["misses its clock"]
    assert report_problems(dict(good, error="boom"))[0] == "the build failed"


@pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")
def test_impossible_baud():
    core, _ = make_core(PARAMS, stand_in=True)
    with pytest.raises(ValueError):
        icebreaker.ICEBreakerTop(core, PARAMS, clk_mhz=12, baud=4_000_000)
