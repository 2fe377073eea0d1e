"""``tickwire settle``: T+1 DVP over the two ledgers, fails and their retries, bad input."""

import json

import pytest
from clearing_util import DAY, write_config, write_journal
from ledger_util import BACKENDS, namespace
from pg_util import require_pg
from tickwire.clearing.books import position
from tickwire.clearing.fails import waterfall
from tickwire.clearing.ledger.store import open_store
from tickwire.clearing.settle import open_ledgers
from tickwire.cli.main import main

BALANCES = {"cash": 1_000_000.0, "margin": 50_000.0, "guarantee_fund": 20_000.0,
            "shares": {"ACME": 10_000, "BOLT": 10_000}}


def _clear(tmp_path, members=None):
    tmp_path.mkdir(exist_ok=True)
    config_path, config = write_config(tmp_path / "venue.json", members=members)
    wal = write_journal(tmp_path / "session.wal", config, DAY)
    out = tmp_path / "clearing"
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(out)]) == 0
    return out


@pytest.fixture(params=BACKENDS)
def db(request):
    """(--db arguments, namespace for open_ledgers) of the backend."""
    if request.param == "sqlite":
        yield [], None
        return
    url, ns = require_pg(), namespace()
    yield ["--db", url], (url, ns)
    for name in ("cash", "securities"):
        open_store(name, url=url, namespace=ns).drop()


def _settle(out, date, db, monkeypatch):
    if db[1] is not None:
        monkeypatch.setattr("tickwire.clearing.settle.DEFAULT_NAMESPACE", db[1][1])
    return main(["-q", "settle", str(out), "--date", date, *db[0]])


def _ledgers(out, db):
    if db[1] is None:
        return open_ledgers(str(out))
    return open_ledgers(str(out), db[1][0], db[1][1])


def test_settles_every_obligation_and_moves_the_nets(tmp_path, db, monkeypatch):
    out = _clear(tmp_path)
    assert _settle(out, "2026-12-07", db, monkeypatch) == 0
    result = json.loads((out / "settlement.json").read_text())
    assert result["totals"] == {"settled": 5, "failed": 0, "bought_in": 0}
    assert result["members"]["F02"]["cash_moved"] == "19010.0000"
    assert result["members"]["F02"]["shares_moved"] == 500
    assert result["ledger_audit"] == {"cash": [], "securities": []}
    cash, securities = _ledgers(out, db)
    bal = {k: v.posted for k, v in cash.balances().items()}
    assert bal["F02"] == (1_000_000 + 19_010) * 10_000
    assert bal["F01"] == (1_000_000 - 10_005) * 10_000
    assert bal["CCP"] == 0
    shares = {k: v.posted for k, v in securities.balances().items()}
    assert shares[position("F01", "ACME")] == 10_200
    assert shares[position("F02", "ACME")] == 9_700
    assert shares[position("CCP", "ACME")] == 0
    assert sum(bal.values()) == 0 and sum(shares.values()) == 0
    # a second run settles nothing new, says so, and leaves the result alone
    before = (out / "settlement.json").read_bytes()
    assert _settle(out, "2026-12-07", db, monkeypatch) == 2
    assert (out / "settlement.json").read_bytes() == before


def test_fail_to_deliver_is_recorded_aged_and_retried(tmp_path, db, monkeypatch, capsys):
    poor = dict(BALANCES, shares={"ACME": 100, "BOLT": 10_000})
    out = _clear(tmp_path, members={"F01": BALANCES, "F02": poor, "F03": BALANCES})
    assert _settle(out, "2026-12-07", db, monkeypatch) == 0
    day1 = json.loads((out / "settlement.json").read_text())
    fails = {f["instruction"]: f for m in day1["members"].values() for f in m["fails"]}
    assert fails["2026-12-07:F02:ACME"]["kind"] == "fail_to_deliver"
    # the buyers' ACME cannot be delivered by the CCP, which did not receive it
    assert fails["2026-12-07:F01:ACME"]["kind"] == "ccp_short_shares"
    assert fails["2026-12-07:F01:ACME"]["age"] == 0
    assert fails["2026-12-07:F03:ACME"]["kind"] == "ccp_short_shares"
    assert day1["totals"]["settled"] == 2           # the BOLT legs of F02 and F03
    cash, securities = _ledgers(out, db)
    assert securities.balance(position("F02", "ACME")).posted == 100      # nothing moved
    assert sum(b.debits_pending for b in cash.balances().values()) == 0   # nothing held
    assert _settle(out, "2026-12-08", db, monkeypatch) == 0
    day2 = json.loads((out / "settlement.json").read_text())
    assert day2["totals"]["settled"] == 0
    ages = {f["instruction"]: f["age"] for m in day2["members"].values() for f in m["fails"]}
    assert ages["2026-12-07:F02:ACME"] == 1


