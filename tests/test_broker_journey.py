"""The seed's walk-through, "Buy 100 AAPL at Market", end to end through the public API over
HTTPS (the market's self-signed certificate verified), and a venue going down mid-order."""

import asyncio
import json
import ssl

import httpx
from broker_util import PASSWORDS, market_session
from tickwire.clearing.calendar import next_business_day, settlement_date
from tickwire.clearing.capture import capture_session
from tickwire.compliance.audit.keys import load_public_key
from tickwire.compliance.audit.trail import read_records, read_trail_lines
from tickwire.compliance.audit.verify import verify_trail
from websockets.asyncio.client import connect

BUY_100 = {"symbol": "AAPL", "qty": "100", "side": "buy", "type": "market",
           "time_in_force": "day", "client_order_id": "phone-tap-1"}


def test_buy_100_aapl_at_market(tmp_path):
    async def main():
        async with market_session(tmp_path, plain_http=False) as (market, _):
            assert market.url.startswith("https://")
            tls = ssl.create_default_context(cafile=market.cert[0])
            async with httpx.AsyncClient(base_url=market.url, verify=tls) as api:
                # 1. the app logs in: a JWT with an expiry
                r = await api.post("/v2/auth/login",
                                   json={"username": "alice", "password": PASSWORDS["alice"]})
                assert r.status_code == 200 and r.json()["expires_at"].endswith("Z")
                h = {"Authorization": f"Bearer {r.json()['token']}"}
                account = (await api.get("/v2/account", headers=h)).json()
                remaining = int((await api.get("/v2/account", headers=h))
                                .headers["X-RateLimit-Remaining"])
                ws_url = market.url.replace("https", "wss") + "/v2/stream"
                async with connect(ws_url, additional_headers=h, ssl=tls) as stream:
                    # 2. POST buy 100 AAPL at market: JWT and rate limit checked
                    r = await api.post("/v2/orders", headers=h, json=BUY_100)
                    assert r.status_code == 200, r.text
                    assert int(r.headers["X-RateLimit-Remaining"]) == remaining - 1
                    order = r.json()
                    assert order["status"] == "new" and order["client_order_id"] == "phone-tap-1"
                    events = [json.loads(await asyncio.wait_for(stream.recv(), 5))
                              for _ in range(2)]
                assert [(e["seq"], e["event"]) for e in events] == [(1, "new"), (2, "fill")]
                filled = events[1]["order"]
                assert filled["status"] == "filled" and filled["filled_qty"] == "100"
                # 3. each step's record
                audit = (await api.get(f"/v2/orders/{order['id']}/audit", headers=h)).json()
                steps = [a["event_type"] for a in audit]
                assert steps == ["ORDER_RECEIVED", "ORDER_VALIDATED", "RISK_ACCEPTED",
                                 "ORDER_ROUTED", "ORDER_EXECUTED"], steps
                received, validated, risk, routed, executed = audit
                assert received["symbol"] == "AAPL" and received["quantity"] == 100
                assert received["order_type"] == "MARKET" and received["side"] == "BUY"
                assert float(validated["details"]["buying_power_check"]["buying_power_after"]) < \
                    float(account["buying_power"]), "buying power was reserved"
                assert risk["details"]["risk_check"]["result"] == "pass"
                decision = routed["routing_decision"]
                prices = decision["prices_at_decision"]
                assert len(prices) == 3 and len(set(prices.values())) > 1, "routing matters"
                best = min(prices, key=lambda v: float(prices[v]))
                assert decision["selected_venue"] == best and decision["reason"] == "BEST_PRICE"
                assert sorted(decision["alternatives_considered"]) == sorted(set(prices) - {best})
                # 4. the venue matched; the fill price is the best ask across venues at decision
                execution = executed["details"]["execution"]
                assert execution["venue"] == best and execution["qty"] == 100
                assert execution["price"] == prices[best] == execution["nbbo_at_decision"]["ask"]
                assert execution["match_number"] >= 1
                assert filled["filled_avg_price"] == prices[best]
                # 5. position and cash updated
                positions = (await api.get("/v2/positions", headers=h)).json()
                assert [(p["symbol"], p["qty"], p["avg_entry_price"]) for p in positions] == [
                    ("AAPL", "100", prices[best])]
                after = (await api.get("/v2/account", headers=h)).json()
                spent = round(float(account["cash"]) - float(after["cash"]), 2)
                assert spent == round(100 * float(prices[best]), 2)
                assert after["buying_power"] == after["cash"]
                # and the routing report counts it at the NBBO, no trade-through
                report = (await api.get("/v2/reports/rule606", headers=h)).json()
                assert report["quality"]["trade_throughs"] == 0
                assert report["quality"]["share_at_nbbo"] == 1.0
                assert report["routing"]["venues"][best]["shares_executed"] == 100
        # the audit records are the compliance trail's: signed, verifiable, in order
        trail = tmp_path / "market" / "audit"
        result = verify_trail(read_trail_lines(trail / "trail.jsonl"),
                              load_public_key(str(trail / "public.pem")))
        assert result.ok, result.message
        assert [r["event_id"] for r in read_records(str(trail))][:5] == \
            [a["event_id"] for a in audit]
        # post-trade: the venue's journal gives the trade to clearing, settling on T+1
        wal = tmp_path / "market" / execution["venue"] / "session.wal"
        trade_date, trades = capture_session(str(wal), market.config)
        [trade] = [t for t in trades if t.match == execution["match_number"]]
        assert (trade.buyer, trade.symbol, trade.qty, trade.price) == \
            ("BRK", "AAPL", 100, round(float(execution["price"]) * 10000))
        assert settlement_date(trade_date, 1) == next_business_day(trade_date)
    asyncio.run(main())


