"""``tickwire market``: a local market — several venues, their market makers, the
consolidated quote, and the broker with its retail API.

:class:`Market` starts ``venues`` tickwire venues (:class:`~tickwire.ops.serve.Venue`, each its
own engine, WAL, feed and OUCH gateway), one :class:`~tickwire.ops.market_makers.MarketMaker`
on each, the consolidated book fed by every venue's ITCH feed, the broker (a member firm of
every venue through its own OUCH sessions) and the REST/WebSocket API on uvicorn, HTTPS with
a self-signed certificate unless ``plain_http``.

Each venue publishes its ITCH feed on a multicast group of its own (MoldUDP64, with its
re-request and snapshot servers); the consolidated book follows each through a
:class:`~tickwire.marketdata.subscriber.Subscriber`, as a SIP does.
"""

import argparse
import asyncio
import datetime
import logging
import os
import secrets
import shutil
import signal
import socket

import uvicorn
from tickwire.accounts.config import make_config, parse_config, write_config
from tickwire.broker.accounts import AccountBook
from tickwire.broker.audit import AuditTrail
from tickwire.broker.blotter import Blotter, blotter_path
from tickwire.broker.controls import CONTROLS, ControlsError, ControlsFile
from tickwire.broker.reconcile import VENUE_CONFIG
from tickwire.broker.service import Broker
from tickwire.clearing.calendar import trading_day
from tickwire.clearing.opening import OpeningBalance, opening_dict
from tickwire.gateways.rest.app import create_app
from tickwire.gateways.rest.auth import TokenIssuer
from tickwire.gateways.rest.ratelimit import DEFAULT_RATE_LIMIT, RateLimiter
from tickwire.gateways.rest.tls import self_signed
from tickwire.marketdata.settings import FeedSettings
from tickwire.marketdata.subscriber import Subscriber
from tickwire.ops.market_makers import MarketMaker, venue_offsets
from tickwire.ops.serve import Venue
from tickwire.routing.log import RoutingLog
from tickwire.routing.nbbo import ConsolidatedBook
from tickwire.routing.venues import VenueLink
from tickwire.core.money import PRICE_SCALE, format_dollars, parse_amount, parse_price

__all__ = [
    "DEFAULT_CASH",
    "DEFAULT_SYMBOLS",
    "Market",
    "add_market_arguments",
    "market_main",
    "parse_user",
]

log = logging.getLogger(__name__)

DEFAULT_SYMBOLS = {"AAPL": "182.50", "MSFT": "415.00", "AMZN": "178.25", "TSLA": "250.00"}
DEFAULT_CASH = 1_000_000 * PRICE_SCALE
VENUE_NAMES = ("XNAS", "XNYS", "BATS", "IEXG", "EDGX", "ARCX", "MEMX", "XPHL")
FEED_GROUP = "239.255.72.{}"
"""Venue ``i``'s multicast group (its ports are chosen free at start)."""
_BROKER, _MAKER = ("brk", "BRK"), ("mm", "MM")
BROKER_STOCK, MAKER_STOCK = 100_000, 10_000_000
MAKER_CASH = 10**10 * PRICE_SCALE