def test_bad_input(tmp_path, monkeypatch, capsys):
    out = _clear(tmp_path, members={"F01": BALANCES, "F02": BALANCES})
    assert main(["-q", "settle", str(out), "--date", "2026-12-05"]) == 2
    assert "Saturday) is not an NYSE business day" in capsys.readouterr().err
    assert main(["-q", "settle", str(out), "--date", "2026-12-04"]) == 2
    assert "settle on 2026-12-07" in capsys.readouterr().err
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 2
    assert "F03 have no opening balances" in capsys.readouterr().err
    assert not (out / "settlement.json").exists() and not (out / "ccp.db").exists()
    full = _clear(tmp_path / "full")
    assert main(["-q", "settle", str(full), "--date", "2026-12-07", "--db",
                 "postgresql://tw:tw@127.0.0.1:1/tw"]) == 2
    assert "cannot open" in capsys.readouterr().err
    assert not (full / "settlement.json").exists() and not (full / "ccp.db").exists()
    assert main(["-q", "settle", str(tmp_path / "nothing"), "--date", "2026-12-07"]) == 2
    assert "run tickwire clear first" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "settle", str(full), "--date", "2026-12-07", "--batch", "0"])
    assert exit_.value.code == 2 and "'0' is not a whole number ≥ 1" in capsys.readouterr().err
    assert not (full / "ccp.db").exists()


def test_tickwire_config_writes_opening_balances(tmp_path, capsys):
    path = tmp_path / "venue.json"
    assert main(["-q", "config", "--account", "alice:F01:pw", "--symbol", "ACME=50",
                 "--balance", "F01:2500000.50:ACME=20000,BOLT=5", "-o", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["members"] == {"F01": {"cash": "2500000.50", "shares": {"ACME": 20000,
                                                                         "BOLT": 5}}}
    assert main(["-q", "config", "--account", "alice:F01:pw", "--balance", "F01:lots",
                 "-o", str(path)]) == 2
    assert "is not a dollar amount" in capsys.readouterr().err


def test_fail_to_pay_past_close_out_defaults_through_the_waterfall(tmp_path, capsys):
    broke = {"cash": "100.00", "margin": "1000.00", "guarantee_fund": "2000.00",
             "shares": {"ACME": 10_000, "BOLT": 10_000}}
    out = _clear(tmp_path, members={"F01": BALANCES, "F02": BALANCES, "F03": broke})
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    day1 = json.loads((out / "settlement.json").read_text())
    kinds = {f["instruction"]: f["kind"] for f in day1["members"]["F03"]["fails"]}
    assert kinds == {"2026-12-07:F03:ACME": "fail_to_pay", "2026-12-07:F03:BOLT": "fail_to_pay"}
    assert day1["defaults"] == {}                   # the close-out date is S+1
    assert main(["-q", "settle", str(out), "--date", "2026-12-08"]) == 0
    day2 = json.loads((out / "settlement.json").read_text())
    acme = day2["defaults"]["2026-12-07:F03:ACME"]
    # $5,005 owed: margin $1,000, then the guarantee fund $2,000, then CCP capital $2,005
    assert [(x["layer"], x["amount"]) for x in acme["layers"]] == [
        ("defaulter margin", 1000 * 10_000), ("defaulter guarantee fund", 2000 * 10_000),
        ("CCP capital", 2005 * 10_000)]
    bolt = day2["defaults"]["2026-12-07:F03:BOLT"]
    assert [x["layer"] for x in bolt["layers"]] == ["CCP capital"]
    assert day2["members"]["F03"]["defaulted"] == 2 and day2["members"]["F03"]["failed"] == 0
    cash, _ = open_ledgers(str(out))
    assert cash.balance("CCP").posted == 0           # the sellers paid, the CCP made whole
    assert cash.balance("F03:margin").posted == 0
    assert cash.balance("CCP:capital").posted == (1_000_000 - 2005 - 4000) * 10_000


def test_fail_to_deliver_past_close_out_is_due_for_buy_in(tmp_path):
    poor = dict(BALANCES, shares={"ACME": 100, "BOLT": 10_000})
    out = _clear(tmp_path, members={"F01": BALANCES, "F02": poor, "F03": BALANCES})
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    assert json.loads((out / "settlement.json").read_text())["buy_ins_due"] == []
    assert main(["-q", "settle", str(out), "--date", "2026-12-08"]) == 0
    due = json.loads((out / "settlement.json").read_text())["buy_ins_due"]
    assert due == [{"instruction": "2026-12-07:F02:ACME", "member": "F02", "symbol": "ACME",
                    "shares": 300, "failed_since": "2026-12-07",
                    "close_out_date": "2026-12-08"}]


def test_waterfall_reaches_the_other_members_fund_pro_rata():
    balances = {"F03:margin": 10, "F03:guarantee_fund": 20, "CCP:capital": 30,
                "F01:guarantee_fund": 300, "F02:guarantee_fund": 100}
    layers, uncovered = waterfall("F03", 200, balances, ["F01", "F02", "F03"])
    assert layers == [("F03:margin", 10, "defaulter margin"),
                      ("F03:guarantee_fund", 20, "defaulter guarantee fund"),
                      ("CCP:capital", 30, "CCP capital"),
                      ("F01:guarantee_fund", 105, "members' guarantee fund"),
                      ("F02:guarantee_fund", 35, "members' guarantee fund")]
    assert uncovered == 0
    assert waterfall("F03", 1000, balances, ["F01", "F02", "F03"])[1] == 540


def test_tickwire_gen_writes_a_venue_config_with_opening_balances(tmp_path, capsys):
    venue = tmp_path / "venue.json"
    assert main(["-q", "gen", "--orders", "200", "--firms", "3", "--symbols", "2", "-o",
                 str(tmp_path / "day.csv"), "--venue", str(venue), "--password", "pw"]) == 0
    data = json.loads(venue.read_text())
    assert sorted(data["members"]) == ["F00", "F01", "F02"]
    assert {a["firm"] for a in data["accounts"].values()} == {"F00", "F01", "F02"}
    assert set(data["members"]["F00"]["shares"]) == set(data["symbols"])
    with pytest.raises(SystemExit):
        main(["-q", "gen", "--orders", "10", "--venue", str(venue)])
    assert "needs --password" in capsys.readouterr().err


def _default_of_f03(tmp_path, others_fund, capital):
    """F03 cannot pay its $5,005 ACME and $4,000 BOLT; the rest of the waterfall is small."""
    broke = {"cash": "100.00", "margin": "1000.00", "guarantee_fund": "2000.00",
             "shares": {"ACME": 10_000, "BOLT": 10_000}}
    others = dict(BALANCES, guarantee_fund=others_fund)
    tmp_path.mkdir()
    config_path, config = write_config(
        tmp_path / "venue.json", members={"F01": others, "F02": dict(others, guarantee_fund=
                                                                      2 * others_fund),
                                          "F03": broke},
        ccp={"capital": capital, "credit_line": "100000000.00"})
    wal = write_journal(tmp_path / "session.wal", config, DAY)
    out = tmp_path / "clearing"
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(out)]) == 0
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    assert main(["-q", "settle", str(out), "--date", "2026-12-08"]) == 0
    return out, json.loads((out / "settlement.json").read_text())["defaults"]