def test_a_venue_down_is_routed_around_and_an_order_in_flight_is_recovered(tmp_path):
    async def main():
        async with market_session(tmp_path) as (market, c):
            r = await c.post("/v2/auth/login",
                             json={"username": "alice", "password": PASSWORDS["alice"]})
            h = {"Authorization": f"Bearer {r.json()['token']}"}
            nbbo = (await c.get("/v2/nbbo/AAPL", headers=h)).json()
            best = nbbo["ask"]["venue"]
            link = market.broker.links[best]
            link.breaker.reset_after = 0.3
            # the line drops right after the order leaves: its reports come back by replay
            original = link.send

            def send_then_drop(*args, **kw):
                child = original(*args, **kw)
                link.client._writer.transport.abort()
                return child

            link.send = send_then_drop
            r = await c.post("/v2/orders", headers=h, json=dict(BUY_100, client_order_id="a"))
            order = r.json()
            for _ in range(200):
                order = (await c.get(f"/v2/orders/{order['id']}", headers=h)).json()
                if order["status"] == "filled":
                    break
                await asyncio.sleep(0.02)
            assert order["status"] == "filled" and order["filled_qty"] == "100"
            assert order["filled_avg_price"] == nbbo["ask"]["price"]
            assert link.stats["reconnects"] == 1 and link.breaker.trips == 1
            assert len(market.routing_log.decisions) == 1, "not routed twice"
            link.send = original
            # the venue goes down: the next order is routed around it, not waited on
            await market.venues[best].gateway.close()
            await asyncio.sleep(0.1)
            r = await c.post("/v2/orders", headers=h, json=dict(BUY_100, client_order_id="b"))
            assert r.status_code == 200
            await asyncio.sleep(0.3)
            order = (await c.get(f"/v2/orders/{r.json()['id']}", headers=h)).json()
            assert order["status"] == "filled"
            decision = market.routing_log.decisions[-1]
            assert decision["skipped"] == {best: "circuit_open"}
            assert decision["selected_venue"] != best
            assert market.routing_log.quality()["trade_throughs"] == 0
            positions = (await c.get("/v2/positions", headers=h)).json()
            assert positions[0]["qty"] == "200"
    asyncio.run(main())
