"""The retail API on a local market (three venues in process), through an ASGI client:
auth, orders, idempotency, rate limits, accounts and buying power, and bad input."""

import asyncio
import json

import jwt
import pytest
from broker_util import PASSWORDS, login, market_session, settled
from tickwire.core.requests import Halt
from tickwire.ops.market import DEFAULT_CASH


def run(coro):
    return asyncio.run(coro)


BUY_100 = {"symbol": "AAPL", "qty": 100, "side": "buy", "type": "market",
           "time_in_force": "day"}


def test_login_tokens_and_401s(tmp_path):
    async def main():
        async with market_session(tmp_path, token_ttl=60) as (market, c):
            r = await c.post("/v2/auth/login", json={"username": "alice", "password": "nope"})
            assert r.status_code == 401 and r.json()["reason"] == "unauthorized"
            r = await c.post("/v2/auth/login", json={"username": "alice",
                                                     "password": PASSWORDS["alice"]})
            assert r.status_code == 200 and set(r.json()) == {"token", "expires_at"}
            token = r.json()["token"]
            claims = jwt.decode(token, options={"verify_signature": False})
            assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 60
            assert (await c.get("/v2/account")).status_code == 401
            ok = await c.get("/v2/account", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.headers["X-RateLimit-Limit"] == "200"
            forged = jwt.encode(dict(claims, sub="bob"), "not-the-key" * 4, algorithm="HS256")
            tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
            expired = jwt.encode(dict(claims, exp=claims["iat"] - 1), market.issuer.secret,
                                 algorithm="HS256")
            for bad in (forged, tampered, expired, "garbage"):
                r = await c.get("/v2/account", headers={"Authorization": f"Bearer {bad}"})
                assert r.status_code == 401, bad
            r = await c.get("/v2/account", headers={"Authorization": f"Bearer {expired}"})
            assert "expired" in r.json()["message"]
    run(main())


def test_market_buy_fills_at_the_best_ask_and_moves_cash_and_position(tmp_path):
    async def main():
        async with market_session(tmp_path) as (market, c):
            h = await login(c, "alice")
            nbbo = (await c.get("/v2/nbbo/AAPL", headers=h)).json()
            assert set(nbbo) == {"symbol", "bid", "ask", "timestamp"}
            assert set(nbbo["ask"]) == {"price", "size", "venue"} and nbbo["ask"]["size"] >= 500
            quotes = market.book.venue_quotes("AAPL")
            assert nbbo["ask"]["price"] == "%.2f" % (min(q.ask.price for q in quotes.values())
                                                      / 10000)
            r = await c.post("/v2/orders", headers=h, json=dict(BUY_100, qty="100"))
            assert r.status_code == 200, r.text
            order = await settled(c, h, r.json()["id"])
            assert order["status"] == "filled" and order["filled_qty"] == "100"
            assert order["filled_avg_price"] == nbbo["ask"]["price"]
            positions = (await c.get("/v2/positions", headers=h)).json()
            assert [(p["symbol"], p["qty"]) for p in positions] == [("AAPL", "100")]
            account = (await c.get("/v2/account", headers=h)).json()
            cost = 100 * float(nbbo["ask"]["price"])
            assert float(account["cash"]) == pytest.approx(DEFAULT_CASH / 10000 - cost)
            assert account["buying_power"] == account["cash"], "nothing reserved any more"
            sell = await c.post("/v2/orders", headers=h, json=dict(BUY_100, side="sell"))
            assert (await settled(c, h, sell.json()["id"]))["status"] == "filled"
            assert (await c.get("/v2/positions", headers=h)).json() == []
    run(main())


def test_client_order_id_is_idempotent_and_conflicts_get_409(tmp_path):
    async def main():
        async with market_session(tmp_path) as (market, c):
            h = await login(c, "alice")
            body = dict(BUY_100, client_order_id="my-1")
            first = await c.post("/v2/orders", headers=h, json=body)
            again = await c.post("/v2/orders", headers=h, json=dict(body, qty="100"))
            assert first.status_code == again.status_code == 200
            assert first.json()["id"] == again.json()["id"]
            assert len(market.broker.orders) == 1
            r = await c.post("/v2/orders", headers=h, json=dict(body, qty=200))
            assert r.status_code == 409 and r.json()["reason"] == "client_order_id_conflict"
            assert len(market.broker.orders) == 1
            by = await c.get("/v2/orders:by_client_order_id", headers=h,
                             params={"client_order_id": "my-1"})
            assert by.json()["id"] == first.json()["id"]
            hb = await login(c, "bob")
            r = await c.post("/v2/orders", headers=hb, json=body)
            assert r.status_code == 200 and r.json()["id"] != first.json()["id"], \
                "client order ids are per user"
            r = await c.get(f"/v2/orders/{first.json()['id']}", headers=hb)
            assert r.status_code == 404, "one user cannot see another's order"
    run(main())


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    async def main():
        async with market_session(tmp_path, rate_limit=5) as (market, c):
            h = await login(c, "alice")
            codes = [(await c.get("/v2/account", headers=h)).status_code for _ in range(5)]
            assert codes == [200] * 5
            r = await c.get("/v2/account", headers=h)
            assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
            hb = await login(c, "bob")
            assert (await c.get("/v2/account", headers=hb)).status_code == 200, "per user"
    run(main())


def test_buying_power_reserves_and_refuses(tmp_path):
    async def main():
        async with market_session(tmp_path, cash=50_000 * 10000) as (market, c):
            h = await login(c, "alice")
            # a resting limit buy well below the market reserves qty × limit
            r = await c.post("/v2/orders", headers=h, json={
                "symbol": "AAPL", "qty": 100, "side": "buy", "type": "limit",
                "limit_price": "180.00", "time_in_force": "day"})
            assert r.status_code == 200, r.text
            await asyncio.sleep(0.1)
            account = (await c.get("/v2/account", headers=h)).json()
            assert account["cash"] == "50000.00" and account["buying_power"] == "32000.00"
            r = await c.post("/v2/orders", headers=h, json=dict(BUY_100, qty=200))
            assert r.status_code == 403 and r.json()["reason"] == "insufficient_buying_power"
            assert len(market.broker.orders) == 1, "nothing half-applied"
            assert (await c.delete(f"/v2/orders/{r.json().get('id', 'x')}",
                                   headers=h)).status_code == 404
            resting = (await c.get("/v2/orders", headers=h)).json()
            assert [o["status"] for o in resting] == ["new"]
            assert (await c.delete(f"/v2/orders/{resting[0]['id']}", headers=h)).status_code \
                == 204
            order = await settled(c, h, resting[0]["id"])
            assert order["status"] == "canceled"
            account = (await c.get("/v2/account", headers=h)).json()
            assert account["buying_power"] == "50000.00"
            r = await c.delete(f"/v2/orders/{resting[0]['id']}", headers=h)
            assert r.status_code == 422 and r.json()["reason"] == "not_cancelable"
            r = await c.post("/v2/orders", headers=h, json=dict(BUY_100, side="sell"))
            assert r.status_code == 403 and r.json()["reason"] == "insufficient_qty"
    run(main())


def test_restricted_blocked_halted_closed(tmp_path):
    async def main():
        async with market_session(tmp_path) as (market, c):
            market.accounts.get("alice").restricted = frozenset({"TSLA"})
            market.accounts.get("bob").blocked = True
            h, hb = await login(c, "alice"), await login(c, "bob")
            r = await c.post("/v2/orders", headers=h, json=dict(BUY_100, symbol="TSLA"))
            assert r.status_code == 403 and r.json()["reason"] == "restricted"
            r = await c.post("/v2/orders", headers=hb, json=BUY_100)
            assert r.status_code == 403 and r.json()["reason"] == "account_blocked"
            assert (await c.get("/v2/account", headers=hb)).json()["status"] == \
                "ACCOUNT_BLOCKED"
            for venue in market.venues.values():
                venue.sequencer.submit_nowait(Halt(ts=venue.sequencer.now(), symbol="MSFT"))
            await asyncio.sleep(0.05)
            r = await c.post("/v2/orders", headers=h, json=dict(BUY_100, symbol="MSFT"))
            assert r.status_code == 403 and r.json()["reason"] == "halted"
            for venue in market.venues.values():
                await venue.close_day()
            r = await c.post("/v2/orders", headers=h, json=BUY_100)
            assert r.status_code == 403 and r.json()["reason"] == "market_closed"
            assert market.broker.orders == {}
    run(main())


BAD_BODIES = [
    (b'{"symbol": "AAPL", "qty": 10', 400, "malformed_json"),
    (json.dumps(dict(BUY_100, colour="red")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, symbol="NOPE")), 422, "unknown_symbol"),
    (json.dumps(dict(BUY_100, qty=0)), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, qty=-5)), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, qty="1.5")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, qty=10**9)), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, qty=200_000)), 403, "risk_limit"),
    (json.dumps(dict(BUY_100, qty="ten")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, side="short")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, type="limit")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, limit_price="182.50")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, type="limit", limit_price="182.505")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, type="limit", limit_price="182.50001")), 422, "invalid_request"),
    (json.dumps(dict(BUY_100, type="limit", limit_price="250.00")), 403, "risk_limit"),
    (json.dumps([1, 2]), 422, "invalid_request"),
]


