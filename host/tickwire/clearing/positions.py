"""The positions read model (CQRS): per member and account, what it holds and what it may spend.

Built from the two sources of truth and nothing else: the journal (the trades of the day,
per account, through :mod:`tickwire.clearing.capture`) and the settlement side (the ledgers'
balances per member and the coordinator log's instructions). A trade is *unsettled* until the
instruction of its member and symbol has settled; *settled* holdings are the ledgers'.

Per member: settled cash and shares (the ledgers; before the first settlement cycle, the
opening balances the ledgers will be funded with), unsettled shares and cash (its accounts'
trades whose instructions have not settled, and what earlier trading days of the clearing
directory left open: fails carried across days), and buying power = settled cash + unsettled
cash (what a net buyer owes is already spent). Per account: its trades' shares and cash, and
which of them are still unsettled. The broker reads this model.
"""

import os
from collections import defaultdict
from dataclasses import dataclass, field

from tickwire.accounts.config import load_config
from tickwire.clearing.books import position
from tickwire.clearing.capture import capture_session
from tickwire.clearing.coordinator_log import CoordinatorLog
from tickwire.clearing.files import (
    ClearingFilesError,
    cleared_days,
    read_clearing,
    read_obligations,
)
from tickwire.clearing.records import CASH
from tickwire.clearing.settle import open_ledgers

__all__ = ["AccountPositions", "MemberPositions", "build_positions", "positions_dict"]


@dataclass
class AccountPositions:
    account: str
    member: str
    shares: dict = field(default_factory=dict)          # symbol -> shares bought − sold today
    cash: int = 0                                        # 1/10000 $: sales − purchases today
    unsettled_shares: dict = field(default_factory=dict)
    unsettled_cash: int = 0


@dataclass
class MemberPositions:
    member: str
    settled_cash: int = 0
    settled_shares: dict = field(default_factory=dict)
    unsettled_cash: int = 0
    unsettled_shares: dict = field(default_factory=dict)
    accounts: dict = field(default_factory=dict)         # account -> AccountPositions

    @property
    def buying_power(self):
        return self.settled_cash + self.unsettled_cash


_DONE = ("settled", "closed_out", "defaulted")     # nothing left to settle


def _coordinator(clearing_dir):
    """(id → :class:`Instruction` of the CCP's coordinator log, the date (ISO) of the last
    settlement cycle run to its end or None): ({}, None) before ``settle`` first ran."""
    path = os.path.join(clearing_dir, "ccp.db")
    if not os.path.exists(path):
        return {}, None
    log = CoordinatorLog(path)
    try:
        return {i.id: i for i in log.instructions()}, log.last_cycle()
    finally:
        log.close()


def _carried(clearing_dir, latest, logged):
    """[(member, symbol, qty, cash)] the trading days before ``latest`` in ``clearing_dir``
    left unsettled: their net obligations as the log has them now (after a split, a partial
    buy-in), unless settled, bought in or defaulted."""
    out = []
    for where, day in cleared_days(clearing_dir):
        if day.trade_date >= latest:
            continue
        due = day.settlement_date.isoformat()
        for p in read_obligations(where):
            if p.symbol == CASH or not (p.qty or p.cash):
                continue
            i = logged.get(f"{due}:{p.member}:{p.symbol}")
            if i is None:
                out.append((p.member, p.symbol, p.qty, p.cash))
            elif i.phase not in _DONE:
                out.append((i.member, i.symbol, i.qty, i.cash))
    return out


def _opening(clearing_dir):
    """member → OpeningBalance, as of the first day it appears in the directory."""
    opening = {}
    for _, day in reversed(cleared_days(clearing_dir)):
        opening.update(day.opening)
    return opening


def build_positions(run_dir, db=None, trade_date=None):
    """member → :class:`MemberPositions` of a main-job directory (``session.wal``,
    ``venue.json``, ``clearing/``)."""
    clearing_dir = os.path.join(run_dir, "clearing")
    if not os.path.isfile(os.path.join(clearing_dir, "clearing.json")):
        raise ClearingFilesError(f"{run_dir}: no clearing/ (run tickwire run, or tickwire clear "
                                 f"--out {clearing_dir})")
    info = read_clearing(clearing_dir)
    recorded_date = info.trade_date
    config = load_config(os.path.join(run_dir, "venue.json"))
    _, trades = capture_session(os.path.join(run_dir, "session.wal"), config,
                                trade_date or recorded_date)
    logged, last_cycle = _coordinator(clearing_dir)
    due = info.settlement_date.isoformat()
    settled = {(i.member, i.symbol) for i in logged.values()
               if i.due == due and i.phase == "settled"}
    if last_cycle is not None and last_cycle >= due:   # netted flat: nothing to settle
        settled |= {(p.member, p.symbol) for p in read_obligations(clearing_dir)
                    if not (p.qty or p.cash)}
    members = {a.firm: MemberPositions(a.firm) for a in config.accounts.values()}
    for t in trades:
        for member, account, qty, cash in ((t.buyer, t.buyer_account, t.qty, -t.value),
                                           (t.seller, t.seller_account, -t.qty, t.value)):
            m = members[member]
            a = m.accounts.setdefault(account, AccountPositions(account, member))
            a.shares[t.symbol] = a.shares.get(t.symbol, 0) + qty
            a.cash += cash
            if (member, t.symbol) not in settled:
                a.unsettled_shares[t.symbol] = a.unsettled_shares.get(t.symbol, 0) + qty
                a.unsettled_cash += cash
                m.unsettled_shares[t.symbol] = m.unsettled_shares.get(t.symbol, 0) + qty
                m.unsettled_cash += cash
    for member, symbol, qty, cash in _carried(clearing_dir, info.trade_date, logged):
        m = members.setdefault(member, MemberPositions(member))
        m.unsettled_shares[symbol] = m.unsettled_shares.get(symbol, 0) + qty
        m.unsettled_cash += cash
    if not logged and last_cycle is None:   # no cycle yet: the ledgers will open with these
        for name, balance in _opening(clearing_dir).items():
            if name in members:
                members[name].settled_cash = balance.cash
                members[name].settled_shares = dict(sorted(balance.shares.items()))
    else:
        cash_ledger, securities = open_ledgers(clearing_dir, db)
        try:
            cash = cash_ledger.balances()
            shares = securities.balances()
        finally:
            cash_ledger.store.dispose()
            securities.store.dispose()
        symbols = defaultdict(set)
        for key in shares:
            owner, _, symbol = key.partition(":")
            symbols[owner].add(symbol)
        for name, m in members.items():
            if name in cash:
                m.settled_cash = cash[name].posted
            m.settled_shares = {s: shares[position(name, s)].posted
                                for s in sorted(symbols.get(name, ()))}
    return members


def positions_dict(members):
    """A JSON-able dict of the model (money as integers in 1/10000 $)."""
    out = {}
    for name, m in sorted(members.items()):
        out[name] = {"settled_cash": m.settled_cash, "settled_shares": m.settled_shares,
                     "unsettled_cash": m.unsettled_cash,
                     "unsettled_shares": dict(sorted(m.unsettled_shares.items())),
                     "buying_power": m.buying_power,
                     "accounts": {a.account: {"shares": dict(sorted(a.shares.items())),
                                              "cash": a.cash,
                                              "unsettled_shares": dict(sorted(
                                                  a.unsettled_shares.items())),
                                              "unsettled_cash": a.unsettled_cash}
                                  for a in sorted(m.accounts.values(),
                                                  key=lambda a: a.account)}}
    return out
