"""Shared helpers of the broker tests: a local market in process and an API client."""

import asyncio
import contextlib

import httpx
from tickwire.ops.market import Market

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


@contextlib.asynccontextmanager
async def market_session(tmp_path, users=PASSWORDS, **kw):
    """A started :class:`Market` (plain HTTP unless told) and an httpx client on its app."""
    kw.setdefault("plain_http", True)
    market = Market(users=users, out_dir=str(tmp_path / "market"), hash_cost=2**10, **kw)
    await market.start()
    try:
        transport = httpx.ASGITransport(app=market.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://broker") as client:
            yield market, client
    finally:
        await market.stop()


async def login(client, user, password=None):
    """Log in; the headers with the bearer token."""
    r = await client.post("/v2/auth/login",
                          json={"username": user, "password": password or PASSWORDS[user]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def settled(client, headers, order_id, timeout=5.0):
    """Poll the order until it is no longer open; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        order = (await client.get(f"/v2/orders/{order_id}", headers=headers)).json()
        if order["status"] not in ("new", "partially_filled", "pending_new") or \
                loop.time() > deadline:
            return order
        await asyncio.sleep(0.02)
