"""``tickwire serve``: the exchange's order-entry side as a long-running server.

:class:`Venue` puts the pieces together: engine, write-ahead log (recovered on start),
feed publisher (MoldUDP64 to a pcap, rebuilt from the WAL on every start, so it is the same
bytes however often the server restarts), the feed on the network (multicast, re-request,
snapshot, WebSocket: :class:`~tickwire.marketdata.service.MarketDataService`), pre-trade risk
with its decision log, sequencer, and the SoupBinTCP/OUCH gateway. A fresh WAL opens the day
(system events ``O``, the config's symbols, ``S``, ``Q``); ``close_day`` ends it (``M``, ``E``,
``C``, End of Session to clients).
"""

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys

from tickwire.accounts.config import load_config, parse_trade_date
from tickwire.engine.registry import ENGINE_HELP, open_engine
from tickwire.gateways.ouch.server import DEFAULT_CLIENT_TIMEOUT, DEFAULT_HEARTBEAT, GatewayServer
from tickwire.marketdata.recorder import FeedRecorder
from tickwire.marketdata.service import FeedError, MarketDataService
from tickwire.marketdata.settings import FeedSettings, add_feed_arguments, settings_from_args
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.wal import WriteAheadLog
from tickwire.sequencer.sequencer import Sequencer
from tickwire.util.loop import loop_name

__all__ = ["Venue", "serve", "serve_main", "add_serve_arguments"]

log = logging.getLogger(__name__)


class Venue:
    """Engine + WAL + feed + risk + sequencer + gateway.

    Parameters
    ----------
    config : Config
    wal_path : str
    engine : str or object
        Engine name for :func:`~tickwire.engine.registry.open_engine`, or an engine.
    feed_pcap : str, optional
        Where the feed goes (rewritten from the WAL at start).
    decision_log : str, optional
        Risk decision log (JSON lines, appended).
    fsync : str
        WAL fsync policy.
    host, port, heartbeat, client_timeout, tap
        Gateway parameters.
    feed : FeedSettings or False, optional
        The feed on the network; by default the config's ``[feed]`` table over
        :class:`FeedSettings`' defaults if the config has one, else none (``False``: none).
    trade_date : str, optional
        The trade date a new day opens with (ISO); default the config's, else today (UTC).

    Members
    -------
    marketdata : MarketDataService or None
        Its ``feed_address``, ``rerequest_address``, ``snapshot_address`` and ``ws_address``
        say where each part is once :meth:`start` returns (ports of 0 are chosen then).
    """

    def __init__(self, config, wal_path, engine="model", feed_pcap=None, decision_log=None,
                 fsync="group", host="127.0.0.1", port=0, heartbeat=DEFAULT_HEARTBEAT,
                 client_timeout=DEFAULT_CLIENT_TIMEOUT, tap=None, feed=None, trade_date=None):
        self.config = config
        self.trade_date = trade_date or config.trade_date
        if feed is None and config.feed:
            feed = FeedSettings.from_dict(config.feed)
        self.marketdata = MarketDataService(feed) if feed else None
        self.engine = open_engine(engine) if isinstance(engine, str) else engine
        self.wal = WriteAheadLog(wal_path, fsync)
        self._pcap_file = open(feed_pcap, "wb") if feed_pcap else None
        if self.marketdata is None:
            self.recorder = FeedRecorder(self._pcap_file)
        else:
            self.recorder = FeedRecorder(self._pcap_file, feed.session, [self.marketdata])
        self.book, self.feed = self.recorder.book, self.recorder.publisher
        self.risk = RiskManager(config, decision_log)
        self.sequencer = Sequencer(self.engine, self.wal, config, self.risk,
                                   listeners=[self.feed.publish])
        self.gateway = GatewayServer(self.sequencer, config, host, port, heartbeat,
                                     client_timeout, tap=tap)
        self.closed_day = False

    @property
    def packets(self):
        return self.recorder.packets

    async def start(self):
        """Recover the WAL, open the day if it is new, start listening.

        The feed's sockets open first (a port in use fails before the recovery), its packets
        rebuilt from the WAL are kept but not sent again, then it goes live.
        """
        if self.marketdata is not None:
            await self.marketdata.start()
        try:
            self.sequencer.recover()
            if self.marketdata is not None:
                self.marketdata.go_live()
            if not self.sequencer.opened:
                index = self.sequencer.open_day(trade_date=self.trade_date)
                await self.wal.durable(index)
            self._flush_feed()
            # What recovery and the imports built lives as long as the venue: out of the
            # collector's generations, so its full collections stop rescanning it.
            gc.collect()
            gc.freeze()
            await self.gateway.start()
        except BaseException:
            await self._close_marketdata()
            raise
        return self

    def _flush_feed(self):
        if self._pcap_file is not None:
            self._pcap_file.flush()

    async def close_day(self):
        """End the trading day: ``M E C`` and the feed's end of session."""
        if not self.closed_day:
            index = self.sequencer.close_day()
            await self.wal.durable(index)
            self.feed.end_of_session()
            self.closed_day = True

    async def stop(self, close_day=False):
        """Stop: optionally close the day, send End of Session, close everything."""
        if close_day and self.sequencer.down is None:
            await self.close_day()
        # Everything sequenced becomes durable and goes to its client before End of Session:
        # intake stops first, and the drain repeats while reads being answered still sequence
        # (a bounded number of times: another source may go on appending).
        self.gateway.stop_intake()
        for _ in range(64):
            records = self.wal.records
            await self.sequencer.drain()
            if self.wal.records == records:
                break
        await self.gateway.close(end_session=True)
        await self.sequencer.drain()
        await self._close_marketdata()
        await self.wal.close()
        self.risk.close()
        if self._pcap_file is not None:
            self._pcap_file.close()
        if hasattr(self.engine, "close"):
            self.engine.close()

    async def _close_marketdata(self):
        if self.marketdata is not None:
            await self.marketdata.close()

    def status(self):
        seq = self.sequencer
        return {"commands": seq.exchange.seq, "wal_records": self.wal.records,
                "trade_date": seq.trade_date,
                "open_orders": len(seq.exchange.orders), "intake": seq.down or "open",
                "sessions": sorted(self.gateway.active), "feed_packets": self.packets,
                "gateway": dict(self.gateway.stats),
                **({"feed": self.marketdata.status()} if self.marketdata else {})}


