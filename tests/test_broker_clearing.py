"""The broker's positions against clearing's, through the product commands: customers trade
on a local market, its day closes, ``tickwire clear`` and ``tickwire settle`` run on each
venue, and ``tickwire broker positions`` reconciles the blotter with what clearing captured
and then settled on T+1 (and says so when they disagree)."""

import asyncio
import json
import os

from broker_util import login, market_session, settled
from tickwire.cli.main import main as tickwire

ORDERS = {
    "alice": [{"symbol": "AAPL", "qty": 100, "side": "buy", "type": "market"}],
    "bob": [{"symbol": "MSFT", "qty": 700, "side": "buy", "type": "market"},
            {"symbol": "MSFT", "qty": 200, "side": "sell", "type": "market"}],
}


def trade(tmp_path):
    """Play the orders; return the market directory and the API's positions per user."""
    async def main():
        async with market_session(tmp_path) as (market, c):
            shown = {}
            for user, orders in ORDERS.items():
                h = await login(c, user)
                for body in orders:
                    r = await c.post("/v2/orders", headers=h, json=body)
                    assert (await settled(c, h, r.json()["id"]))["status"] == "filled"
                shown[user] = {p["symbol"]: int(p["qty"]) for p in
                               (await c.get("/v2/positions", headers=h)).json()}
            return str(tmp_path / "market"), market.names, shown
    return asyncio.run(main())


def run_json(capsys, *argv):
    capsys.readouterr()
    code = tickwire(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_positions_reconcile_with_clearing_and_settle_on_t_plus_1(tmp_path, capsys):
    market_dir, venues, shown = trade(tmp_path)
    assert shown == {"alice": {"AAPL": 100}, "bob": {"MSFT": 500}}
    code, before = run_json(capsys, "broker", "positions", market_dir, "--json")
    assert code == 0 and not any(v["cleared"] for v in before["venues"].values())
    assert before["users"]["alice"]["positions"]["AAPL"] == {
        "qty": 100, "settled_qty": 0, "unsettled_qty": 100}
    settles = set()
    for venue in venues:
        d = os.path.join(market_dir, venue)
        code, summary = run_json(capsys, "clear", os.path.join(d, "session.wal"), "--config",
                                 os.path.join(d, "venue.json"), "--out",
                                 os.path.join(d, "clearing"))
        assert code == 0
        settles.add(summary["settlement_date"])
    code, cleared = run_json(capsys, "broker", "positions", market_dir, "--json")
    assert code == 0 and cleared["reconciled"]
    traded = [v for v in cleared["venues"].values() if v["broker_shares"]]
    assert traded and all(v["cleared"] and not v["settled"] for v in traded)
    assert all(v["captured_shares"] == v["broker_shares"] for v in traded), \
        "clearing captured exactly the blotter's trades"
    (date,) = settles
    for venue in venues:
        assert tickwire(["--quiet", "settle", os.path.join(market_dir, venue, "clearing"),
                         "--date", date]) == 0
    code, after = run_json(capsys, "broker", "positions", market_dir, "--json")
    assert code == 0 and after["reconciled"], after
    for user, held in shown.items():
        for symbol, qty in held.items():
            assert after["users"][user]["positions"][symbol] == {
                "qty": qty, "settled_qty": qty, "unsettled_qty": 0}
        assert after["users"][user]["settled_cash"] == after["users"][user]["cash_moved"] < 0
    for name, v in after["venues"].items():
        if not v["broker_shares"]:
            continue
        assert v["settled"] and v["unsettled"] == [] and v["problems"] == []
        assert v["settled_shares"] == v["broker_shares"]
        assert v["settled_cash"] == v["broker_cash"]
        # clearing's own read model of the venue says the same of the broker's firm
        code, model = run_json(capsys, "positions", os.path.join(market_dir, name), "--json")
        with open(os.path.join(market_dir, name, "venue.json")) as f:
            opening = json.load(f)["members"]
        for symbol, qty in v["broker_shares"].items():
            assert model["BRK"]["settled_shares"][symbol] - \
                opening["BRK"]["shares"][symbol] == qty


def test_a_blotter_that_disagrees_with_clearing_is_reported(tmp_path, capsys):
    market_dir, venues, _ = trade(tmp_path)
    for venue in venues:
        d = os.path.join(market_dir, venue)
        assert tickwire(["--quiet", "clear", os.path.join(d, "session.wal"), "--config",
                         os.path.join(d, "venue.json"), "--out",
                         os.path.join(d, "clearing")]) == 0
    path = os.path.join(market_dir, "blotter.jsonl")
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(lines[1:]) + "\n")
    capsys.readouterr()
    assert tickwire(["--quiet", "broker", "positions", market_dir]) == 1
    out = capsys.readouterr().out
    assert "trades in clearing are not in the blotter" in out
    with open(path, "a") as f:
        f.write("{not json\n")
    assert tickwire(["--quiet", "broker", "positions", market_dir]) == 2
    assert "not a blotter line" in capsys.readouterr().out
    assert tickwire(["--quiet", "broker", "positions", str(tmp_path / "nowhere")]) == 2


def test_broker_settle_clears_settles_and_reconciles_every_venue(tmp_path, capsys):
    market_dir, venues, _ = trade(tmp_path)
    capsys.readouterr()
    assert tickwire(["--quiet", "broker", "settle", market_dir]) == 0
    out = capsys.readouterr().out
    assert all(f"venue {v}:" in out for v in venues)
    assert "the broker's positions reconcile with clearing's" in out
    assert "verified" in out and "settlement appended: " in out
    with open(os.path.join(market_dir, "audit", "trail.jsonl")) as f:
        kinds = [json.loads(line).get("event_type") for line in f]
    assert kinds.count("ORDER_SETTLED") + kinds.count("SETTLEMENT_FAILED") == \
        kinds.count("ORDER_EXECUTED") > 0
    code, after = run_json(capsys, "broker", "positions", market_dir, "--json")
    assert code == 0 and after["users"]["bob"]["positions"]["MSFT"]["settled_qty"] == 500
    assert tickwire(["--quiet", "broker", "settle", market_dir]) == 2, "settled already"
    assert "tickwire broker settle:" in capsys.readouterr().out
    assert tickwire(["--quiet", "broker", "settle", str(tmp_path)]) == 2
    assert "no venue directories" in capsys.readouterr().out
