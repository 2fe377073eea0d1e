"""``tickwire broker``: the broker's back office on a ``tickwire market`` directory.

``tickwire broker account ACTION ID [SYMBOL ...]`` blocks, unblocks, restricts or unrestricts
a customer's account (``accounts.json`` of the market's directory; a running market applies it
from its next request on). ``tickwire broker settle DIR`` clears and settles every venue of
the day (T+1) and appends each execution's settlement to the broker's audit trail.
``tickwire broker positions DIR`` reconciles the broker's customers' positions (its blotter)
against what clearing recorded for its firm at each venue (``tickwire clear`` and
``tickwire settle`` on ``DIR/VENUE``) and shows each customer's settled and unsettled shares.
"""

import datetime
import json
import os

from tickwire.broker.audit import append_settlements
from tickwire.broker.controls import ACTIONS, CONTROLS, ControlsError, change_control
from tickwire.accounts.config import load_config
from tickwire.broker.reconcile import CLEARING, VENUE_CONFIG, reconcile
from tickwire.clearing.calendar import CalendarError
from tickwire.clearing.clear import clear
from tickwire.clearing.files import ClearingFilesError
from tickwire.clearing.ledger.store import LedgerStoreError
from tickwire.clearing.opening import OpeningError
from tickwire.clearing.settle import SettlementError, settle
from tickwire.compliance.audit.keys import load_public_key
from tickwire.compliance.audit.trail import PUBLIC_KEY_FILE, TRAIL_FILE, read_trail_lines
from tickwire.compliance.audit.verify import verify_trail
from tickwire.compliance.job import run_compliance
from tickwire.core.money import format_dollars

__all__ = ["add_broker_arguments", "broker_account_main", "broker_positions_main",
           "broker_settle_main", "clear_and_settle", "format_trail",
           "format_venue_compliance", "reconciliation_dict", "settle_audit_trail",
           "venue_compliance"]

_ERRORS = (OSError, ValueError, ClearingFilesError, SettlementError, LedgerStoreError,
           CalendarError, OpeningError)
"""What the back office reports as a one-line error (a file, a date, a ledger)."""


def add_broker_arguments(parser):
    sub = parser.add_subparsers(dest="broker_command", required=True, metavar="COMMAND")
    p = sub.add_parser("positions", help="customers' positions reconciled against clearing",
                       description="Each customer's positions from the broker's blotter, split "
                       "into settled and unsettled by what clearing settled for the broker's "
                       "firm at each venue, and the reconciliation per venue: the trades "
                       "clearing captured are the blotter's, and after tickwire settle the "
                       "ledgers moved by the blotter's net shares and cash. Exit 1 if they "
                       "disagree.")
    p.add_argument("dir", help="the tickwire market directory (its --out, e.g. build/market)")
    p.add_argument("--db", help="the ledgers' PostgreSQL URL if tickwire settle used one")
    p.add_argument("--json", action="store_true", help="print JSON (money in 1/10000 $)")
    p.set_defaults(func=broker_positions_main)
    p = sub.add_parser("settle", help="clear and settle (T+1) every venue, then reconcile",
                       description="After a tickwire market day: tickwire clear on each "
                       "venue's journal into DIR/VENUE/clearing, tickwire settle on its T+1, "
                       "then the reconciliation of tickwire broker positions. Exit 1 if the "
                       "broker's positions disagree with clearing's.")
    p.add_argument("dir", help="the tickwire market directory (its --out, e.g. build/market)")
    p.add_argument("--db", help="PostgreSQL URL for the ledgers (default: SQLite files)")
    p.set_defaults(func=broker_settle_main)
    p = sub.add_parser("account", help="block, unblock, restrict or unrestrict an account",
                       description="Change a customer's account controls in the market's "
                       "accounts.json: block (no new orders or replaces: 403 account_blocked), "
                       "unblock, restrict SYMBOL... (orders in them: 403 restricted), "
                       "unrestrict SYMBOL..., or show them. A running tickwire market applies "
                       "the change from its next request on; it is kept across restarts.")
    p.add_argument("action", choices=ACTIONS, help="what to do")
    p.add_argument("id", help="the user name or account number (TW00000001)")
    p.add_argument("symbols", nargs="*", metavar="SYMBOL",
                   help="symbols to restrict or unrestrict")
    p.add_argument("--dir", default="build/market",
                   help="the tickwire market directory (its --out; default build/market)")
    p.set_defaults(func=broker_account_main)
    return parser


def broker_account_main(args):
    """``tickwire broker account`` entry."""
    try:
        user, control = change_control(os.path.join(args.dir, CONTROLS), args.id, args.action,
                                       args.symbols)
    except ControlsError as exc:
        print(f"tickwire broker account: {exc}")
        return 2
    print(f"{user} ({control.account_number}): "
          f"{'blocked' if control.blocked else 'not blocked'}, restricted symbols: "
          f"{', '.join(control.restricted) or 'none'}")
    return 0


def clear_and_settle(market_dir, db=None, progress=False):
    """Clear every venue of a market directory (``VENUE/clearing``) and settle it on T+1;
    return venue → (trades, settlement date)."""
    out = {}
    venues = sorted(d for d in os.listdir(market_dir)
                    if os.path.isfile(os.path.join(market_dir, d, VENUE_CONFIG)))
    if not venues:
        raise ValueError(f"{market_dir}: no venue directories (is it tickwire market's --out?)")
    for venue in venues:
        directory = os.path.join(market_dir, venue)
        summary = clear(os.path.join(directory, "session.wal"),
                        os.path.join(directory, VENUE_CONFIG), os.path.join(directory, CLEARING))
        date = datetime.date.fromisoformat(summary["settlement_date"])
        settle(os.path.join(directory, CLEARING), date, db, progress=progress)
        out[venue] = (summary["trades"], date)
    return out


