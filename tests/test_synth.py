"""FPGA builds with the YoWASP tools (minutes each): ``pytest -m regress tests/test_synth.py``.

The iCE40 build is the board's real core (matching engine, MoldUDP64 feed, link, UART), as
``make bitstream BOARD=icebreaker`` builds it in CI; the test fails if the build reports any
problem (stand-in engine, no feed, not fitting, a missed clock).
"""

import json
import os
import time

import pytest
from tickwire.boards.synth import (
    build_board,
    build_stage,
    parse_reports,
    program_main,
    report_problems,
    synth_figures,
)


@pytest.mark.regress
def test_build_icebreaker(tmp_path):
    started = time.monotonic()
    report = build_board("icebreaker", tmp_path / "icebreaker", progress=False)
    print(f"iCE40 build: {time.monotonic() - started:.0f} s, Fmax {report['fmax_mhz']}, "
          f"{report['utilization']}")
    assert report_problems(report) == [], (report.get("error"), report["nextpnr_utilization"],
                                           report["fmax_mhz"])
    assert json.loads((tmp_path / "icebreaker" / "report.json").read_text()) == report
    assert report["utilization"]["LUT4"] > 0 and report["utilization"]["EBR"] >= 2
    rows = synth_figures(tmp_path / "icebreaker" / "report.json")
    assert any(r.unit == "MHz" for r in rows)


def test_parse_reports(tmp_path):
    (tmp_path / "top.rpt").write_text(
        "   12 cells\n    900   SB_LUT4\n   10   SB_DFF\n  20   SB_DFFESR\n   2   SB_RAM40_4K\n"
        "   later\n   1000   SB_LUT4\n")
    (tmp_path / "top.tim").write_text(
        "Info: Max frequency for clock 'clk': 30.00 MHz (PASS at 24.00 MHz)\n"
        "Info: \t         ICESTORM_LC:   1803/   5280    34%\n"
        "Info: Max frequency for clock 'clk': 28.50 MHz (PASS at 24.00 MHz)\n")
    util, fmax, nextpnr = parse_reports("icebreaker", tmp_path)
    assert util["LUT4"] == 1000 and util["FF"] == 30 and util["EBR"] == 2
    assert fmax == {"clk": 28.5}
    assert nextpnr["ICESTORM_LC"] == (1803, 5280)


def test_program_without_programmer(tmp_path, monkeypatch, capsys):
    (tmp_path / "top.bin").write_bytes(b"\x00")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert program_main(["--board", "icebreaker", "--out", str(tmp_path)]) == 2
    assert "openFPGALoader or iceprog" in capsys.readouterr().err


def test_the_build_stage_ignores_an_earlier_builds_files(tmp_path):
    """A rebuild into the same directory said "done (1 s)" while nextpnr still ran."""
    old = time.time() - 3600
    for name in ("top.il", "top.json", "top.asc", "top.bin"):
        (tmp_path / name).write_text("an earlier build")
        os.utime(tmp_path / name, (old, old))
    started = time.time()
    assert build_stage(tmp_path, "icebreaker", started) == "elaboration"
    (tmp_path / "top.il").write_text("this build")
    assert build_stage(tmp_path, "icebreaker", started) == "synthesis (yosys)"
    (tmp_path / "top.json").write_text("this build")
    assert build_stage(tmp_path, "icebreaker", started) == "place and route (nextpnr)"
