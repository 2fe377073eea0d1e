"""The ``tickwire`` command line."""

import argparse
import json
import logging
import sys
from pathlib import Path

from tickwire.accounts.config import make_config, parse_config, write_config
from tickwire.bench.runner import benchmarks, run_benchmarks
from tickwire.clearing.cli import (
    add_clear_arguments,
    add_positions_arguments,
    add_settle_arguments,
    clear_main,
    positions_main,
    settle_main,
)
from tickwire.clearing.opening import default_opening, opening_dict, parse_balance_spec
from tickwire.compliance.audit.cli import add_audit_arguments
from tickwire.core.money import format_price
from tickwire.engine.registry import ENGINE_HELP, EngineSpecError
from tickwire.engine.serial import LinkError
from tickwire.marketdata.cli import add_dump_arguments, add_watch_arguments, feed_dump, feed_watch
from tickwire.offline.commands import CommandFileError, write_command_file
from tickwire.offline.gen import generate
from tickwire.offline.replay import FeedMismatch, replay
from tickwire.ops.broker_day import add_broker_day_arguments, broker_day_main
from tickwire.ops.market import add_market_arguments, market_main
from tickwire.ops.market_admin import add_broker_arguments
from tickwire.ops.run_job import add_run_arguments, run_main
from tickwire.ops.serve import add_serve_arguments, serve_main
from tickwire.ops.surveil import (
    add_bestex_arguments,
    add_surveil_arguments,
    bestex_main,
    surveil_main,
)
from tickwire.protocol.link import ModelParams

__all__ = ["build_parser", "main"]

log = logging.getLogger("tickwire")