def settle_audit_trail(market_dir, venues):
    """Append the settlement of each execution in the broker's audit trail
    (``MARKET_DIR/audit``) from the venues' clearing runs, load it into the hot tier and
    verify it; return ``{"records", "tree_heads", "root", "settlement_records"}``.

    Raises
    ------
    RuntimeError
        If the trail does not verify afterwards.
    """
    audit_dir = os.path.join(market_dir, "audit")
    added = append_settlements(audit_dir, {v: os.path.join(market_dir, v, CLEARING)
                                           for v in venues})
    result = verify_trail(read_trail_lines(os.path.join(audit_dir, TRAIL_FILE)),
                          load_public_key(os.path.join(audit_dir, PUBLIC_KEY_FILE)))
    if not result.ok:
        raise RuntimeError(f"the broker's audit trail does not verify: {result.message}")
    return {"dir": audit_dir, "records": result.records, "tree_heads": result.heads,
            "root": result.root, "settlement_records": added}


def venue_compliance(market_dir, venues):
    """Each venue's compliance day (:func:`~tickwire.compliance.job.run_compliance` on
    ``MARKET_DIR/VENUE``: its audit trail from its journal and clearing run, verified, the hot
    tier, CAT-style export, surveillance alerts, best-execution report); return venue → the
    summary."""
    out = {}
    for venue in venues:
        directory = os.path.join(market_dir, venue)
        out[venue] = run_compliance(directory, os.path.join(directory, "session.wal"),
                                    load_config(os.path.join(directory, VENUE_CONFIG)),
                                    plot=False)
    return out


def format_venue_compliance(venue, summary):
    """One readable line of a venue's compliance day."""
    a, alerts = summary["audit"], summary["surveillance"]["alerts"]
    return (f"  {venue}: audit {a['records']:,} records, verified, in {a['dir']}; "
            "surveillance alerts: " + ", ".join(f"{k} {v}" for k, v in alerts.items()))


def format_trail(trail):
    """The readable line of :func:`settle_audit_trail`'s summary."""
    added = trail["settlement_records"]
    return (f"audit: {trail['records']:,} records, {trail['tree_heads']} signed tree heads, "
            f"verified (root {trail['root'][:16]}…) in {trail['dir']}; settlement appended: "
            f"{added['ORDER_SETTLED']:,} executions settled, {added['SETTLEMENT_FAILED']:,} "
            "failed")


def broker_settle_main(args):
    """``tickwire broker settle`` entry."""
    try:
        cycles = clear_and_settle(args.dir, args.db, progress=not args.quiet)
        trail = settle_audit_trail(args.dir, cycles)
        r = reconcile(args.dir, db=args.db)
    except _ERRORS as exc:
        print(f"tickwire broker settle: {exc}")
        return 2
    for venue, (trades, date) in cycles.items():
        print(f"venue {venue}: {trades:,} trades cleared, settled {date}")
    print(format_trail(trail))
    print("the broker's positions " + ("reconcile with clearing's" if r.ok else
                                       "DISAGREE with clearing's: run tickwire broker positions"))
    return 0 if r.ok else 1


def reconciliation_dict(r):
    """A JSON-able dict of a :class:`~tickwire.broker.reconcile.Reconciliation`."""
    users = {}
    for user, held in sorted(r.positions.items()):
        users[user] = {"positions": {s: {"qty": q, "settled_qty": r.settled[user][s],
                                         "unsettled_qty": q - r.settled[user][s]}
                                     for s, q in sorted(held.items())},
                       "cash_moved": r.cash[user], "settled_cash": r.settled_cash[user]}
    venues = {name: {"cleared": v.cleared, "settled": v.settled,
                     "broker_shares": v.broker_shares, "broker_cash": v.broker_cash,
                     "captured_shares": v.captured_shares, "settled_shares": v.settled_shares,
                     "settled_cash": v.settled_cash, "unsettled": v.unsettled,
                     "problems": v.problems}
              for name, v in sorted(r.venues.items())}
    return {"reconciled": r.ok, "users": users, "venues": venues}


def broker_positions_main(args):
    """``tickwire broker positions`` entry."""
    try:
        r = reconcile(args.dir, db=args.db)
    except _ERRORS as exc:
        print(f"tickwire broker positions: {exc}")
        return 2
    if args.json:
        print(json.dumps(reconciliation_dict(r), indent=2))
        return 0 if r.ok else 1
    for user, held in sorted(r.positions.items()):
        print(f"{user}: cash moved ${format_dollars(r.cash[user])} (settled "
              f"${format_dollars(r.settled_cash[user])})")
        for symbol, qty in sorted(held.items()):
            done = r.settled[user][symbol]
            print(f"  {symbol:<6} {qty:+,} shares: {done:+,} settled, {qty - done:+,} unsettled")
    for name, v in sorted(r.venues.items()):
        state = "settled" if v.settled else "cleared" if v.cleared else "not cleared"
        line = ", ".join(f"{s} {q:+,}" for s, q in sorted(v.broker_shares.items()))
        problems = v.problems
        print(f"venue {name} ({state}): blotter {line}; "
              + ("; ".join(problems) if problems else "reconciled"
                 + (f", unsettled {', '.join(v.unsettled)}" if v.unsettled else "")))
    return 0 if r.ok else 1
