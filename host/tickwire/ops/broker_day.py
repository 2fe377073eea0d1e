"""``tickwire run --broker``: a trading day in which retail clients trade through the broker's
API across the venues of a local market.

:func:`run_broker_day` starts a :class:`~tickwire.ops.market.Market` (HTTPS unless told), logs
in ``clients`` retail users, each with its order stream open, and lets them trade: market
orders, marketable and passive limit orders (priced off ``GET /v2/nbbo``), IOC/FOK/GTC, larger
orders that sweep several venues, sells of what they hold, cancels of resting orders. The
market makers move their quotes a tick at a time as the day goes, so the best venue changes.
Each client paces itself within the rate limit and honours ``Retry-After``. At the close it
reports orders, fills and refusals, REST latency (request → acknowledgement), and routing
quality from the routing log: the share of volume at the NBBO, price improvement and
trade-throughs (which must be 0), with the Rule 606-style table; all of it in
``broker.json`` beside the routing log and audit trail.
"""

import asyncio
import json
import os
import random
import ssl
import time
from collections import Counter

import httpx
from tickwire.broker.reconcile import reconcile
from tickwire.core.money import format_dollars, parse_price
from tickwire.ops.market import Market
from tickwire.ops.market_admin import (
    clear_and_settle,
    format_trail,
    format_venue_compliance,
    settle_audit_trail,
    venue_compliance,
)
from tickwire.ops.run_job import latency_summary
from tickwire.util.progress import progress as progress_bar
from websockets.asyncio.client import connect

__all__ = ["run_broker_day", "print_broker_report", "add_broker_day_arguments",
           "broker_day_main"]

_TIFS = ("day", "day", "ioc", "gtc", "fok")


class _Client:
    """One retail user: its API session, its stream, what it holds and what rests."""

    def __init__(self, user, password, rng):
        self.user, self.password, self.rng = user, password, rng
        self.held = Counter()
        self.resting = []
        self.latencies = []
        self.outcomes = Counter()
        self.events = Counter()
        self.filled = {}            # order id -> shares filled so far (from the stream)

    async def request(self, api, method, path, **kw):
        """One API call; waits out a 429 as its Retry-After says."""
        while True:
            t0 = time.perf_counter_ns()
            r = await api.request(method, path, headers=self.headers, **kw)
            if r.status_code != 429:
                return r, time.perf_counter_ns() - t0
            self.outcomes["rate_limited"] += 1
            await asyncio.sleep(float(r.headers["Retry-After"]))

    async def listen(self, ws):
        """Follow the order stream: shares bought come in as they fill; shares of a sell
        (taken off when it was sent) come back if it ends unfilled."""
        async for text in ws:
            event = json.loads(text)
            self.events[event["event"]] += 1
            order = event["order"]
            filled = int(order["filled_qty"])
            if order["side"] == "buy":
                self.held[order["symbol"]] += filled - self.filled.get(order["id"], 0)
            elif event["event"] in ("canceled", "expired") or (
                    event["event"] == "rejected" and not order["replaces"]):
                # (a refused replace gives nothing back: its shares were never taken off)
                self.held[order["symbol"]] += int(order["qty"]) - filled
            self.filled[order["id"]] = filled

    def order_body(self, symbol, nbbo):
        rng = self.rng
        held = self.held[symbol]
        side = "sell" if held >= 100 and rng.random() < 0.45 else "buy"
        qty = rng.choice((100, 100, 200, 300, 500)) if rng.random() < 0.9 else \
            rng.choice((1000, 1500, 2500))
        if side == "sell":
            qty = min(qty, held)
            self.held[symbol] -= qty
        body = {"symbol": symbol, "qty": str(qty), "side": side,
                "client_order_id": f"{self.user}-{rng.getrandbits(48):x}"}
        if rng.random() < 0.6:
            return body | {"type": "market", "time_in_force": "day"}
        far = nbbo["ask" if side == "buy" else "bid"]
        near = nbbo["bid" if side == "buy" else "ask"]
        step = 0.01 if side == "buy" else -0.01
        if rng.random() < 0.6 and far:
            price = float(far["price"]) + step * rng.randint(0, 2)     # marketable
        else:
            price = float(near["price"]) - step * rng.randint(0, 3)    # passive
        return body | {"type": "limit", "limit_price": f"{price:.2f}",
                       "time_in_force": rng.choice(_TIFS)}


