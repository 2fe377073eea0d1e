"""Pre-trade risk: every check, its neutral reason, exposure, kill switch, throttle, decision log,
money as integers."""

import io
import json

import pytest
from tickwire.accounts.config import (
    Account,
    Config,
    Limits,
    hash_password,
    load_config,
    make_config,
    parse_config,
    verify_password,
    write_config,
)
from tickwire.core.reasons import Reason
from tickwire.core.reports import Report
from tickwire.risk.manager import RiskManager

R = Reason


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def _risk(account_limits=None, firm_limits=None, restricted=()):
    acc = Account("alice", "F01", "x", Limits.from_dict(account_limits or {}))
    cfg = Config(accounts={"alice": acc}, firms={"F01": Limits.from_dict(firm_limits or {})},
                 restricted=frozenset(restricted))
    log = io.StringIO()
    clock = Clock()
    return RiskManager(cfg, log, clock), acc, log, clock


def _new(risk, acc, qty=100, price=1_000_000, side="B", symbol="AAPL", token="T", ref=1_000_000):
    return risk.check_new(acc, token, symbol, side, qty, price, ref, ts=5)


def test_no_limits_accepts():
    risk, acc, log, _ = _risk()
    assert _new(risk, acc).ok
    entry = json.loads(log.getvalue().splitlines()[-1])
    assert entry["ok"] and entry["account"] == "alice" and entry["op"] == "new"


@pytest.mark.parametrize("limits,kwargs,reason", [
    ({"max_order_qty": 500}, {"qty": 501}, R.MAX_QTY),
    ({"max_order_notional": 10_000}, {"qty": 101}, R.MAX_NOTIONAL),          # $100 × 101
    ({"collar_pct": 5}, {"price": 1_060_000}, R.COLLAR),
    ({"collar_pct": 5}, {"price": 940_000}, R.COLLAR),
    ({"credit_limit": 5_000}, {"qty": 51}, R.CREDIT),
    ({"max_position": 100}, {"qty": 101}, R.POSITION),
    ({"max_position": 100}, {"qty": 101, "side": "S"}, R.POSITION),
    ({"restricted": ("AAPL",)}, {}, R.RESTRICTED),
])
@pytest.mark.parametrize("level", ["account", "firm"])
def test_each_limit(limits, kwargs, reason, level):
    risk, acc, log, _ = _risk(**{f"{level}_limits": limits})
    decision = _new(risk, acc, **kwargs)
    assert not decision.ok and decision.reason == reason and level in decision.text
    entry = json.loads(log.getvalue().splitlines()[-1])
    assert entry["reason"] == reason.name.lower() and not entry["ok"]
    assert risk.rejects[reason.name.lower()] == 1


def test_limits_at_the_edge_pass():
    risk, acc, _, _ = _risk({"max_order_qty": 500, "collar_pct": 5, "max_position": 500,
                             "credit_limit": 52_500})
    assert _new(risk, acc, qty=500, price=1_050_000).ok


def test_exchange_restricted_list():
    risk, acc, _, _ = _risk(restricted=["XYZ"])
    assert _new(risk, acc, symbol="XYZ").reason == R.RESTRICTED
    assert _new(risk, acc, symbol="AAPL").ok


def test_market_order_uses_reference_and_collar_skipped():
    risk, acc, _, _ = _risk({"max_order_notional": 10_000, "collar_pct": 1})
    assert _new(risk, acc, qty=100, price=None).ok
    assert _new(risk, acc, qty=101, price=None).reason == R.MAX_NOTIONAL


def _report(kind, token, **kw):
    return Report(kind, "F01", token, 0, symbol="AAPL", **kw)


def test_exposure_open_orders_fills_and_credit():
    risk, acc, _, _ = _risk({"credit_limit": 30_000, "max_position": 300})
    risk.on_report("alice", _report("accepted", "A", side="B", qty=200, price=1_000_000))
    assert risk.exposure("alice") == {"open": 20_000 * 10_000, "executed": 0, "positions": {}}
    # open $20,000 + new $10,000 = limit; one more share is over
    assert _new(risk, acc, qty=100).ok
    assert _new(risk, acc, qty=101).reason == R.CREDIT
    risk.on_report("alice", _report("executed", "A", side="B", qty=150, price=990_000))
    assert risk.position("alice", "AAPL") == 150
    assert risk.last["AAPL"] == 990_000
    exp = risk.exposure("alice")
    assert exp["open"] == 5_000 * 10_000 and exp["executed"] == 14_850 * 10_000
    # worst case buy position: 150 + 50 open + 101 > 300
    assert _new(risk, acc, qty=101, price=990_000).reason == R.POSITION
    risk.on_report("alice", _report("canceled", "A", qty=50))
    assert risk.exposure("alice")["open"] == 0 and not risk.orders
    # firm exposure tracked too
    assert risk.firms["F01"].positions["AAPL"] == 150


def test_replace_counts_the_old_order_out():
    risk, acc, _, _ = _risk({"credit_limit": 20_000})
    risk.on_report("alice", _report("accepted", "A", side="B", qty=200, price=1_000_000))
    assert risk.check_new(acc, "B", "AAPL", "B", 200, 1_000_000, 1_000_000, op="replace",
                          replacing=("F01", "A")).ok
    risk.on_report("alice", Report("replaced", "F01", "B", 0, symbol="AAPL", qty=150,
                                   price=1_000_000, previous_token="A"))
    assert ("F01", "A") not in risk.orders and risk.orders["F01", "B"][3] == 150
    assert risk.exposure("alice")["open"] == 15_000 * 10_000


