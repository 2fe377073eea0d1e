"""``tickwire positions RUN_DIR``: the positions read model before, after and across settlement
cycles (issue #12, item 9)."""

import json

from clearing_util import DAY, order, write_config, write_journal
from test_clearing_days import BOLT, MEMBERS
from tickwire.cli.main import main

M = 10_000          # 1/10000 $ per $


def _day(run, date, requests, members=None):
    """A main-job-shaped directory: the day's journal and config, cleared into clearing/."""
    run.mkdir(exist_ok=True)
    config_path, config = write_config(run / "venue.json", members=members)
    (run / "session.wal").unlink(missing_ok=True)       # a new day: a new journal
    wal = write_journal(run / "session.wal", config, requests, date=date)
    assert main(["-q", "clear", wal, "--config", config_path, "--out",
                 str(run / "clearing")]) == 0


def _positions(run, capsys):
    capsys.readouterr()
    assert main(["-q", "positions", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_before_the_cycle_settled_holdings_are_the_opening_balances(tmp_path, capsys):
    run = tmp_path / "run"
    _day(run, "2026-12-04", DAY)
    f01 = _positions(run, capsys)["F01"]
    # F01 bought 300 ACME for $15,010 and sold 100 for $5,005: nothing has settled yet
    assert f01["settled_cash"] == 1_000_000 * M
    assert f01["settled_shares"] == {"ACME": 10_000, "BOLT": 10_000}
    assert (f01["unsettled_shares"], f01["unsettled_cash"]) == ({"ACME": 200}, -10_005 * M)
    assert f01["buying_power"] == (1_000_000 - 10_005) * M
    assert main(["-q", "settle", str(run / "clearing"), "--date", "2026-12-07"]) == 0
    f01 = _positions(run, capsys)["F01"]
    assert f01["settled_cash"] == f01["buying_power"] == (1_000_000 - 10_005) * M
    assert f01["settled_shares"]["ACME"] == 10_200
    assert (f01["unsettled_shares"], f01["unsettled_cash"]) == ({}, 0)


def test_a_member_netted_flat_has_nothing_unsettled_after_the_cycle(tmp_path, capsys):
    run = tmp_path / "run"
    flat = [order("bob", "s1", "ACME", "S", 100, 50.00),
            order("alice", "b1", "ACME", "B", 100, 50.00),      # F01 <- F02 100 @ 50.00
            order("carol", "b2", "ACME", "B", 100, 50.00),
            order("dave", "s2", "ACME", "S", 100, 50.00)]       # F03 <- F01 100 @ 50.00
    _day(run, "2026-12-04", flat)
    assert main(["-q", "settle", str(run / "clearing"), "--date", "2026-12-07"]) == 0
    f01 = _positions(run, capsys)["F01"]
    assert f01["accounts"]["alice"]["shares"] == {"ACME": 100}
    assert (f01["unsettled_shares"], f01["unsettled_cash"]) == ({}, 0)
    # everyone flat: the cycle has no instruction at all, and nothing is left unsettled
    run = tmp_path / "all-flat"
    _day(run, "2026-12-04", flat[:2] + [order("bob", "b3", "ACME", "B", 100, 50.00),
                                        order("dave", "s3", "ACME", "S", 100, 50.00)])
    assert main(["-q", "settle", str(run / "clearing"), "--date", "2026-12-07"]) == 0
    model = _positions(run, capsys)
    assert {m: (v["unsettled_shares"], v["unsettled_cash"]) for m, v in model.items()} == {
        m: ({}, 0) for m in ("F01", "F02", "F03")}


def test_a_fail_of_an_earlier_day_stays_unsettled_on_the_next(tmp_path, capsys):
    run = tmp_path / "run"
    _day(run, "2026-12-04", DAY, MEMBERS)               # F02 has 100 ACME, sells 300
    assert main(["-q", "settle", str(run / "clearing"), "--date", "2026-12-07"]) == 0
    _day(run, "2026-12-07", BOLT, MEMBERS)              # the next day: F02 does not trade
    for cycle_run in (False, True):
        f02 = _positions(run, capsys)["F02"]
        assert f02["accounts"] == {}
        assert f02["unsettled_shares"] == {"ACME": -300}            # carried from day 1
        assert f02["unsettled_cash"] == 15_010 * M
        assert f02["buying_power"] == f02["settled_cash"] + 15_010 * M
        if not cycle_run:
            assert main(["-q", "settle", str(run / "clearing"), "--date", "2026-12-08"]) == 0
    # the day's own trades settled: F03 holds the BOLT it bought, nothing of it unsettled
    f03 = _positions(run, capsys)["F03"]
    assert "BOLT" not in f03["unsettled_shares"]
