"""The post-trade commands: ``tickwire clear``, ``tickwire settle``.

Each failure a user can cause (a journal of another venue, a date that is not a business day,
a second run, an unreachable database, a member without opening balances) ends with one line
on stderr saying what is wrong and exit status 2, and nothing half-written.
"""

import argparse
import datetime as dt
import json
import sys

from tickwire.clearing.buyin import parse_venue
from tickwire.clearing.calendar import CYCLES, CalendarError
from tickwire.clearing.capture import CaptureError
from tickwire.clearing.clear import clear
from tickwire.clearing.files import ClearingFilesError
from tickwire.clearing.ledger.store import LedgerStoreError
from tickwire.clearing.opening import OpeningError
from tickwire.clearing.positions import build_positions, positions_dict
from tickwire.clearing.settle import DEFAULT_BATCH, SettlementError, settle
from tickwire.core.money import format_price

__all__ = ["add_clear_arguments", "add_settle_arguments", "clear_main", "settle_main"]

_USER_ERRORS = (ConnectionError, CaptureError, CalendarError, OpeningError, ClearingFilesError, SettlementError,
                LedgerStoreError, OSError, ValueError)


def iso_date(text):
    """argparse type: ``YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def positive_int(text):
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ≥ 1")
    return value


def add_clear_arguments(parser):
    parser.add_argument("wal", help="the session's journal (the sequencer's write-ahead log)")
    parser.add_argument("--config", required=True,
                        help="the venue config the session ran under (accounts → member firms; "
                        "opening balances for settlement)")
    parser.add_argument("--out", required=True,
                        help="directory for trades.csv, obligations.csv, netting.json, "
                        "clearing.json (and days/DATE/); one holding earlier trading days "
                        "keeps them: the new day joins their ledgers and open fails")
    parser.add_argument("--trade-date", type=iso_date,
                        help="YYYY-MM-DD; overrides the date the journal recorded at the open")
    parser.add_argument("--cycle", type=int, choices=CYCLES, default=1,
                        help="settlement cycle: T+1 (default) or T+2 business days (XNYS)")
    return parser


def _fail(command, exc):
    print(f"tickwire {command}: {exc}", file=sys.stderr)
    return 2


def clear_main(args):
    """``tickwire clear`` entry."""
    try:
        summary = clear(args.wal, args.config, args.out, args.trade_date, args.cycle)
    except _USER_ERRORS as exc:
        return _fail("clear", exc)
    if not getattr(args, "quiet", False):
        print(json.dumps(summary, indent=2))
    return 0


def add_settle_arguments(parser):
    parser.add_argument("dir", help="a directory written by tickwire clear (every day in it "
                        "due by --date is settled)")
    parser.add_argument("--date", type=iso_date, required=True,
                        help="settlement date YYYY-MM-DD (an NYSE business day; later dates "
                        "retry the open fails)")
    parser.add_argument("--db", help="PostgreSQL URL for the two ledgers (postgresql://USER:"
                        "PASSWORD@HOST:PORT/DB; schemas tw_cash and tw_securities); default: "
                        "SQLite files cash.db and securities.db in DIR")
    parser.add_argument("--buy-in", metavar="HOST:PORT",
                        help="the venue's OUCH gateway, where the CCP buys in the fails to "
                        "deliver past their close-out date (S+1); without it they are listed")
    parser.add_argument("--ccp-login", metavar="USER:PASSWORD",
                        help="the CCP's own account at the venue (its firm is CCP)")
    parser.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH,
                        help=f"instructions per DVP batch (default {DEFAULT_BATCH})")
    return parser


def settle_main(args):
    """``tickwire settle`` entry."""
    quiet = getattr(args, "quiet", False)
    try:
        venue = None
        if args.buy_in or args.ccp_login:
            venue = parse_venue(args.buy_in or "", args.ccp_login or "")
        summary = settle(args.dir, args.date, args.db, args.batch, progress=not quiet,
                         buy_in_venue=venue)
    except _USER_ERRORS as exc:
        return _fail("settle", exc)
    if not quiet:
        print(json.dumps(summary["totals"]))
    return 0


def add_positions_arguments(parser):
    parser.add_argument("run_dir", help="a main-job directory (session.wal, venue.json, "
                        "clearing/), e.g. build/run")
    parser.add_argument("--db", help="the ledgers' PostgreSQL URL if settle used one")
    parser.add_argument("--json", action="store_true",
                        help="print the model as JSON (money in 1/10000 $)")
    return parser


def _shares(held):
    return " ".join(f"{s} {q:+,}" for s, q in held.items() if q) or "-"


def positions_main(args):
    """``tickwire positions`` entry."""
    try:
        members = build_positions(args.run_dir, args.db)
    except _USER_ERRORS as exc:
        return _fail("positions", exc)
    if args.json:
        print(json.dumps(positions_dict(members), indent=2))
        return 0
    for name, m in sorted(members.items()):
        print(f"{name}: settled cash ${format_price(m.settled_cash)}, unsettled cash "
              f"${format_price(m.unsettled_cash)}, buying power ${format_price(m.buying_power)}")
        print(f"  settled shares    {_shares(m.settled_shares)}")
        print(f"  unsettled shares  {_shares(m.unsettled_shares)}")
        for a in sorted(m.accounts.values(), key=lambda a: a.account):
            print(f"  account {a.account}: today {_shares(a.shares)}, cash "
                  f"${format_price(a.cash)}; unsettled {_shares(a.unsettled_shares)}, cash "
                  f"${format_price(a.unsettled_cash)}")
    return 0
