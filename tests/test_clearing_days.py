"""Several trading days in one clearing directory through the CLI: ``tickwire clear`` of each
day's journal, ``tickwire settle`` of each settlement date; a fail to deliver of day 1 is
carried into the next days' cycles, aged, and bought in through the venue past its Reg SHO
close-out date, after other days' trades have joined the directory."""

import json

from clearing_util import DAY, order, write_config, write_journal
from test_clearing_buyin import buy_in_args, offering_venue
from test_clearing_settle import BALANCES
from tickwire.clearing.settle import open_ledgers
from tickwire.cli.main import main

POOR = dict(BALANCES, shares={"ACME": 100, "BOLT": 10_000})     # F02 sells 300 ACME on day 1
MEMBERS = {"F01": BALANCES, "F02": POOR, "F03": BALANCES}
# later days: F03 buys 100 BOLT from F01 (nothing in ACME: the fail is not cured by trading)
BOLT = [order("alice", "s9", "BOLT", "S", 100, 20.00),
        order("carol", "b9", "BOLT", "B", 100, 20.00)]


def _clear_day(tmp_path, out, date, requests):
    config_path, config = write_config(tmp_path / "venue.json", members=MEMBERS)
    n = len(list(tmp_path.glob("*.wal")))
    wal = write_journal(tmp_path / f"{date}-{n}.wal", config, requests, date=date)
    return main(["-q", "clear", wal, "--config", config_path, "--out", str(out)])


def _result(out):
    return json.loads((out / "settlement.json").read_text())


def _fails(result):
    return {f["instruction"]: f for m in result["members"].values() for f in m["fails"]}


def _conserved(out):
    cash, securities = open_ledgers(str(out))
    try:
        assert cash.audit() == {} and securities.audit() == {}
        assert sum(b.posted for b in cash.balances().values()) == 0
        assert sum(b.posted for b in securities.balances().values()) == 0
        return cash
    finally:
        securities.store.dispose()


def test_fails_carry_across_days_and_are_bought_in(tmp_path, capsys):
    out = tmp_path / "clearing"
    # day 1 (Fri 4 Dec) settles Mon 7 Dec: F02 fails to deliver 300 ACME
    assert _clear_day(tmp_path, out, "2026-12-04", DAY) == 0
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    assert _fails(_result(out))["2026-12-07:F02:ACME"]["age"] == 0
    # day 2 (Mon 7 Dec) joins the directory and settles Tue 8 Dec with the carried fail
    assert _clear_day(tmp_path, out, "2026-12-07", BOLT) == 0
    assert sorted(p.name for p in (out / "days").iterdir()) == ["2026-12-04", "2026-12-07"]
    assert json.loads((out / "netting.json").read_text())["trade_date"] == "2026-12-07"
    assert main(["-q", "settle", str(out), "--date", "2026-12-08"]) == 0
    day2 = _result(out)
    assert day2["members"]["F03"]["settled"] == 1 and day2["members"]["F01"]["settled"] == 1
    fail = _fails(day2)["2026-12-07:F02:ACME"]
    assert (fail["kind"], fail["age"]) == ("fail_to_deliver", 1)
    # Rule 204(a) under T+1: close out by S+1 (Tue 8 Dec); no venue given, so listed
    assert [d["instruction"] for d in day2["buy_ins_due"]] == ["2026-12-07:F02:ACME"]
    _conserved(out)
    # day 3 (Tue 8 Dec) settles Wed 9 Dec: the CCP buys the 300 shares in through the venue
    assert _clear_day(tmp_path, out, "2026-12-08", BOLT) == 0
    with offering_venue(tmp_path / "venue.wal", 300) as venue:    # 300 ACME at $50.50
        assert main(["-q", "settle", str(out), "--date", "2026-12-09",
                     *buy_in_args(venue)]) == 0
    day3 = _result(out)
    buy = day3["buy_ins"]["2026-12-07:F02:ACME"]
    assert (buy["outcome"], buy["bought"], buy["cost"]) == ("filled", 300, 300 * 505000)
    assert day3["members"]["F02"]["bought_in"] == 1 and day3["buy_ins_due"] == []
    assert "2026-12-07:F02:ACME" not in _fails(day3)
    assert day3["members"]["F03"]["settled"] == 1          # day 3's own BOLT trade
    cash = _conserved(out)
    # F02: opening + the day-1 BOLT sale − (the $50.50 buy-in − the $15,010 it sold for)
    assert cash.balance("F02").posted == (1_000_000 + 4000 - 15_150 + 15_010) * 10_000
    cash.store.dispose()


def test_days_out_of_order_are_refused(tmp_path, capsys):
    out = tmp_path / "clearing"
    assert _clear_day(tmp_path, out, "2026-12-07", BOLT) == 0
    assert _clear_day(tmp_path, out, "2026-12-04", DAY) == 2
    assert "cleared in order" in capsys.readouterr().err
    assert not (out / "days" / "2026-12-04").exists()
    assert json.loads((out / "netting.json").read_text())["trade_date"] == "2026-12-07"
    # the latest day may be cleared again until its cycle runs; not after
    assert _clear_day(tmp_path, out, "2026-12-07", BOLT) == 0
    assert main(["-q", "settle", str(out), "--date", "2026-12-09"]) == 0
    assert _clear_day(tmp_path, out, "2026-12-07", BOLT) == 2
    assert "not after it" in capsys.readouterr().err
    # a cycle before the last one run there
    assert main(["-q", "settle", str(out), "--date", "2026-12-08"]) == 2
    assert "2026-12-08 comes before it" in capsys.readouterr().err
    # a day settling on the same date as another (T+2 then T+1)
    other = tmp_path / "other"
    config_path, config = write_config(tmp_path / "venue.json", members=MEMBERS)
    wal = write_journal(tmp_path / "a.wal", config, BOLT, date="2026-12-07")
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(other),
                 "--cycle", "2"]) == 0
    wal = write_journal(tmp_path / "b.wal", config, BOLT, date="2026-12-08")
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(other)]) == 2
    assert "settle on 2026-12-09 too" in capsys.readouterr().err
