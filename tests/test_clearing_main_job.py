"""The main job clears and settles its day: ``tickwire run`` → ``build/run/clearing/``."""

import json

from tickwire.cli.main import main


def test_run_clears_and_settles_its_day(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--orders", "1500", "--clients", "4", "--symbols", "2", "--seed", "3",
                 "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "netting" in printed and "efficiency" in printed and "instructions settled" in printed
    clearing = out / "clearing"
    netting = json.loads((clearing / "netting.json").read_text())
    settlement = json.loads((clearing / "settlement.json").read_text())
    report = json.loads((out / "run.json").read_text())
    assert report["clearing"]["netting"] == netting
    assert netting["trades"] == report["fills"] > 0
    assert f"efficiency {100 * netting['efficiency']:.2f}%" in printed
    assert settlement["date"] == netting["settlement_date"]
    assert settlement["ledger_audit"] == {"cash": [], "securities": []}
    totals = settlement["totals"]
    rows = (clearing / "obligations.csv").read_text().splitlines()[1:]
    instructions = sum(1 for r in rows if "$CASH" not in r and not r.endswith(",0,0.0000"))
    assert totals["settled"] + totals["failed"] == instructions
    # the same journal and config give the same files through tickwire clear
    again = tmp_path / "again"
    assert main(["-q", "clear", str(out / "session.wal"), "--config", str(out / "venue.json"),
                 "--out", str(again), "--trade-date", netting["trade_date"]]) == 0
    for name in ("trades.csv", "obligations.csv", "netting.json"):
        assert (again / name).read_bytes() == (clearing / name).read_bytes()
    # running the settlement of that date again settles nothing new
    assert main(["-q", "settle", str(clearing), "--date", settlement["date"]]) == 2
    assert "already run" in capsys.readouterr().err
    # the positions read model: settled from the ledgers, unsettled from the failed ones
    assert main(["-q", "positions", str(out), "--json"]) == 0
    model = json.loads(capsys.readouterr().out)
    assert set(model) == {"F00", "F01", "F02", "F03"}
    cash_moved = {m: v["cash_moved"] for m, v in settlement["members"].items()}
    for name, m in model.items():
        accounts = m["accounts"]
        assert m["buying_power"] == m["settled_cash"] + m["unsettled_cash"]
        assert m["unsettled_cash"] == sum(a["unsettled_cash"] for a in accounts.values())
        failed = {f["instruction"].split(":")[-1] for f in
                  settlement["members"].get(name, {}).get("fails", [])}
        assert set(m["unsettled_shares"]) <= failed
        if not failed and name in cash_moved:
            assert m["unsettled_cash"] == 0
    assert main(["positions", str(out)]) == 0
    assert "buying power" in capsys.readouterr().out
    assert main(["-q", "positions", str(tmp_path / "nothing")]) == 2


def test_run_on_successive_days_carries_the_fails(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["run", "--orders", "1500", "--clients", "4", "--symbols", "2", "--seed", "3",
              "--out", str(out), "--no-progress"]
    assert main([*common, "--trade-date", "2026-12-04"]) == 0
    clearing = out / "clearing"
    day1 = json.loads((clearing / "settlement.json").read_text())
    assert day1["date"] == "2026-12-07" and day1["totals"]["failed"] > 0   # the defaults' fails
    capsys.readouterr()
    assert main([*common, "--seed", "4", "--trade-date", "2026-12-07"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in (clearing / "days").iterdir()) == ["2026-12-04", "2026-12-07"]
    day2 = json.loads((clearing / "settlement.json").read_text())
    assert day2["date"] == "2026-12-08" and day2["ledger_audit"] == {"cash": [],
                                                                      "securities": []}
    carried = [f for m in day2["members"].values() for f in m["fails"] if f["age"] == 1]
    still = {f["instruction"] for m in day1["members"].values() for f in m["fails"]}
    assert carried and {f["instruction"] for f in carried} <= still
    assert f"fails carried from earlier days: {len(carried)}" in printed
    # the day-1 fails to deliver are past their close-out date (S+1 = 8 Dec): due for buy-in
    assert {d["failed_since"] for d in day2["buy_ins_due"]} <= {"2026-12-07"}
    # the same day run again starts a new clearing directory
    assert main([*common, "--seed", "4", "--trade-date", "2026-12-07"]) == 0
    assert sorted(p.name for p in (clearing / "days").iterdir()) == ["2026-12-07"]
