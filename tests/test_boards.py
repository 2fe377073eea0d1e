"""Board tops elaborate and produce a build plan (``platform.build(top, do_build=False)``)."""

import pytest
from tickwire.boards import icebreaker, ulx3s
from tickwire.boards.core import make_core
from tickwire.sim.model import ModelParams

PARAMS = ModelParams(max_orders=64, max_symbols=2, band_ticks=64)


def test_pll_settings():
    assert icebreaker.ice40_pll_params(12, 24) == (0, 63, 5)
    assert icebreaker.ice40_pll_params(12, 48) == (0, 63, 4)
    clki, fb, op = ulx3s.ecp5_pll_params(25, 60)
    assert 25 / clki * fb == 60 and 400 <= 60 * op <= 800


@pytest.mark.parametrize("board,top_cls", [(icebreaker, icebreaker.ICEBreakerTop),
                                           (ulx3s, ulx3s.ULX3STop)])
@pytest.mark.parametrize("stand_in", [True, False])
def test_build_plan(board, top_cls, stand_in):
    core, _ = make_core(PARAMS, stand_in=stand_in)
    top = top_cls(core, PARAMS)
    plan = board.platform().build(top, do_build=False)
    files = plan.files
    assert "top.il" in files or any(name.endswith(".il") for name in files)
    assert any(name.endswith((".pcf", ".lpf")) for name in files)


def test_impossible_baud():
    core, _ = make_core(PARAMS, stand_in=True)
    core._MustUse__silence = core.engine._MustUse__silence = True
    with pytest.raises(ValueError):
        icebreaker.ICEBreakerTop(core, PARAMS, clk_mhz=12, baud=4_000_000)