async def serve(config, wal_path, engine="model", host="127.0.0.1", port=0, fsync="group",
                feed_pcap=None, decision_log=None, heartbeat=DEFAULT_HEARTBEAT,
                client_timeout=DEFAULT_CLIENT_TIMEOUT, port_file=None, stop=None,
                close_day=False, status_interval=0, feed=None, trade_date=None):
    """Run the gateway until ``stop`` (an asyncio.Event) is set or SIGINT/SIGTERM arrives.

    Parameters
    ----------
    config : Config or str
        The config, or the path of its file.
    port_file : str, optional
        Written (atomically) with the listening port once the server is ready.
    close_day : bool
        End the trading day at shutdown (otherwise a restart continues it).
    status_interval : float
        Log the status every that many seconds (0: never).
    feed : FeedSettings or False, optional
        The feed on the network (see :class:`Venue`).
    trade_date : str, optional
        The trade date of a new day (ISO; default: the config's, else today UTC).

    Returns
    -------
    dict
        The final status.
    """
    if isinstance(config, str):
        config = load_config(config)
    venue = Venue(config, wal_path, engine, feed_pcap, decision_log, fsync, host, port,
                  heartbeat, client_timeout, feed=feed, trade_date=trade_date)
    await venue.start()
    log.info("event loop: %s", loop_name())
    if port_file:
        with open(port_file + ".tmp", "w") as f:
            f.write(str(venue.gateway.port))
        os.replace(port_file + ".tmp", port_file)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass        # not the main thread (tests serve from a thread): stop comes from `stop`
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), status_interval or 0.5)
            except asyncio.TimeoutError:
                venue._flush_feed()
                if status_interval:
                    log.info("status: %s", json.dumps(venue.status()))
    finally:
        status = venue.status()
        await venue.stop(close_day=close_day)
    return status


def add_serve_arguments(parser):
    """The ``tickwire serve`` arguments."""
    parser.add_argument("config", help="accounts/limits/symbols config (TOML or JSON)")
    parser.add_argument("--wal", default="build/serve/session.wal",
                        help="write-ahead log (recovered at start)")
    parser.add_argument("--engine", default="model", help=ENGINE_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--port", type=int, default=15000, help="listen port (0: any)")
    parser.add_argument("--fsync", choices=("record", "group", "none"), default="group",
                        help="WAL fsync policy (default: group commit)")
    parser.add_argument("--feed-pcap", help="write the ITCH feed (MoldUDP64) to this pcap")
    parser.add_argument("--decision-log", help="risk decision log (JSON lines)")
    parser.add_argument("--heartbeat", type=float, default=DEFAULT_HEARTBEAT,
                        help="server heartbeat after this many idle seconds")
    parser.add_argument("--client-timeout", type=float, default=DEFAULT_CLIENT_TIMEOUT,
                        help="drop a client silent this many seconds")
    parser.add_argument("--port-file", help="write the listening port here when ready")
    parser.add_argument("--close-day", action="store_true",
                        help="end the trading day at shutdown (M E C, End of Session)")
    parser.add_argument("--status-interval", type=float, default=0,
                        help="log the status every N seconds")
    add_feed_arguments(parser)
    add_trade_date_argument(parser)
    return parser


def add_trade_date_argument(parser):
    """``--trade-date`` (of ``tickwire serve`` and ``tickwire run``)."""
    parser.add_argument("--trade-date", type=_trade_date, metavar="YYYY-MM-DD",
                        help="the trade date a new day opens with, recorded in the journal "
                             "(default: the config's trade_date, else today UTC)")


def _trade_date(text):
    try:
        return parse_trade_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def serve_main(args):
    """``tickwire serve`` entry: ``args`` from :func:`add_serve_arguments`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.makedirs(os.path.dirname(os.path.abspath(args.wal)), exist_ok=True)
    try:
        config = load_config(args.config)
        feed = settings_from_args(args, config.feed, args.host)
    except ValueError as exc:
        print(f"tickwire serve: error: {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        status = asyncio.run(serve(
            config, args.wal, args.engine, args.host, args.port, args.fsync, args.feed_pcap,
            args.decision_log, args.heartbeat, args.client_timeout, args.port_file,
            close_day=args.close_day, status_interval=args.status_interval, feed=feed,
            trade_date=args.trade_date))
    except FeedError as exc:
        print(f"tickwire serve: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(status, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(serve_main(add_serve_arguments(argparse.ArgumentParser(
        prog="python -m tickwire.ops.serve")).parse_args()))
