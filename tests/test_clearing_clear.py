"""Trade capture, novation, netting and ``tickwire clear`` (issue #12, items 1–4)."""

import csv
import datetime as dt
import json
import random
from pathlib import Path

import pytest
from clearing_util import DAY, order, write_config, write_journal
from tickwire.clearing.calendar import CalendarError, is_business_day, settlement_date
from tickwire.clearing.capture import trades_from_journal
from tickwire.clearing.netting import net
from tickwire.clearing.novation import ccp_position, novate
from tickwire.clearing.records import Trade
from tickwire.cli.main import main
from tickwire.core.money import format_price, parse_amount


@pytest.fixture
def day(tmp_path):
    config_path, config = write_config(tmp_path / "venue.json")
    wal = write_journal(tmp_path / "session.wal", config, DAY)
    return tmp_path, config_path, config, wal


def test_capture_one_trade_per_match_with_both_sides(day):
    _, _, config, wal = day
    trades = trades_from_journal(wal, config)
    assert [(t.match, t.symbol, t.qty, t.price, t.buyer, t.seller, t.buyer_account,
             t.seller_account) for t in trades] == [
        (1, "ACME", 200, 500000, "F01", "F02", "alice", "bob"),
        (2, "ACME", 100, 501000, "F01", "F02", "dave", "bob"),
        (3, "ACME", 100, 500500, "F03", "F01", "carol", "alice"),
        (4, "BOLT", 200, 200000, "F03", "F02", "carol", "bob")]
    assert {t.trade_date for t in trades} == {dt.date(2026, 12, 4)}
    assert trades == trades_from_journal(wal, config)       # rebuilt identically


def test_capture_leaves_the_journal_untouched(day):
    _, _, config, wal = day
    before = Path(wal).read_bytes()
    trades_from_journal(wal, config)
    assert Path(wal).read_bytes() == before


def test_novation_leaves_the_ccp_flat():
    rng = random.Random(5)
    trades = [Trade(i, rng.choice("XYZ"), rng.randrange(1, 500), rng.randrange(1, 10**6),
                    *rng.sample(["A", "B", "C", "D"], 2), "a", "b", dt.date(2026, 12, 4), i)
              for i in range(1, 400)]
    obligations = novate(trades)
    assert len(obligations) == 2 * len(trades)
    assert set(ccp_position(obligations).values()) == {(0, 0)}


def test_netting_of_the_day(day):
    _, _, config, wal = day
    netting = net(novate(trades_from_journal(wal, config)), {"F01", "F02", "F03"})
    rows = {(p.member, p.symbol): (p.qty, p.cash) for p in netting.positions}
    acme = 200 * 500000 + 100 * 501000
    assert rows[("F01", "ACME")] == (200, -acme + 100 * 500500)
    assert rows[("F02", "ACME")] == (-300, acme)
    assert rows[("F02", "BOLT")] == (-200, 200 * 200000)
    assert rows[("F03", "$CASH")] == (0, -(100 * 500500 + 200 * 200000))
    assert sum(c for (m, s), (q, c) in rows.items() if s == "$CASH") == 0
    assert netting.trades == 4
    assert netting.gross_movements == 16
    # F01 ACME, F02 ACME, F02 BOLT, F03 ACME, F03 BOLT + three cash movements
    assert netting.net_movements == 8
    gross_cash = 2 * (acme + 100 * 500500 + 200 * 200000)
    assert netting.gross_cash == gross_cash
    assert netting.efficiency == pytest.approx(1 - netting.net_cash / gross_cash)


def test_money_strings_round_trip():
    for amount in (0, 1, -1, 500000, 12345678901, -99):
        assert parse_amount(format_price(amount)) == amount
    assert format_price(500500) == "50.0500"
    with pytest.raises(ValueError):
        parse_amount("1.23456")