def test_bad_orders_are_refused_with_nothing_applied(tmp_path):
    async def main():
        async with market_session(tmp_path, users={"alice": PASSWORDS["alice"]},
                                  cash=10**9 * 10000) as (market, c):
            h = await login(c, "alice")
            h["Content-Type"] = "application/json"
            before = (await c.get("/v2/account", headers=h)).json()
            for body, status, reason in BAD_BODIES:
                r = await c.post("/v2/orders", headers=h, content=body)
                assert (r.status_code, r.json()["reason"]) == (status, reason), (body, r.text)
                assert r.json()["message"] and r.json()["code"] == status * 100000 + 10000
                assert market.broker.orders == {}, body
                assert (await c.get("/v2/account", headers=h)).json() == before, body
    run(main())


def test_unknown_order_and_symbol_are_404_and_422(tmp_path):
    async def main():
        async with market_session(tmp_path) as (market, c):
            h = await login(c, "alice")
            assert (await c.get("/v2/orders/nope", headers=h)).status_code == 404
            assert (await c.get("/v2/orders:by_client_order_id", headers=h,
                                params={"client_order_id": "x"})).status_code == 404
            r = await c.get("/v2/nbbo/NOPE", headers=h)
            assert (r.status_code, r.json()["reason"]) == (404, "unknown_symbol")
            r = await c.get("/v2/orders", headers=h, params={"stauts": "all"})
            assert r.status_code == 422 and "stauts" in r.json()["message"]
            r = await c.put("/v2/orders", headers=h)
            assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
            assert (await c.get("/v2/orders", headers=h,
                                params={"status": "bogus"})).status_code == 422
            doc = (await c.get("/openapi.json")).json()
            assert {"/v2/auth/login", "/v2/orders", "/v2/orders/{order_id}",
                    "/v2/orders:by_client_order_id", "/v2/positions", "/v2/account",
                    "/v2/nbbo/{symbol}"} <= set(doc["paths"])
    run(main())


