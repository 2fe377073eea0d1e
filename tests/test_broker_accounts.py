"""Blocked accounts and restricted symbols set with ``tickwire broker account`` while the
market runs: the next request sees them (403 with the error body), and a restarted market
keeps them; bad commands change nothing."""

import asyncio
import json

from broker_util import login, market_session
from tickwire.cli.main import main as tickwire

AAPL = {"symbol": "AAPL", "qty": 10, "side": "buy", "type": "market"}
MSFT = dict(AAPL, symbol="MSFT")


def account(market_dir, *argv):
    return tickwire(["--quiet", "broker", "account", *argv, "--dir", market_dir])


def test_block_and_restrict_hold_at_once_and_across_a_restart(tmp_path, capsys):
    market_dir = str(tmp_path / "market")

    async def first():
        async with market_session(tmp_path) as (_, c):
            h = await login(c, "alice")
            assert (await c.post("/v2/orders", headers=h, json=AAPL)).status_code == 200
            number = (await c.get("/v2/account", headers=h)).json()["account_number"]
            assert account(market_dir, "block", number) == 0, "by account number"
            r = await c.post("/v2/orders", headers=h, json=AAPL)
            assert r.status_code == 403
            assert r.json() == {"code": 40310000, "reason": "account_blocked",
                                "message": f"account {number} is blocked"}
            shown = (await c.get("/v2/account", headers=h)).json()
            assert (shown["status"], shown["trading_blocked"]) == ("ACCOUNT_BLOCKED", True)
            bob = await login(c, "bob")
            assert (await c.post("/v2/orders", headers=bob, json=AAPL)).status_code == 200, \
                "only alice is blocked"
            assert account(market_dir, "unblock", "alice") == 0
            assert (await c.post("/v2/orders", headers=h, json=AAPL)).status_code == 200
            assert account(market_dir, "restrict", "alice", "aapl", "TSLA") == 0
            r = await c.post("/v2/orders", headers=h, json=AAPL)
            assert (r.status_code, r.json()["reason"]) == (403, "restricted")
            assert (await c.post("/v2/orders", headers=h, json=MSFT)).status_code == 200
            shown = (await c.get("/v2/account", headers=h)).json()
            assert shown["restricted_symbols"] == ["AAPL", "TSLA"]
    asyncio.run(first())

    async def second():
        async with market_session(tmp_path) as (_, c):
            h = await login(c, "alice")
            r = await c.post("/v2/orders", headers=h, json=AAPL)
            assert (r.status_code, r.json()["reason"]) == (403, "restricted"), \
                "the restriction is kept across a restart"
            assert account(market_dir, "unrestrict", "alice", "AAPL") == 0
            assert (await c.post("/v2/orders", headers=h, json=AAPL)).status_code == 200
            capsys.readouterr()
            assert account(market_dir, "show", "alice") == 0
            assert "restricted symbols: TSLA" in capsys.readouterr().out
    asyncio.run(second())


def test_bad_account_commands_change_nothing(tmp_path, capsys):
    market_dir = str(tmp_path / "market")

    async def main():
        async with market_session(tmp_path):
            pass
    asyncio.run(main())
    path = tmp_path / "market" / "accounts.json"
    before = path.read_text()
    for argv, message in [
            (("block", "mallory"), "no user or account 'mallory'"),
            (("restrict", "alice", "NOPE"), "unknown symbol(s) NOPE"),
            (("restrict", "alice"), "restrict needs one or more symbols"),
            (("block", "alice", "AAPL"), "block takes no symbols")]:
        capsys.readouterr()
        assert account(market_dir, *argv) == 2, argv
        assert message in capsys.readouterr().out
    assert path.read_text() == before
    assert account(str(tmp_path / "elsewhere"), "block", "alice") == 2
    assert "no such file" in capsys.readouterr().out
    path.write_text("{not json")
    assert account(market_dir, "block", "alice") == 2
    assert "not an accounts file" in capsys.readouterr().out
    assert json.loads(before)["users"]["alice"]["blocked"] is False