def test_calendar_uses_real_nyse_days():
    assert settlement_date(dt.date(2026, 12, 4)) == dt.date(2026, 12, 7)     # Fri → Mon
    assert settlement_date(dt.date(2026, 11, 25)) == dt.date(2026, 11, 27)   # Thanksgiving
    assert settlement_date(dt.date(2026, 12, 31)) == dt.date(2027, 1, 4)     # New Year
    assert settlement_date(dt.date(2026, 12, 3), cycle=2) == dt.date(2026, 12, 7)
    assert settlement_date(dt.date(2026, 12, 23), cycle=2) == dt.date(2026, 12, 28)  # Christmas
    assert not is_business_day(dt.date(2026, 12, 25))
    with pytest.raises(CalendarError, match="not an NYSE business day"):
        settlement_date(dt.date(2026, 12, 5))


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tickwire_clear_writes_the_contract_files(day, capsys):
    tmp, config_path, _, wal = day
    out = tmp / "clearing"
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(out)]) == 0
    trades = _read(out / "trades.csv")
    assert list(trades[0]) == ["match", "symbol", "qty", "price", "buyer", "seller",
                               "trade_date"]
    assert trades[1] == {"match": "2", "symbol": "ACME", "qty": "100", "price": "50.1000",
                         "buyer": "F01", "seller": "F02", "trade_date": "2026-12-04"}
    obligations = _read(out / "obligations.csv")
    assert list(obligations[0]) == ["member", "symbol", "net_qty", "net_cash"]
    assert {"member": "F02", "symbol": "$CASH", "net_qty": "0",
            "net_cash": "19010.0000"} in obligations
    netting = json.loads((out / "netting.json").read_text())
    assert netting["settlement_date"] == "2026-12-07"
    assert netting["gross"]["movements"] == 16 and netting["net"]["movements"] == 8
    assert 0 <= netting["efficiency"] <= 1
    first = {p: (out / p).read_bytes() for p in ("trades.csv", "obligations.csv",
                                                   "netting.json")}
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(out)]) == 0
    assert first == {p: (out / p).read_bytes() for p in first}            # deterministic


def test_trade_date_override_and_t_plus_2(day):
    tmp, config_path, _, wal = day
    out = tmp / "t2"
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(out),
                 "--trade-date", "2026-11-25", "--cycle", "2"]) == 0
    netting = json.loads((out / "netting.json").read_text())
    assert (netting["trade_date"], netting["settlement_date"]) == ("2026-11-25", "2026-11-30")
    assert {r["trade_date"] for r in _read(out / "trades.csv")} == {"2026-11-25"}


def test_bad_input_is_refused_with_a_clear_message(tmp_path, capsys):
    config_path, config = write_config(tmp_path / "venue.json")
    undated = write_journal(tmp_path / "undated.wal", config, DAY, date=None)
    out = tmp_path / "out"
    assert main(["-q", "clear", undated, "--config", config_path, "--out", str(out)]) == 2
    assert "records no trade date" in capsys.readouterr().err
    assert not out.exists()
    # a journal from a venue whose accounts this config does not know
    _, other = write_config(tmp_path / "other.json")
    foreign = dict(other.accounts)
    foreign["zed"] = foreign.pop("alice")
    other.accounts = foreign
    wal = write_journal(tmp_path / "foreign.wal", other, [order("zed", "x", "ACME", "B", 1,
                                                               50.0)])
    assert main(["-q", "clear", wal, "--config", config_path, "--out", str(out)]) == 2
    assert "zed are not in the config" in capsys.readouterr().err
    dated = write_journal(tmp_path / "sat.wal", config, DAY, date="2026-12-05")
    assert main(["-q", "clear", dated, "--config", config_path, "--out", str(out)]) == 2
    assert "2026-12-05 (Saturday) is not an NYSE business day" in capsys.readouterr().err
    assert main(["-q", "clear", str(tmp_path / "none.wal"), "--config", config_path,
                 "--out", str(out)]) == 2
    assert "no such journal" in capsys.readouterr().err
    assert not out.exists()