def _replay(args):
    params = capacity(args)
    try:
        summary = replay(args.commands, engine=args.engine, pcap_path=args.pcap,
                         reports_path=args.reports, params=params,
                         show_progress=not args.quiet)
    except CommandFileError as exc:
        print(f"tickwire replay: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"tickwire replay: {exc.filename}: no such file", file=sys.stderr)
        return 2
    except EngineSpecError as exc:
        print(f"tickwire replay: --engine {args.engine}: {exc}", file=sys.stderr)
        return 2
    except FeedMismatch as exc:
        print(f"tickwire replay: {exc}", file=sys.stderr)
        return 1
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
    link = summary.get("link")
    log.info("replayed %d commands: %d trades, feed %d messages in %d packets%s%s%s%s",
             summary["commands"], summary["trades"], summary["feed"]["messages"],
             summary["feed"]["packets"],
             "; the board's own feed packets match the host's encoding"
             if "end_of_session" in summary["feed"] else "",
             f"; link: {link['retransmits']} resends, {link['naks']} NAKs" if link else "",
             f", pcap {args.pcap}" if args.pcap else "",
             f", reports {args.reports}" if args.reports else "")
    return 0


def _gen(args):
    rows = generate(args.orders, seed=args.seed, symbols=args.symbols, firms=args.firms,
                    show_progress=not args.quiet and args.output != "-")
    write_command_file("/dev/stdout" if args.output == "-" else args.output, rows)
    if args.output != "-":
        log.info("wrote %d rows (%d orders, %d symbols, seed %d) to %s", len(rows),
                 args.orders, args.symbols, args.seed, args.output)
    if args.venue:
        _gen_venue(args, rows)
    return 0


def _gen_venue(args, rows):
    """The day's venue config: one account per firm (``u`` + firm number, the given password),
    the symbols at their reference prices, and every firm's opening balances (the last firm
    short, as in the main job)."""
    firms = sorted({r.firm for r in rows if r.firm})
    symbols = {r.symbol: format_price(r.price) for r in rows if r.action == "symbol"}
    data = make_config({f"u{firm[1:]}": {"firm": firm, "password": args.password}
                        for firm in firms}, symbols=symbols)
    data["members"] = {firm: opening_dict(b)
                       for firm, b in default_opening(firms, sorted(symbols)).items()}
    write_config(args.venue, data)
    log.info("wrote %s: %d accounts, %d symbols, opening balances", args.venue, len(firms),
             len(symbols))


def _config(args):
    accounts, symbols = {}, {}
    for spec in args.account:
        try:
            user, firm, password = spec.split(":", 2)
        except ValueError:
            print(f"tickwire config: --account {spec!r} is not USER:FIRM:PASSWORD",
                  file=sys.stderr)
            return 2
        accounts[user] = {"firm": firm, "password": password}
    for spec in args.symbol:
        name, _, price = spec.partition("=")
        symbols[name] = price                   # a decimal string, parsed exactly
    try:
        data = make_config(accounts, symbols=symbols)
        parse_config(data)
        members = dict(parse_balance_spec(spec) for spec in args.balance)
    except ValueError as exc:
        print(f"tickwire config: {exc}", file=sys.stderr)
        return 2
    if members:
        data["members"] = members
    write_config(args.output, data)
    log.info("wrote %s: %d accounts (passwords stored as salted scrypt hashes), %d symbols, "
             "%d members' opening balances", args.output, len(accounts), len(symbols),
             len(members))
    return 0


def _run(args):
    return broker_day_main(args) if args.broker else run_main(args)


def _bench(args):
    run_benchmarks(args.only or None, out=args.out)
    return 0


_CAPACITY = ("max_orders", "max_symbols", "band_ticks", "max_qty")


def _add_capacity_arguments(parser):
    """The engine's capacity (the gateware's elaboration parameters; a smaller engine builds and
    simulates faster under cocotb). Left out: the engine's own (``ModelParams`` defaults; a board
    reports its own)."""
    d = ModelParams()
    group = parser.add_argument_group("engine capacity (default: the engine's own)")
    group.add_argument("--max-orders", type=int,
                       help=f"resting orders, all symbols (model default {d.max_orders})")
    group.add_argument("--max-symbols", type=int,
                       help=f"symbols (model default {d.max_symbols})")
    group.add_argument("--band-ticks", type=int,
                       help=f"price band per symbol in ticks (model default {d.band_ticks})")
    group.add_argument("--max-qty", type=int,
                       help=f"largest order in shares (model default {d.max_qty})")


def capacity(args):
    """The capacity asked for on the command line, or ``None`` if none of it was given (an
    explicit value equal to a default still counts as given)."""
    given = {name: getattr(args, name) for name in _CAPACITY if getattr(args, name) is not None}
    return ModelParams(**given) if given else None


def _check_gen(parser, args):
    if args.command == "gen" and args.venue and not args.password:
        parser.error("gen --venue needs --password (the accounts' password)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tickwire",
        description="An electronic exchange on an FPGA: matching engine, ITCH 5.0 feed, host.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("replay", help="play a command file; write the feed pcap and reports",
                       description="Play a command file (CSV, columns in the README) into an "
                       "engine; write the feed as MoldUDP64/UDP/IPv4/Ethernet frames in a pcap "
                       "and the private execution reports as JSON lines. The file is checked "
                       "whole first; a malformed row is reported with its line number and "
                       "nothing is written.")
    p.add_argument("commands", help="command file (CSV)")
    p.add_argument("--engine", default="model", help=ENGINE_HELP)
    p.add_argument("--pcap", help="write the feed here")
    p.add_argument("--reports", help="write execution reports here (JSON lines)")
    p.add_argument("--summary", help="write the session summary here (JSON)")
    _add_capacity_arguments(p)
    p.set_defaults(func=_replay)

    p = sub.add_parser("gen", help="write a realistic random command file",
                       description="Generate a command file: agents quoting and trading around "
                       "a moving mid, cancels, replaces, market/IOC/FOK, min-qty, odd lots, "
                       "self-trades, halts, and a market-open burst.")
    p.add_argument("--orders", type=int, default=10_000, help="order requests (default 10000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--symbols", type=int, default=4, help="symbols (default 4)")
    p.add_argument("--firms", type=int, default=16, help="member firms (default 16)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--venue", metavar="VENUE.json",
                   help="also write a venue config for the day: an account per firm (u00, "
                   "u01, ...; password --password), the symbols, opening balances")
    p.add_argument("--password", help="the accounts' password in --venue")
    p.set_defaults(func=_gen)

    p = sub.add_parser("run", help="the main job: a full simulated trading day",
                       description="The main job: start the gateway (SoupBinTCP/OUCH), risk, "
                       "sequencer with its write-ahead log and the engine; connect simulated "
                       "firms over loopback TCP and play a generated day with a market-open "
                       "burst; report orders, fills, rejects, latency percentiles, top of book "
                       "and positions (run.json, run.png). With --broker: retail clients trade "
                       "through the broker's API across several venues, and the day reports "
                       "routing quality (broker.json).")
    add_run_arguments(p)
    add_broker_day_arguments(p)
    p.set_defaults(func=_run)

    p = sub.add_parser("serve", help="run the gateway for real clients",
                       description="Run the order-entry gateway (SoupBinTCP 3.0 / OUCH 4.2) "
                       "with risk, sequencer, write-ahead log and engine until SIGINT/SIGTERM.")
    add_serve_arguments(p)
    p.set_defaults(func=serve_main)

    p = sub.add_parser("market", help="a local market: venues, market makers, NBBO, broker API",
                       description="Start several venues (each its own book, OUCH gateway and "
                       "feed) with market makers quoting every symbol at slightly different "
                       "prices, the consolidated quote (NBBO) from their ITCH feeds, and the "
                       "broker: a retail REST/WebSocket API shaped like Alpaca's, routing each "
                       "order to the best venue. Prints the API's address and a demo login; "
                       "runs until Ctrl-C.")
    add_market_arguments(p)
    p.set_defaults(func=market_main)

    p = sub.add_parser("broker", help="the broker's back office: account controls, "
                       "positions against clearing",
                       description="Back-office commands on a tickwire market directory.")
    add_broker_arguments(p)

    p = sub.add_parser("clear", help="post-trade: capture trades from a journal, novate, net",
                       description="Clear one session: replay its journal into trades (one per "
                       "match), novate each to the central counterparty, net them per member "
                       "and symbol (CNS), and write trades.csv, obligations.csv, netting.json "
                       "and clearing.json into --out. The settlement date is T+1 (or T+2) on "
                       "the NYSE business calendar.")
    add_clear_arguments(p)
    p.set_defaults(func=clear_main)

    p = sub.add_parser("settle", help="post-trade: the T+1 DVP settlement cycle of a date",
                       description="Settle a cleared day (a tickwire clear directory) on a "
                       "date: DVP of every net obligation due, as a two-phase commit over the "
                       "cash ledger and the securities ledger coordinated by the CCP; fails "
                       "are recorded and retried on later dates. Writes DIR/settlement.json.")
    add_settle_arguments(p)
    p.set_defaults(func=settle_main)

    p = sub.add_parser("positions", help="post-trade: positions, cash and buying power per "
                       "member and account",
                       description="The positions read model of a main-job directory: per "
                       "member the settled cash and shares (the ledgers; before the first "
                       "settle, the opening balances), the unsettled ones (the journal's trades "
                       "whose instructions have not settled, and earlier days' open fails) and "
                       "the buying power; per account its trades of the day.")
    add_positions_arguments(p)
    p.set_defaults(func=positions_main)

    p = sub.add_parser("config", help="write a gateway config (accounts, symbols)",
                       description="Write a config for tickwire serve: accounts with their "
                       "firms (passwords stored as salted scrypt hashes) and the symbols "
                       "declared at the open. Risk limits can be added to the file by hand "
                       "(see host/tickwire/accounts/config.py).")
    p.add_argument("--account", action="append", default=[], required=True,
                   metavar="USER:FIRM:PASSWORD", help="a login (repeatable)")
    p.add_argument("--symbol", action="append", default=[], metavar="NAME=PRICE",
                   help="a symbol and its reference price in $ (repeatable)")
    p.add_argument("--balance", action="append", default=[],
                   metavar="FIRM:CASH[:SYMBOL=SHARES,...]",
                   help="a member firm's opening balances for settlement: cash in $ at the "
                   "settlement bank, shares at the depository (repeatable)")
    p.add_argument("-o", "--output", default="venue.json", help="config file (venue.json)")
    p.set_defaults(func=_config)

    feed = sub.add_parser("feed", help="market data: watch a live book, dump the feed",
                          description="Subscribe to the MoldUDP64 multicast feed (with gap "
                          "recovery) or read a pcap.")
    feed_sub = feed.add_subparsers(dest="feed_command", required=True, metavar="SUBCOMMAND")
    p = feed_sub.add_parser("watch", help="a live text book of one symbol")
    add_watch_arguments(p)
    p.set_defaults(func=feed_watch)
    p = feed_sub.add_parser("dump", help="feed messages as JSON lines (live or from a pcap)")
    add_dump_arguments(p)
    p.set_defaults(func=feed_dump)

    p = sub.add_parser("surveil", help="market-abuse alerts of a day (JSON lines)",
                       description="Run the surveillance detectors (spoofing, layering, wash "
                       "trades across firms with a common beneficial owner, order-to-trade "
                       "ratio) over a run directory's journal or a command file replayed "
                       "through the reference model; one alert per line with its evidence.")
    add_surveil_arguments(p)
    p.set_defaults(func=surveil_main)

    p = sub.add_parser("bestex", help="best execution: a Rule 605-style report (CSV, plot)",
                       description="Measure every order against the venue's quote at its "
                       "arrival (price improvement, effective spread, fill rate, time to "
                       "fill) and write a Rule 605-style report per symbol, order-size bucket "
                       "and order category.")
    add_bestex_arguments(p)
    p.set_defaults(func=bestex_main)

    p = sub.add_parser("audit", help="the audit trail: export, verify, prove, query",
                       description="The compliance audit trail (RFC 9162 Merkle tree, Ed25519 "
                       "signed tree heads) that the main job writes into build/run/audit/.")
    add_audit_arguments(p)

    p = sub.add_parser("bench", help="run the benchmarks; print a table, write JSON")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this benchmark (repeatable): " + ", ".join(benchmarks()))
    p.add_argument("--out", default="build/bench.json", help="JSON output (build/bench.json)")
    p.set_defaults(func=_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_gen(parser, args)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except Exception as exc:
        link = _link_failure(exc)
        if link is None:
            raise
        # A link to a board failed (LinkDown, LinkCorrupted, BookMismatch, …): the message says
        # what happened and what to check; outputs are written whole or not at all.
        print(f"tickwire {args.command}: {link}", file=sys.stderr)
        return 1


def _link_failure(exc):
    """The :class:`LinkError` behind ``exc`` (the exchange front reports an engine that raised
    as ``EngineFailure`` from it), or ``None``."""
    while exc is not None and not isinstance(exc, LinkError):
        exc = exc.__cause__
    return exc


if __name__ == "__main__":
    sys.exit(main())
