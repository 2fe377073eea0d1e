"""Replacing an order (``PATCH /v2/orders/{id}``) on a local market, through the real server:
an OUCH Replace at the venue holding the order, a marketable replace re-routed, refused
replaces that change nothing, and replaces racing a fill at the venue (the broker's session
is paused, as a slow line would, so the venue fills first)."""

import asyncio
import contextlib
import json
from decimal import Decimal

import httpx
from broker_util import PASSWORDS, market_session
from websockets.asyncio.client import connect

CENT = 100


def run(coro):
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def api(tmp_path):
    """The market, an HTTP client on its server and alice's headers."""
    async with market_session(tmp_path) as (market, _):
        async with httpx.AsyncClient(base_url=market.url) as c:
            r = await c.post("/v2/auth/login", json={"username": "alice",
                                                     "password": PASSWORDS["alice"]})
            yield market, c, {"Authorization": f"Bearer {r.json()['token']}"}


async def events(market, headers, n):
    """The user's first ``n`` stream events (a replay from seq 1), as (event, order id)."""
    url = market.url.replace("http", "ws") + "/v2/stream?from_seq=1"
    async with connect(url, additional_headers=headers) as ws:
        out = [json.loads(await asyncio.wait_for(ws.recv(), 5.0)) for _ in range(n)]
    return [(e["event"], e["order"]["id"]) for e in out], out


async def post_inside(market, c, h, qty=100):
    """A buy limit one cent above the best bid (inside the spread): it posts at one venue."""
    nbbo = market.book.get("AAPL")
    price = nbbo.bid.price + CENT
    assert price < nbbo.ask.price, "the test needs a spread of two cents or more"
    r = await c.post("/v2/orders", headers=h, json={
        "symbol": "AAPL", "qty": qty, "side": "buy", "type": "limit", "time_in_force": "day",
        "limit_price": f"{price / 10000:.2f}"})
    assert r.status_code == 200, r.text
    order = r.json()
    child = await posted_child(market, order["id"])
    return order, price, child


async def posted_child(market, order_id):
    order = market.broker.orders[order_id]
    for _ in range(250):
        posted = [c for c in order.children if c.leaves and c.accepted]
        if order.routed and posted:
            return posted[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"order {order_id} never posted")


