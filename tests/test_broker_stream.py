"""The order stream: a WebSocket per user with sequence numbers and replay, over the real
server (uvicorn), and a client that never reads being dropped."""

import asyncio
import json

import httpx
import pytest
from broker_util import PASSWORDS, market_session
from tickwire.broker.orders import Order
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

BUY = {"symbol": "AAPL", "qty": 100, "side": "buy", "type": "market", "time_in_force": "day"}


async def _next(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def test_stream_numbers_events_per_user_and_replays_from_seq(tmp_path):
    async def main():
        async with market_session(tmp_path) as (market, _):
            ws_url = market.url.replace("http", "ws") + "/v2/stream"
            async with httpx.AsyncClient(base_url=market.url) as c:
                r = await c.post("/v2/auth/login", json={"username": "alice",
                                                         "password": PASSWORDS["alice"]})
                h = {"Authorization": f"Bearer {r.json()['token']}"}
                async with connect(ws_url, additional_headers=h) as ws:
                    order = (await c.post("/v2/orders", headers=h, json=BUY)).json()
                    first, second = await _next(ws), await _next(ws)
                assert (first["seq"], first["event"]) == (1, "new")
                assert (second["seq"], second["event"]) == (2, "fill")
                assert second["order"]["id"] == order["id"]
                assert second["order"]["filled_qty"] == "100"
                # while disconnected: a second order (events 3 and 4)
                sell = (await c.post("/v2/orders", headers=h, json=dict(BUY, side="sell"))).json()
                for _ in range(100):
                    if (await c.get(f"/v2/orders/{sell['id']}", headers=h)).json()["status"] \
                            == "filled":
                        break
                    await asyncio.sleep(0.02)
                async with connect(ws_url + "?from_seq=2", additional_headers=h) as ws:
                    replayed = [await _next(ws) for _ in range(3)]
                    assert [(e["seq"], e["event"]) for e in replayed] == [
                        (2, "fill"), (3, "new"), (4, "fill")]
                    await c.post("/v2/orders", headers=h, json=BUY)
                    live = [await _next(ws) for _ in range(2)]
                    assert [(e["seq"], e["event"]) for e in live] == [(5, "new"), (6, "fill")], \
                        "then the live events"
                async with connect(ws_url, additional_headers=h) as ws:
                    await c.post("/v2/orders", headers=h, json=dict(BUY, side="sell"))
                    live = await _next(ws)
                    assert live["seq"] == 7, "without from_seq: live events only"
                r = await c.post("/v2/auth/login", json={"username": "bob",
                                                         "password": PASSWORDS["bob"]})
                hb = {"Authorization": f"Bearer {r.json()['token']}"}
                async with connect(ws_url, additional_headers=hb) as ws:
                    await c.post("/v2/orders", headers=hb, json=BUY)
                    assert (await _next(ws))["seq"] == 1, "seq counts per user"
    asyncio.run(main())


def test_stream_refuses_a_missing_or_forged_token_with_401(tmp_path):
    async def main():
        async with market_session(tmp_path) as (market, _):
            ws_url = market.url.replace("http", "ws") + "/v2/stream"
            for headers in ({}, {"Authorization": "Bearer forged.token.here"}):
                with pytest.raises(InvalidStatus) as info:
                    async with connect(ws_url, additional_headers=headers):
                        pass
                assert info.value.response.status_code == 401
    asyncio.run(main())


def test_a_client_that_never_reads_is_dropped(tmp_path):
    """Drive the app's WebSocket route through ASGI with a client whose sends never complete
    (its socket is full): once it is ``max_queue`` events behind, the broker drops it and the
    server ends the connection with close code 1008."""
    async def main():
        async with market_session(tmp_path, max_queue=5) as (market, _):
            token, _ = market.issuer.issue("alice")
            scope = {"type": "websocket", "path": "/v2/stream", "raw_path": b"/v2/stream",
                     "query_string": b"", "headers": [(b"authorization",
                                                       f"Bearer {token}".encode())],
                     "scheme": "ws", "server": ("broker", 80), "client": ("peer", 1),
                     "subprotocols": [], "asgi": {"version": "3.0"}, "root_path": "",
                     "app": market.app}
            incoming = asyncio.Queue()
            await incoming.put({"type": "websocket.connect"})
            sent, stuck = [], asyncio.Event()

            async def send(message):
                sent.append(message)
                if message["type"] == "websocket.send":
                    await stuck.wait()          # never returns: the client does not read

            app = asyncio.ensure_future(market.app(scope, incoming.get, send))
            await asyncio.sleep(0.05)
            assert sent[0]["type"] == "websocket.accept"
            for i in range(8):
                market.broker.stream.publish("alice", "new", Order(
                    "alice", "AAPL", 1, "buy", "market", "day", None, f"c{i}", None))
            await asyncio.wait_for(app, 5)
            assert market.broker.stream.listeners["alice"] == []
            assert market.broker.stream.dropped == 1
            assert sent[-1]["type"] == "websocket.close" and sent[-1]["code"] == 1008
            assert market.broker.stream.last_seq("alice") == 8, "the events are kept for replay"
    asyncio.run(main())