def test_credit_is_exact_in_cents():
    """Open orders at $0.10 and $0.20 and a new one at $0.30 reach a $0.60 limit exactly (the
    float notionals of before added up to 0.6000000000000001 and refused it)."""
    risk, acc, _, _ = _risk({"credit_limit": 0.6})
    risk.on_report("alice", _report("accepted", "A", side="B", qty=1, price=1_000))
    risk.on_report("alice", _report("accepted", "B", side="B", qty=1, price=2_000))
    assert _new(risk, acc, qty=1, price=3_000, ref=3_000).ok
    assert _new(risk, acc, qty=1, price=3_100, ref=3_000).reason == R.CREDIT


def test_limits_are_parsed_exactly_or_refused():
    limits = Limits.from_dict({"credit_limit": 1e6, "max_order_notional": "12.3456",
                               "collar_pct": 2.5})
    assert (limits.credit_limit, limits.max_order_notional, limits.collar_bp) == (
        10_000_000_000, 123_456, 250)
    for bad in ({"credit_limit": 0.00001}, {"collar_pct": 2.555}, {"credit_limit": "lots"},
                {"max_order_notional": True}):
        with pytest.raises(ValueError):
            Limits.from_dict(bad)


def test_kill_switch_account_and_firm():
    risk, acc, log, _ = _risk()
    risk.set_kill("account", "alice")
    assert _new(risk, acc).reason == R.KILL_SWITCH
    risk.set_kill("account", "alice", on=False)
    assert _new(risk, acc).ok
    risk.set_kill("firm", "F01")
    assert _new(risk, acc).reason == R.KILL_SWITCH
    assert any(json.loads(line).get("op") == "kill" for line in log.getvalue().splitlines())
    with pytest.raises(ValueError):
        risk.set_kill("desk", "x")


def test_throttle_token_bucket():
    risk, acc, _, clock = _risk({"max_orders_per_sec": 10, "burst": 3})
    assert [_new(risk, acc).ok for _ in range(4)] == [True, True, True, False]
    assert _new(risk, acc).reason == R.THROTTLE
    clock.t += 0.1                       # one token back
    assert _new(risk, acc).ok and not _new(risk, acc).ok
    clock.t += 10
    assert sum(_new(risk, acc).ok for _ in range(5)) == 3


def test_decision_log_file_is_appended(tmp_path):
    acc = Account("alice", "F01", "x", Limits(max_order_qty=10))
    cfg = Config(accounts={"alice": acc})
    path = str(tmp_path / "d.jsonl")
    for _ in range(2):
        risk = RiskManager(cfg, path)
        risk.check_new(acc, "T", "AAPL", "B", 11, 100, 100)
        risk.close()
    lines = [json.loads(x) for x in open(path)]
    assert len(lines) == 2 and all(x["reason"] == "max_qty" for x in lines)


def test_passwords_and_config(tmp_path):
    stored = hash_password("secret", n=2**10)
    assert stored.startswith("scrypt$1024$") and "secret" not in stored
    assert verify_password("secret", stored) and not verify_password("Secret", stored)
    assert not verify_password("secret", "md5$nope")
    assert hash_password("a", n=2**10) != hash_password("a", n=2**10)        # salted
    data = make_config({"alice": {"firm": "F01", "password": "pw", "max_order_qty": 5}},
                       symbols={"AAPL": 150.25}, firms={"F01": {"credit_limit": 1e6}},
                       restricted=["XYZ"], n=2**10)
    write_config(str(tmp_path / "c.json"), data)
    cfg = load_config(str(tmp_path / "c.json"))
    assert cfg.symbols == {"AAPL": 1_502_500} and cfg.restricted == {"XYZ"}
    assert cfg.accounts["alice"].limits.max_order_qty == 5
    assert cfg.firms["F01"].credit_limit == 1_000_000 * 10_000
    assert verify_password("pw", cfg.accounts["alice"].password)
    toml = tmp_path / "c.toml"
    toml.write_text('[accounts.bob]\nfirm = "F02"\npassword = "%s"\nstp = "both"\n' % stored)
    assert load_config(str(toml)).accounts["bob"].firm == "F02"
    for bad in ({"accounts": {"toolongname": {"firm": "F", "password": stored}}},
                {"accounts": {"a": {"firm": "FIRMX", "password": stored}}},
                {"accounts": {"a": {"firm": "F", "password": "plain"}}},
                {"accounts": {"a": {"firm": "F", "password": stored, "stp": "x"}}},
                {"symbols": {"AAPL": 150.00001}}, {"trade_date": "2026-13-01"}):
        with pytest.raises(ValueError):
            parse_config(bad)


def test_decision_log_lines_are_json_objects_in_utf8(tmp_path):
    """Each decision and each kill switch change is one JSON object a line, UTF-8."""
    acc = Account("zoë", "F01", "x", Limits(max_order_qty=10))
    path = tmp_path / "d.jsonl"
    risk = RiskManager(Config(accounts={"zoë": acc}), str(path))
    risk.check_new(acc, "T1", "AAPL", "B", 5, 100, 100, ts=7)
    risk.set_kill("account", "zoë", True, ts=8)
    risk.close()
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"time": lines[0]["time"], "ts": 7, "account": "zoë", "firm": "F01",
                        "op": "new", "token": "T1", "symbol": "AAPL", "side": "B", "qty": 5,
                        "price": 100, "ok": True}
    assert {k: lines[1][k] for k in ("ts", "op", "account", "on")} == \
        {"ts": 8, "op": "kill", "account": "zoë", "on": True}
