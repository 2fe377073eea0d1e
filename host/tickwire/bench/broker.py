"""Broker benchmarks: the retail API, the consolidated quote, the router, the order stream.

Each runs a local market (:class:`~tickwire.ops.market.Market`: three venues, their market
makers, the broker, uvicorn on loopback, plain HTTP so the figures are the broker's and not
TLS's) in this process:

* **REST orders**: ``clients`` concurrent API sessions send market buys of 100 shares (the
  market makers refill what they take) as fast as they are answered; orders/s, and p50/p99 from the
  request to its acknowledgement (the ``200`` with the order);
* **NBBO update delay**: the market makers move their quotes (one symbol on one venue every
  5 ms, each move twelve orders); from the moment a venue's
  MoldUDP64 packet is handed to its multicast socket to the consolidated NBBO recomputed
  from it by the venue's subscriber;
* **router decisions/s**: :func:`~tickwire.routing.router.decide` on three venues' quotes, a
  1,500-share buy that sweeps them;
* **WebSocket fan-out**: ``listeners`` clients on ``/v2/stream`` of one user, events
  published by the broker's stream; deliveries per second to all of them.
"""

import asyncio
import statistics
import tempfile
import time

import httpx
from websockets.asyncio.client import connect

from tickwire.broker.orders import Order
from tickwire.ops.market import Market
from tickwire.routing.nbbo import Quote, VenueQuote
from tickwire.routing.router import decide
from tickwire.util.figure import Figure

__all__ = ["broker_figures", "bench_rest", "bench_nbbo_delay", "bench_router", "bench_fanout"]

_USER, _PASSWORD = "bench", "bench-pw"


def _pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


async def _market(tmp):
    market = Market(users={_USER: _PASSWORD}, cash=10**12 * 10000, out_dir=tmp,
                    plain_http=True, rate_limit=10**9, hash_cost=2**10)
    market.broker.limits = market.broker.limits.__class__()      # no per-order risk limits
    return await market.start()


async def _login(api):
    r = await api.post("/v2/auth/login", json={"username": _USER, "password": _PASSWORD})
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def bench_rest(tmp, orders=800, clients=8):
    """``{orders_per_s, p50_us, p99_us}`` of POST /v2/orders through the real server."""
    market = await _market(tmp)
    try:
        async with httpx.AsyncClient(base_url=market.url, timeout=30) as api:
            headers = await _login(api)
            latencies = []

            async def client(n):
                for _ in range(n):
                    t0 = time.perf_counter_ns()
                    r = await api.post("/v2/orders", headers=headers, json={
                        "symbol": "AAPL", "qty": 100, "side": "buy", "type": "market",
                        "time_in_force": "day"})
                    latencies.append(time.perf_counter_ns() - t0)
                    if r.status_code != 200:
                        raise RuntimeError(f"order refused: {r.text}")

            started = time.perf_counter()
            await asyncio.gather(*(client(orders // clients) for _ in range(clients)))
            elapsed = time.perf_counter() - started
            await market.broker.drain(30)
    finally:
        await market.stop()
    return {"orders_per_s": len(latencies) / elapsed, "p50_us": _pct(latencies, 50) / 1000,
            "p99_us": _pct(latencies, 99) / 1000}


async def bench_nbbo_delay(tmp, moves=400, interval=0.005):
    """p50/p99 µs from a venue's packet at its multicast socket to the NBBO recomputed."""
    market = await _market(tmp)
    sent, delays = {}, []
    try:
        for name, venue in market.venues.items():
            def stamp(packet, timestamp_ns, name=name):
                sequence = int.from_bytes(packet[10:18], "big")
                count = int.from_bytes(packet[18:20], "big")
                if 0 < count < 0xFFFF:
                    sent[name, sequence + count - 1] = time.perf_counter_ns()
            venue.marketdata.publisher.listeners.append(stamp)
            subscriber = market.subscribers[name]
            inner = subscriber.on_update

            def timed(locate, name=name, subscriber=subscriber, inner=inner):
                inner(locate)
                t0 = sent.pop((name, subscriber.expected - 1), None)
                if t0 is not None:
                    delays.append(time.perf_counter_ns() - t0)
            subscriber.on_update = timed
        symbols = list(market.symbols)
        for i in range(moves):
            maker = market.makers[market.names[i % len(market.names)]]
            maker.move(symbols[i % len(symbols)], 1 if (i // 7) % 2 == 0 else -1)
            await asyncio.sleep(interval)
        await asyncio.sleep(0.5)
    finally:
        await market.stop()
    return {"updates": len(delays), "p50_us": _pct(delays, 50) / 1000,
            "p99_us": _pct(delays, 99) / 1000, "mean_us": statistics.fmean(delays) / 1000}


def bench_router(decisions=100_000):
    """Decisions per second of a 1,500-share buy over three venues."""
    quotes = {v: VenueQuote(v, Quote(1824900 - i * 100, 500, v), Quote(1825100 + i * 100, 600, v),
                            True, i, i) for i, v in enumerate(("A", "B", "C"))}
    healthy = quotes.__contains__
    started = time.perf_counter()
    for i in range(decisions):
        decide(str(i), "AAPL", "buy", 1500, None, "day", quotes, healthy)
    return decisions / (time.perf_counter() - started)


async def bench_fanout(tmp, listeners=50, events=200):
    """Events delivered per second to ``listeners`` WebSocket clients of one user."""
    market = await _market(tmp)
    try:
        async with httpx.AsyncClient(base_url=market.url) as api:
            headers = await _login(api)
            url = market.url.replace("http", "ws", 1) + "/v2/stream"
            sockets = [await connect(url, additional_headers=headers)
                       for _ in range(listeners)]
            order = Order(_USER, "AAPL", 100, "buy", "market", "day", None, "bench", None)

            async def drain(ws):
                for _ in range(events):
                    await ws.recv()

            started = time.perf_counter()
            readers = [asyncio.create_task(drain(ws)) for ws in sockets]
            for i in range(events):
                market.broker.stream.publish(_USER, "new", order)
                if i % 20 == 0:
                    await asyncio.sleep(0)
            await asyncio.wait_for(asyncio.gather(*readers), 120)
            elapsed = time.perf_counter() - started
            for ws in sockets:
                await ws.close()
    finally:
        await market.stop()
    return listeners * events / elapsed


def broker_figures():
    """The ``broker`` entry of ``make bench``."""
    with tempfile.TemporaryDirectory() as tmp:
        rest = asyncio.run(bench_rest(f"{tmp}/rest"))
        nbbo = asyncio.run(bench_nbbo_delay(f"{tmp}/nbbo"))
        fanout = asyncio.run(bench_fanout(f"{tmp}/fanout"))
    router = bench_router()
    return [
        Figure("broker REST: orders through the API (8 sessions, plain HTTP)",
               rest["orders_per_s"], "ord/s"),
        Figure("broker REST: request → acknowledgement p50", rest["p50_us"], "µs"),
        Figure("broker REST: request → acknowledgement p99", rest["p99_us"], "µs"),
        Figure("NBBO update delay p50 (venue packet sent → NBBO)", nbbo["p50_us"], "µs",
               note=f"{nbbo['updates']} updates, multicast on loopback"),
        Figure("NBBO update delay p99", nbbo["p99_us"], "µs"),
        Figure("router decisions (1,500-share sweep, 3 venues)", router, "dec/s"),
        Figure("WebSocket fan-out: order events to 50 stream clients", fanout, "msg/s"),
    ]