class Market:
    """Parameters
    ----------
    venues : int
        Number of venues (at most 8).
    users : dict of str to str
        Retail users and their passwords.
    cash : int
        Opening cash of each user (1/10000 $).
    symbols : dict of str to str
        Symbol → reference price in $ (a decimal string).
    out_dir : str
        Where the venues' WALs, feeds, risk logs and configs (``VENUE/venue.json``, with
        the members' opening balances for ``tickwire clear``/``settle``), the broker's audit
        trail (``audit/``), blotter, routing log, account controls (``accounts.json``, kept
        across runs) and certificate go (the venues start a fresh
        day, trade date today or, on a weekend or holiday, the next NYSE session).
    host, port : str, int
        The API's address (port 0: any).
    plain_http : bool
        Serve plain HTTP instead of HTTPS.
    rate_limit : int
        API requests per minute per user.
    hash_cost : int
        scrypt cost of the users' password hashes.
    """

    def __init__(self, venues=3, users=None, cash=DEFAULT_CASH, symbols=None,
                 out_dir="build/market", host="127.0.0.1", port=0, plain_http=False,
                 rate_limit=DEFAULT_RATE_LIMIT, hash_cost=2**14, token_ttl=3600.0,
                 max_queue=10_000):
        if not 1 <= venues <= len(VENUE_NAMES):
            raise ValueError(f"--venues must be from 1 to {len(VENUE_NAMES)}")
        self.names = list(VENUE_NAMES[:venues])
        self.symbols = dict(symbols or DEFAULT_SYMBOLS)
        self.out_dir, self.host, self.port = out_dir, host, port
        self.plain_http = plain_http
        self.passwords = {_BROKER[0]: secrets.token_hex(5), _MAKER[0]: secrets.token_hex(5)}
        self.venues, self.makers, self.subscribers = {}, {}, {}
        self.book = ConsolidatedBook(self.names)
        self.accounts = AccountBook()
        for user, password in (users or {}).items():
            self.accounts.add(user, password, cash, hash_cost=hash_cost)
        self.audit = AuditTrail(os.path.join(out_dir, "audit"))
        self.routing_log = RoutingLog(os.path.join(out_dir, "routing.jsonl"))
        os.makedirs(out_dir, exist_ok=True)
        self.blotter = Blotter(blotter_path(out_dir))
        self.controls = ControlsFile(os.path.join(out_dir, CONTROLS), self.accounts,
                                     self.symbols)
        self.broker = Broker(self.book, self.accounts, {}, self.audit, self.routing_log,
                             max_queue=max_queue, blotter=self.blotter, controls=self.controls)
        self.issuer = TokenIssuer(ttl=token_ttl)
        self.limiter = RateLimiter(rate_limit)
        self.app = create_app(self.broker, self.issuer, self.limiter)
        self.server = None
        self.cert = None
        self.demo = None                # (user, password) printed at start-up
        self.config = None              # the venues' config (accounts: the broker, the makers)
        self._serving = None

    def _opening(self):
        """The members' opening balances at each venue's clearing house (the config's
        ``members``): the broker holds its customers' cash and a stock of every symbol, the
        market makers plenty of both, so a day settles without fails."""
        customers = sum(a.cash for a in self.accounts.accounts.values())
        broker = OpeningBalance(max(customers, DEFAULT_CASH), 0, 0,
                                {s: BROKER_STOCK for s in self.symbols})
        maker = OpeningBalance(MAKER_CASH, 0, 0, {s: MAKER_STOCK for s in self.symbols})
        return {_BROKER[1]: opening_dict(broker), _MAKER[1]: opening_dict(maker)}

    @property
    def url(self):
        return f"{'http' if self.plain_http else 'https'}://{self.host}:{self.port}"

    async def start(self):
        """Start the venues, the market makers, the broker's sessions and the API."""
        os.makedirs(self.out_dir, exist_ok=True)
        self.controls.start()
        data = make_config(
            {_BROKER[0]: {"firm": _BROKER[1], "password": self.passwords[_BROKER[0]]},
             _MAKER[0]: {"firm": _MAKER[1], "password": self.passwords[_MAKER[0]]}},
            symbols=self.symbols, n=2**10)
        data["members"] = self._opening()
        self.trade_date = trading_day(datetime.datetime.now(datetime.timezone.utc).date())
        self.audit.trade_date = self.trade_date
        config = self.config = parse_config(data)
        for i, name in enumerate(self.names):
            directory = os.path.join(self.out_dir, name)
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)
            write_config(os.path.join(directory, VENUE_CONFIG), data)
            feed = FeedSettings(group=FEED_GROUP.format(i + 1), port=0, interface=self.host,
                                host=self.host, rerequest_port=0, snapshot_port=0,
                                ws_port=None, session=f"{name}0001")
            venue = Venue(config, os.path.join(directory, "session.wal"),
                          feed_pcap=os.path.join(directory, "feed.pcap"),
                          decision_log=os.path.join(directory, "decisions.jsonl"),
                          host=self.host, feed=feed, trade_date=self.trade_date.isoformat())
            await venue.start()
            self.venues[name] = venue
            md = venue.marketdata
            subscriber = Subscriber(*md.feed_address, interface=self.host,
                                    rerequest=md.rerequest_address,
                                    snapshot=md.snapshot_address)
            self.subscribers[name] = self.book.subscribe(name, subscriber)
            await subscriber.start()
        for i, name in enumerate(self.names):
            address = (self.host, self.venues[name].gateway.port)
            quotes = {}
            for k, (symbol, price) in enumerate(self.symbols.items()):
                reference = parse_price(str(price))
                below, above = venue_offsets(i, k, len(self.names))
                quotes[symbol] = (reference - below * 100, reference + above * 100)
            self.makers[name] = await MarketMaker(
                name, address, (_MAKER[0], self.passwords[_MAKER[0]]), quotes).start()
            link = VenueLink(name, address, (_BROKER[0], self.passwords[_BROKER[0]]),
                             self.broker.on_fill, self.broker.on_done,
                             on_replaced=self.broker.on_replaced,
                             on_replace_rejected=self.broker.on_replace_rejected)
            self.broker.links[name] = await link.connect()
        await self._quotes_shown()
        await self._serve_api()
        return self

    async def _quotes_shown(self, timeout=10.0):
        """Wait until every symbol has a bid and an ask on every venue."""
        async def shown():
            while not all(len(self.book.venue_quotes(s)) == len(self.names) and
                          all(q.bid and q.ask for q in self.book.venue_quotes(s).values())
                          for s in self.symbols):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(shown(), timeout)

    async def _serve_api(self):
        ssl = {}
        if not self.plain_http:
            cert, key = self.cert = self_signed(os.path.join(self.out_dir, "tls"), self.host)
            ssl = {"ssl_certfile": cert, "ssl_keyfile": key}
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                ws="websockets-sansio", **ssl)
        self.server = uvicorn.Server(config)
        self._serving = asyncio.get_running_loop().create_task(self.server.serve([sock]))
        while not self.server.started:
            if self._serving.done():
                self._serving.result()
            await asyncio.sleep(0.01)

    async def stop(self):
        """Stop the API, the sessions and the makers; close the venues' day."""
        if self.server is not None:
            self.server.should_exit = True
            await self._serving
        await self.broker.drain(2.0)
        for link in self.broker.links.values():
            await link.close()
        for maker in self.makers.values():
            await maker.close()
        for venue in self.venues.values():
            await venue.stop(close_day=True)
        for subscriber in self.subscribers.values():
            await subscriber.close()
        self.audit.close()
        self.routing_log.close()
        self.blotter.close()