async def status_of(c, h, order_id, want, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        order = (await c.get(f"/v2/orders/{order_id}", headers=h)).json()
        if order["status"] in want:
            return order
        await asyncio.sleep(0.02)
    raise AssertionError(f"order {order_id} is {order['status']}, not {want}")


async def account(c, h):
    return (await c.get("/v2/account", headers=h)).json()


@contextlib.asynccontextmanager
async def maker_at(market, venue):
    """The market maker's OUCH session at ``venue`` (the other side of a race) and the
    reports it gets."""
    client = market.makers[venue].client
    reports, theirs = [], client.on_message

    def both(number, record, raw):
        reports.append((raw[:1], record))
        theirs(number, record, raw)
    client.on_message = both
    try:
        yield client, reports
    finally:
        client.on_message = theirs


@contextlib.asynccontextmanager
async def broker_line_paused(market, venue):
    """Hold the broker's incoming OUCH messages from ``venue`` (a slow line)."""
    transport = market.broker.links[venue].client._writer.transport
    transport.pause_reading()
    try:
        yield
    finally:
        transport.resume_reading()


async def executed(reports, token, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if any(code == b"E" and rec.order_token == token for code, rec in reports):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{token} was not executed")


def test_replace_changes_the_order_at_its_venue_with_replaced_on_the_stream(tmp_path):
    async def main():
        async with api(tmp_path) as (market, c, h):
            before = await account(c, h)
            old, price, child = await post_inside(market, c, h)
            new_price = price - CENT
            body = {"qty": "150", "limit_price": f"{new_price / 10000:.2f}"}
            r = await c.patch(f"/v2/orders/{old['id']}", headers=h, json=body)
            assert r.status_code == 200, r.text
            new = r.json()
            assert new["id"] != old["id"] and new["replaces"] == old["id"]
            assert (new["qty"], new["limit_price"]) == ("150", body["limit_price"])
            assert new["status"] == "pending_new" and new["updated_at"] == new["created_at"]
            assert (new["symbol"], new["side"], new["type"]) == ("AAPL", "buy", "limit")
            again = await c.patch(f"/v2/orders/{old['id']}", headers=h, json=body)
            assert again.status_code == 200 and again.json()["id"] == new["id"], \
                "a retried replace returns the same replacing order"
            new = await status_of(c, h, new["id"], ("new",))
            old = (await c.get(f"/v2/orders/{old['id']}", headers=h)).json()
            assert old["status"] == "replaced" and old["replaced_by"] == new["id"]
            assert old["replaced_at"] is not None
            kinds, _ = await events(market, h, 4)
            assert kinds == [("new", old["id"]), ("pending_replace", old["id"]),
                             ("replaced", old["id"]), ("new", new["id"])]
            # the venue holds the replacement in the old order's place (an OUCH Replace)
            link = market.broker.links[child.venue]
            (replacement,) = market.broker.orders[new["id"]].children
            assert replacement.venue == child.venue and replacement.token in link.children
            assert child.token not in link.children and link.stats["replaces"] == 1
            assert (replacement.qty, replacement.price) == (150, new_price)
            after = await account(c, h)
            reserved = 150 * new_price
            assert Decimal(before["buying_power"]) - Decimal(after["buying_power"]) == \
                Decimal(reserved) / 10000
            r = await c.patch(f"/v2/orders/{old['id']}", headers=h, json={"qty": 10})
            assert r.status_code == 422 and r.json()["reason"] == "not_replaceable"
            audit = (await c.get(f"/v2/orders/{old['id']}/audit", headers=h)).json()
            assert {"ORDER_REPLACE_REQUESTED", "ORDER_REPLACED"} <= {a["event_type"] for a in audit}
            assert (await c.delete(f"/v2/orders/{new['id']}", headers=h)).status_code == 204
            await status_of(c, h, new["id"], ("canceled",))
            assert (await account(c, h))["buying_power"] == before["buying_power"]
    run(main())


def test_a_marketable_replace_is_routed_to_the_best_ask(tmp_path):
    async def main():
        async with api(tmp_path) as (market, c, h):
            old, _, child = await post_inside(market, c, h)
            nbbo = market.book.get("AAPL")
            best_ask, best_venue = nbbo.ask.price, nbbo.ask.venue
            r = await c.patch(f"/v2/orders/{old['id']}", headers=h,
                              json={"limit_price": f"{(best_ask + 5 * CENT) / 10000:.2f}"})
            assert r.status_code == 200, r.text
            new = await status_of(c, h, r.json()["id"], ("filled",))
            assert new["filled_avg_price"] == f"{best_ask / 10000:.2f}"
            assert new["qty"] == "100", "qty defaults to what is left of the old order"
            fills = market.broker.orders[new["id"]].children
            assert {f.venue for f in fills if f.filled} == {best_venue}
            assert market.broker.links[child.venue].stats["replaces"] == 0, \
                "re-routed (cancel, then the router), not replaced in place"
            old = (await c.get(f"/v2/orders/{old['id']}", headers=h)).json()
            assert old["status"] == "replaced" and old["replaced_by"] == new["id"]
            positions = (await c.get("/v2/positions", headers=h)).json()
            assert [(p["symbol"], p["qty"]) for p in positions] == [("AAPL", "100")]
            assert market.routing_log.quality()["trade_throughs"] == 0
    run(main())


def test_refused_replaces_change_nothing(tmp_path):
    async def main():
        async with api(tmp_path) as (market, c, h):
            old, _, _ = await post_inside(market, c, h)
            before = await account(c, h)
            url = f"/v2/orders/{old['id']}"
            cases = [
                ({"qty": 900_000}, 403, "insufficient_buying_power"),
                ({"limit_price": "182.505"}, 422, "invalid_request"),
                ({}, 422, "invalid_request"),
                ({"stop_price": "180.00"}, 422, "invalid_request"),
                ({"time_in_force": "ioc"}, 422, "invalid_request"),
                ({"qty": 0}, 422, "invalid_request"),
                ({"qty": 10, "side": "sell"}, 422, "invalid_request"),
            ]
            for body, status, reason in cases:
                r = await c.patch(url, headers=h, json=body)
                assert (r.status_code, r.json()["reason"]) == (status, reason), (body, r.text)
            r = await c.patch(url, headers=h | {"Content-Type": "application/json"},
                              content=b"{not json")
            assert r.status_code == 400
            r = await c.patch("/v2/orders/nope", headers=h, json={"qty": 5})
            assert r.status_code == 404
            assert await account(c, h) == before
            order = (await c.get(url, headers=h)).json()
            assert order["status"] == "new" and order["replaced_by"] is None
            taken = await c.post("/v2/orders", headers=h, json={
                "symbol": "AAPL", "qty": 1, "side": "buy", "type": "market",
                "client_order_id": "taken"})
            r = await c.patch(url, headers=h, json={"qty": 50, "client_order_id": "taken"})
            assert r.status_code == 409, "a client_order_id already used by another order"
            await status_of(c, h, taken.json()["id"], ("filled",))
            filled = (await c.get(f"/v2/orders/{taken.json()['id']}", headers=h)).json()
            r = await c.patch(f"/v2/orders/{filled['id']}", headers=h, json={"qty": 5})
            assert r.status_code == 422 and "filled" in r.json()["message"]
            kinds, _ = await events(market, h, 3)
            assert "pending_replace" not in [k for k, _ in kinds]
    run(main())


def test_a_replace_that_loses_the_race_with_a_fill_is_rejected(tmp_path):
    async def main():
        async with api(tmp_path) as (market, c, h):
            cash = Decimal((await account(c, h))["cash"])
            old, price, child = await post_inside(market, c, h)
            async with maker_at(market, child.venue) as (mm, reports):
                async with broker_line_paused(market, child.venue):
                    mm.enter("X1", "S", 100, "AAPL", price, tif=0)      # IOC: takes alice's bid
                    await executed(reports, "X1")
                    r = await c.patch(f"/v2/orders/{old['id']}", headers=h,
                                      json={"limit_price": f"{(price - CENT) / 10000:.2f}"})
                    assert r.status_code == 200, "the broker does not know of the fill yet"
                    new = r.json()
                new = await status_of(c, h, new["id"], ("rejected",))
            assert "too late" in new["reject_reason"]
            old = (await c.get(f"/v2/orders/{old['id']}", headers=h)).json()
            assert (old["status"], old["filled_qty"], old["replaced_by"]) == ("filled", "100",
                                                                                None)
            kinds, _ = await events(market, h, 5)
            assert kinds == [("new", old["id"]), ("pending_replace", old["id"]),
                             ("fill", old["id"]), ("order_replace_rejected", old["id"]),
                             ("rejected", new["id"])]
            after = await account(c, h)
            assert Decimal(after["cash"]) == cash - Decimal(100 * price) / 10000
            assert after["buying_power"] == after["cash"], "nothing is left reserved"
            positions = (await c.get("/v2/positions", headers=h)).json()
            assert [(p["symbol"], p["qty"]) for p in positions] == [("AAPL", "100")]
    run(main())


def test_a_replace_after_a_partial_fill_replaces_what_is_left(tmp_path):
    async def main():
        async with api(tmp_path) as (market, c, h):
            old, price, child = await post_inside(market, c, h)
            new_price = price - CENT
            async with maker_at(market, child.venue) as (mm, reports):
                async with broker_line_paused(market, child.venue):
                    mm.enter("X1", "S", 40, "AAPL", price, tif=0)
                    await executed(reports, "X1")
                    r = await c.patch(f"/v2/orders/{old['id']}", headers=h, json={
                        "qty": 60, "limit_price": f"{new_price / 10000:.2f}"})
                    assert r.status_code == 200, r.text
                new = await status_of(c, h, r.json()["id"], ("new",))
            old = (await c.get(f"/v2/orders/{old['id']}", headers=h)).json()
            assert (old["status"], old["filled_qty"]) == ("replaced", "40")
            kinds, _ = await events(market, h, 5)
            assert kinds == [("new", old["id"]), ("pending_replace", old["id"]),
                             ("partial_fill", old["id"]), ("replaced", old["id"]),
                             ("new", new["id"])]
            after = await account(c, h)
            assert (Decimal(after["cash"]) - Decimal(after["buying_power"])) * 10000 == \
                60 * new_price, "the account holds what the replacing order needs"
    run(main())