def test_a_caller_without_a_valid_token_is_refused_before_its_input_is_checked(tmp_path):
    """FastAPI reads the body before the dependencies: without this, a bad body or an unknown
    query parameter told an unauthenticated caller 400/422 (and what was wrong) instead of 401."""
    async def main():
        async with market_session(tmp_path) as (market, c):
            h = await login(c, "alice")
            requests = [("post", "/v2/orders", {"content": b"{not json"}),
                        ("post", "/v2/orders", {"json": {"symbol": "AAPL", "qty": "x"}}),
                        ("patch", "/v2/orders/nope", {"json": {"qty": -1}}),
                        ("get", "/v2/orders", {"params": {"stauts": "all"}}),
                        ("get", "/v2/orders", {"params": {"limit": 0}})]
            for method, path, kwargs in requests:
                for auth in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic x"}):
                    r = await c.request(method, path, headers=auth, **kwargs)
                    assert (r.status_code, r.json()["reason"]) == (401, "unauthorized"), (
                        method, path, kwargs, auth, r.text)
                r = await c.request(method, path, headers=h, **kwargs)
                assert r.status_code in (400, 422), (method, path, kwargs, r.text)
            r = await c.post("/v2/auth/login", content=b"{not json",
                             headers={"Content-Type": "application/json"})
            assert (r.status_code, r.json()["reason"]) == (400, "malformed_json")
            assert market.broker.orders == {}
    run(main())