def test_default_cascades_to_the_other_members_fund_then_uncovered(tmp_path):
    # CCP capital $1,000: ACME's $5,005 takes margin 1,000, fund 2,000, capital 1,000, then
    # $1,005 from F01's and F02's funds pro rata to their size (1:2)
    out, defaults = _default_of_f03(tmp_path / "a", 3000.0, "1000.00")
    acme = defaults["2026-12-07:F03:ACME"]
    assert [(x["account"], x["amount"]) for x in acme["layers"]] == [
        ("F03:margin", 1000 * 10_000), ("F03:guarantee_fund", 2000 * 10_000),
        ("CCP:capital", 1000 * 10_000), ("F01:guarantee_fund", 335 * 10_000),
        ("F02:guarantee_fund", 670 * 10_000)]
    assert acme["uncovered"] == 0
    # BOLT's $4,000 comes next: only the members' funds are left ($2,665 + $5,330)
    bolt = defaults["2026-12-07:F03:BOLT"]
    assert {x["layer"] for x in bolt["layers"]} == {"members' guarantee fund"}
    assert sum(x["amount"] for x in bolt["layers"]) == 4000 * 10_000
    cash, _ = open_ledgers(str(out))
    assert cash.balance("CCP").posted == 0 and cash.audit() == {}
    cash.store.dispose()
    # every layer too small: what is left is reported uncovered, the CCP's account short
    out, defaults = _default_of_f03(tmp_path / "b", 100.0, "0.00")
    acme, bolt = defaults["2026-12-07:F03:ACME"], defaults["2026-12-07:F03:BOLT"]
    assert acme["uncovered"] == (5005 - 3000 - 300) * 10_000 and bolt["uncovered"] == \
        4000 * 10_000
    cash, _ = open_ledgers(str(out))
    assert cash.balance("CCP").posted == -(acme["uncovered"] + bolt["uncovered"])
    cash.store.dispose()