async def _trade(client, api, symbols, orders, tick):
    for _ in range(orders):
        symbol = client.rng.choice(symbols)
        nbbo, _ = await client.request(api, "GET", f"/v2/nbbo/{symbol}")
        body = client.order_body(symbol, nbbo.json())
        r, took = await client.request(api, "POST", "/v2/orders", json=body)
        client.outcomes[r.status_code == 200 and "accepted" or r.json()["reason"]] += 1
        if r.status_code == 200:
            client.latencies.append(took)
            if body.get("time_in_force") in ("day", "gtc") and body["type"] == "limit":
                client.resting.append(r.json()["id"])
        elif body["side"] == "sell":
            client.held[symbol] += int(body["qty"])
        if client.resting and client.rng.random() < 0.15:
            order_id = client.resting.pop(client.rng.randrange(len(client.resting)))
            if client.rng.random() < 0.5:
                await client.request(api, "DELETE", f"/v2/orders/{order_id}")
            else:
                await _replace(client, api, order_id)
        tick()


async def _replace(client, api, order_id):
    """Move a resting limit order a cent or two (Alpaca's PATCH): the new order rests."""
    r, _ = await client.request(api, "GET", f"/v2/orders/{order_id}")
    order = r.json()
    if order["status"] not in ("new", "partially_filled"):
        return                                          # it has filled or ended meanwhile
    cents = client.rng.choice((-2, -1, 1))
    price = parse_price(order["limit_price"]) + cents * 100 * (1 if order["side"] == "buy"
                                                               else -1)
    r, _ = await client.request(api, "PATCH", f"/v2/orders/{order_id}",
                                json={"limit_price": format_dollars(price)})
    client.outcomes["replaced" if r.status_code == 200 else f"replace {r.json()['reason']}"] += 1
    if r.status_code == 200:
        client.resting.append(r.json()["id"])


async def _move_quotes(market, rng, interval, stop):
    while not stop.is_set():
        await asyncio.sleep(interval)
        maker = market.makers[rng.choice(market.names)]
        maker.move(rng.choice(list(market.symbols)), rng.choice((-1, 1)))


async def run_broker_day(orders=1000, clients=8, seed=1, venues=3, out_dir="build/run",
                         progress=True, plain_http=False, rate_limit=200, move_every=0.02):
    """Play a retail day through the broker; return the report dict (also ``broker.json``).

    Parameters
    ----------
    orders : int
        Retail orders, shared among the clients.
    clients : int
        Retail users, each with its own session and order stream.
    venues : int
        Venues in the market.
    plain_http : bool
        Talk to the API over plain HTTP instead of HTTPS.
    rate_limit : int
        API requests per minute per user.
    move_every : float
        Seconds between quote moves of the market makers.
    """
    rng = random.Random(seed)
    users = {f"r{i:03d}": f"pw-{rng.getrandbits(32):x}" for i in range(clients)}
    market = Market(venues, users, out_dir=os.path.join(out_dir, "broker"),
                    plain_http=plain_http, rate_limit=rate_limit, hash_cost=2**12)
    await market.start()
    tls = ssl.create_default_context(cafile=market.cert[0]) if market.cert else False
    people = [_Client(u, p, random.Random(rng.getrandbits(64))) for u, p in users.items()]
    stop = asyncio.Event()
    mover = asyncio.create_task(_move_quotes(market, random.Random(seed), move_every, stop))
    bar = progress_bar(None, "broker day", "order", enabled=progress, total=orders)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=market.url, verify=tls, timeout=30) as api:
        streams = []
        for person in people:
            r = await api.post("/v2/auth/login", json={"username": person.user,
                                                       "password": person.password})
            person.headers = {"Authorization": f"Bearer {r.json()['token']}"}
            ws = await connect(market.url.replace("http", "ws", 1) + "/v2/stream",
                               additional_headers=person.headers, ssl=tls or None)
            streams.append((ws, asyncio.create_task(person.listen(ws))))
        shares = [orders // clients + (i < orders % clients) for i in range(clients)]
        await asyncio.gather(*(_trade(p, api, list(market.symbols), n, lambda: bar.update())
                               for p, n in zip(people, shares)))
        stop.set()
        await mover
        for person in people:
            for order_id in person.resting:
                await person.request(api, "DELETE", f"/v2/orders/{order_id}")
        await market.broker.drain(10)
        await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        for ws, task in streams:
            await ws.close()
            task.cancel()
    bar.close()
    await market.stop()
    cycles = clear_and_settle(market.out_dir)
    trail = settle_audit_trail(market.out_dir, cycles)
    venues_compliance = venue_compliance(market.out_dir, cycles)
    books = reconcile(market.out_dir)
    broker = market.broker
    statuses = Counter(o.status for o in broker.orders.values())
    outcomes = sum((p.outcomes for p in people), Counter())
    report = {
        "clients": clients, "venues": venues, "seed": seed, "orders_sent": orders,
        "elapsed_s": round(elapsed, 3), "accepted": outcomes["accepted"],
        "refused": {k: v for k, v in sorted(outcomes.items())
                    if k != "accepted" and not k.startswith("replace")},
        "replaces": {k: v for k, v in sorted(outcomes.items()) if k.startswith("replace")},
        "statuses": dict(sorted(statuses.items())),
        "stream_events": dict(sorted(sum((p.events for p in people), Counter()).items())),
        "rest_ack_latency": latency_summary([x for p in people for x in p.latencies]),
        "routing_quality": broker.routing_log.quality(),
        "rule606": broker.routing_log.rule606(),
        "market_maker_refills": sum(m.replenished for m in market.makers.values()),
        "audit": trail,
        "venue_compliance": venues_compliance,
        "clearing": {"venues": {v: {"trades": n, "settled_on": d.isoformat()}
                                for v, (n, d) in cycles.items()},
                     "reconciled": books.ok,
                     "problems": {v: c.problems for v, c in books.venues.items() if c.problems},
                     "unsettled": {v: c.unsettled for v, c in books.venues.items()
                                   if c.unsettled}},
        "accounts": {p.user: broker.account_summary(p.user) | {"positions": {
            pos["symbol"]: pos["qty"] for pos in broker.positions(p.user)}} for p in people},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "broker.json"), "w") as f:
        json.dump(report, f, indent=2, default=str)
    return report