def parse_user(spec):
    """``USER:PASSWORD`` → (user, password); raises ValueError."""
    user, sep, password = spec.partition(":")
    if not sep or not user or not password:
        raise ValueError(f"--user {spec!r} is not USER:PASSWORD")
    return user, password


def add_market_arguments(parser):
    parser.add_argument("--venues", type=int, default=3, help="number of venues (default 3)")
    parser.add_argument("--host", default="127.0.0.1", help="address of everything (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="the broker API's port (8443)")
    parser.add_argument("--user", action="append", default=[], metavar="USER:PASSWORD",
                        help="a retail user with a cash account (repeatable)")
    parser.add_argument("--cash", default=format_dollars(DEFAULT_CASH),
                        help="each user's opening cash in $ (default 1000000.00)")
    parser.add_argument("--plain-http", action="store_true",
                        help="serve plain HTTP instead of HTTPS (local use only)")
    parser.add_argument("--rate-limit", type=int, default=DEFAULT_RATE_LIMIT,
                        help=f"API requests per minute per user (default {DEFAULT_RATE_LIMIT})")
    parser.add_argument("--symbol", action="append", default=[], metavar="NAME=PRICE",
                        help="a symbol and its reference price in $ (repeatable; default "
                        + ", ".join(f"{k}={v}" for k, v in DEFAULT_SYMBOLS.items()) + ")")
    parser.add_argument("--out", default="build/market",
                        help="venues' logs, audit trail, routing log, certificate (build/market)")
    return parser


async def _run(market, echo):
    await market.start()
    echo(f"broker API: {market.url}  (OpenAPI: {market.url}/openapi.json)")
    if market.cert:
        echo(f"certificate: {market.cert[0]}  (curl --cacert {market.cert[0]} ...)")
    echo(f"demo login: {market.demo[0]} / {market.demo[1]}")
    for name, venue in market.venues.items():
        echo(f"venue {name}: OUCH 4.2 on {market.host}:{venue.gateway.port}")
    for symbol in market.symbols:
        nbbo = market.book.get(symbol)
        echo(f"  {symbol:<6} NBBO {format_dollars(nbbo.bid.price)} ({nbbo.bid.venue}) x "
             f"{format_dollars(nbbo.ask.price)} ({nbbo.ask.venue})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    echo("running; Ctrl-C to stop")
    await stop.wait()
    await market.stop()
    quality = market.routing_log.quality()
    echo(f"routed {quality['decisions']} decisions, {quality['volume']} shares filled, "
         f"trade-throughs: {quality['trade_throughs']}")


def market_main(args, echo=print):
    """``tickwire market`` entry: ``args`` from :func:`add_market_arguments`."""
    try:
        users = dict(parse_user(spec) for spec in args.user)
        symbols = {}
        for spec in args.symbol:
            name, sep, price = spec.partition("=")
            if not sep:
                raise ValueError(f"--symbol {spec!r} is not NAME=PRICE")
            parse_price(price)                   # exact dollars and cents, or ValueError
            symbols[name] = price
        cash = parse_amount(args.cash)
        if cash < 0:
            raise ValueError("--cash must not be negative")
        if args.rate_limit < 1:
            raise ValueError("--rate-limit must be at least 1")
    except ValueError as exc:
        echo(f"tickwire market: {exc}")
        return 2
    demo = ("demo", secrets.token_urlsafe(9))
    users.setdefault(*demo)
    market = Market(args.venues, users, cash, symbols or None, args.out,
                    args.host, args.port, args.plain_http, args.rate_limit)
    market.demo = (demo[0], users[demo[0]])
    try:
        asyncio.run(_run(market, lambda line: echo(line, flush=True)))
    except ControlsError as exc:
        echo(f"tickwire market: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(market_main(add_market_arguments(argparse.ArgumentParser(
        prog="python -m tickwire.ops.market")).parse_args()))
