"""The broker's positions reconciled against clearing's: trade capture, then settlement.

The broker's blotter says what it bought and sold for each customer at each venue. Clearing
(:mod:`tickwire.clearing`) captures the same trades from each venue's journal, nets them and
settles them on T+1 into its ledgers. For each venue the broker was a member of:

- *captured*: the trades clearing captured for the broker's firm are exactly the blotter's
  (match number, side, shares, price), once ``tickwire clear`` has run on the venue;
- *settled*: once ``tickwire settle`` has run, the broker's settled holdings in the ledgers
  moved from their opening balances by exactly the blotter's net shares per symbol (and net
  cash, once every symbol has settled); a symbol still unsettled (not yet due, or failed)
  is reported as such.

A customer's position is settled in a symbol where every venue it traded it at has settled
the broker's instruction for it. Amounts are integers in 1/10000 $.
"""

import os
from collections import defaultdict
from dataclasses import dataclass, field

from tickwire.accounts.config import load_config
from tickwire.broker.audit import BROKER_FIRM
from tickwire.broker.blotter import blotter_path, read_blotter
from tickwire.clearing.capture import capture_session
from tickwire.clearing.opening import read_opening
from tickwire.clearing.positions import build_positions

__all__ = ["CLEARING", "VENUE_CONFIG", "Reconciliation", "VenueCheck", "reconcile"]

VENUE_CONFIG = "venue.json"
CLEARING = "clearing"


@dataclass
class VenueCheck:
    """One venue: what the blotter and clearing say about the broker's firm there."""
    venue: str
    cleared: bool = False
    settled: bool = False                               # the ledgers exist (settle ran)
    broker_shares: dict = field(default_factory=dict)   # symbol -> net shares (blotter)
    broker_cash: int = 0
    captured_shares: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)         # blotter fills clearing lacks
    extra: list = field(default_factory=list)           # clearing trades the blotter lacks
    settled_shares: dict = field(default_factory=dict)  # symbol -> ledger moved since opening
    settled_cash: int | None = None
    unsettled: list = field(default_factory=list)       # symbols not settled yet

    @property
    def problems(self):
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} fills of the blotter are not in clearing")
        if self.extra:
            out.append(f"{len(self.extra)} trades in clearing are not in the blotter")
        for symbol, qty in sorted(self.settled_shares.items()):
            want = self.broker_shares.get(symbol, 0)
            if symbol not in self.unsettled and qty != want:
                out.append(f"{symbol}: settled {qty:+,} shares, the blotter says {want:+,}")
        if self.settled_cash is not None and self.settled_cash != self.broker_cash:
            out.append(f"settled cash moved {self.settled_cash:+,}, the blotter says "
                       f"{self.broker_cash:+,} (1/10000 $)")
        return out


@dataclass
class Reconciliation:
    """Every venue's check and every customer's positions (symbol → shares)."""
    venues: dict                    # venue -> VenueCheck
    positions: dict                 # user -> symbol -> shares
    settled: dict                   # user -> symbol -> settled shares
    cash: dict                      # user -> cash moved by trades
    settled_cash: dict              # user -> of it, settled

    @property
    def ok(self):
        return not any(v.problems for v in self.venues.values())


def reconcile(market_dir, firm=BROKER_FIRM, db=None):
    """Reconcile the blotter of ``market_dir`` (a ``tickwire market`` directory) against
    each venue's clearing (``VENUE/clearing``, written by ``tickwire clear``/``settle``).

    Raises
    ------
    FileNotFoundError, ValueError
        No blotter, or a malformed one.
    """
    executions = read_blotter(blotter_path(market_dir))
    venues = {}
    for e in executions:
        check = venues.setdefault(e.venue, VenueCheck(e.venue))
        check.broker_shares[e.symbol] = check.broker_shares.get(e.symbol, 0) + e.signed_qty
        check.broker_cash += e.cash
    for name, check in venues.items():
        _check_venue(check, os.path.join(market_dir, name), firm, db,
                     [e for e in executions if e.venue == name])
    positions, settled = defaultdict(dict), defaultdict(dict)
    cash, settled_cash = defaultdict(int), defaultdict(int)
    for e in executions:
        done = venues[e.venue].settled and e.symbol not in venues[e.venue].unsettled
        positions[e.user][e.symbol] = positions[e.user].get(e.symbol, 0) + e.signed_qty
        settled[e.user].setdefault(e.symbol, 0)
        cash[e.user] += e.cash
        settled[e.user][e.symbol] += e.signed_qty if done else 0
        settled_cash[e.user] += e.cash if done else 0
    return Reconciliation(venues, dict(positions), dict(settled), dict(cash),
                          dict(settled_cash))


def _check_venue(check, directory, firm, db, executions):
    config_path = os.path.join(directory, VENUE_CONFIG)
    if not os.path.isfile(os.path.join(directory, CLEARING, "clearing.json")):
        return
    check.cleared = True
    config = load_config(config_path)
    _, trades = capture_session(os.path.join(directory, "session.wal"), config)
    ours = {(e.match, e.side, e.qty, e.price) for e in executions}
    theirs = {(t.match, side, t.qty, t.price) for t in trades
              for side, member in (("buy", t.buyer), ("sell", t.seller)) if member == firm}
    check.missing, check.extra = sorted(ours - theirs), sorted(theirs - ours)
    for t in trades:
        for member, qty in ((t.buyer, t.qty), (t.seller, -t.qty)):
            if member == firm:
                check.captured_shares[t.symbol] = check.captured_shares.get(t.symbol, 0) + qty
    if not os.path.exists(os.path.join(directory, CLEARING, "ccp.db")):
        return
    check.settled = True
    member = build_positions(directory, db)[firm]
    opening = read_opening(config_path)[0][firm]
    check.unsettled = sorted(member.unsettled_shares)
    check.settled_shares = {s: member.settled_shares.get(s, 0) - opening.shares.get(s, 0)
                            for s in check.broker_shares}
    if not check.unsettled:
        check.settled_cash = member.settled_cash - opening.cash