def print_broker_report(r, echo=print):
    """The broker day's report as a few readable lines."""
    q, lat = r["routing_quality"], r["rest_ack_latency"]
    echo(f"{r['orders_sent']:,} retail orders from {r['clients']} clients over {r['venues']} "
         f"venues in {r['elapsed_s']:.1f} s: {r['accepted']:,} accepted; "
         + ", ".join(f"{k} {v:,}" for k, v in r["statuses"].items()))
    if r["refused"]:
        echo("refused: " + ", ".join(f"{k} {v:,}" for k, v in r["refused"].items()))
    if r["replaces"]:
        echo("replaces (PATCH): " + ", ".join(f"{k} {v:,}" for k, v in r["replaces"].items()))
    if lat:
        echo(f"REST request → acknowledgement: p50 {lat['p50_us'] / 1000:,.1f} ms, "
             f"p99 {lat['p99_us'] / 1000:,.1f} ms")
    share = "n/a" if q["share_at_nbbo"] is None else f"{100 * q['share_at_nbbo']:.1f} %"
    echo(f"routing: {q['decisions']:,} decisions, {q['volume']:,} shares in {q['fills']:,} "
         f"fills; at or better than the NBBO: {share}; price improvement "
         f"${q['price_improvement']} on {q['price_improved_fills']} fills; "
         f"trade-throughs: {q['trade_throughs']}")
    c = r["clearing"]
    dates = ", ".join(sorted({v["settled_on"] for v in c["venues"].values()}))
    echo(f"clearing: {sum(v['trades'] for v in c['venues'].values()):,} trades cleared at "
         f"{len(c['venues'])} venues, settled on {dates} (T+1); the broker's positions "
         + ("reconcile with clearing's" if c["reconciled"] else f"DISAGREE: {c['problems']}"))
    echo(format_trail(r["audit"]))
    for venue, summary in r["venue_compliance"].items():
        echo(format_venue_compliance(venue, summary))
    for venue, row in r["rule606"]["venues"].items():
        echo(f"  {venue}: {row['orders']:,} orders routed ({row['pct_of_orders']:.1f} %), "
             f"{row['shares_executed']:,} shares executed")



def add_broker_day_arguments(parser):
    """``tickwire run --broker`` and its options (beside :func:`add_run_arguments`'s)."""
    group = parser.add_argument_group("the broker's day (--broker)")
    group.add_argument("--broker", action="store_true",
                       help="play a day of retail clients trading through the broker's API "
                       "across several venues; report routing quality")
    group.add_argument("--retail-orders", type=int, default=1000,
                       help="retail orders of the day (default 1000)")
    group.add_argument("--retail-clients", type=int, default=20,
                       help="retail users, each with its API session (default 20)")
    group.add_argument("--venues", type=int, default=3, help="venues (default 3)")
    group.add_argument("--rate-limit", type=int, default=200,
                       help="API requests per minute per user (default 200)")
    group.add_argument("--plain-http", action="store_true",
                       help="talk to the API over plain HTTP instead of HTTPS")
    return parser


def broker_day_main(args):
    """``tickwire run --broker`` entry."""
    quiet = getattr(args, "quiet", False)
    report = asyncio.run(run_broker_day(
        args.retail_orders, args.retail_clients, args.seed, args.venues, args.out,
        not (args.no_progress or quiet), args.plain_http, args.rate_limit))
    if not quiet:
        print_broker_report(report)
        print(f"wrote {args.out}/broker.json, {args.out}/broker/ (routing.jsonl, the audit "
              "trail in audit/ and its keys in keys/, each venue's WAL and feed)")
    return 0
