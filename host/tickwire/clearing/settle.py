"""``tickwire settle``: the settlement cycle of one date over the two ledgers.

:func:`settle` opens the cash ledger and the securities ledger (SQLite files in the clearing
directory, or PostgreSQL schemas by ``--db``) and the CCP's coordinator log, funds the members'
opening balances (once), turns the netted obligations of every trading day in the directory
that is due by that date into DVP instructions (one per settlement date, member and symbol;
registering them again is a no-op), finishes whatever a crash left, and settles the open
instructions in batches: deliveries to the CCP first, so the shares the CCP hands on have
arrived. Instructions that fail stay open and are retried on each following settlement date
(aged in business days). The result is ``settlement.json``.
"""

import datetime as dt
import json
import logging
import os
from collections import defaultdict

from tickwire.clearing.books import cash_accounts, opening_transfers, security_accounts
from tickwire.clearing.calendar import CalendarError, business_days_between, is_business_day
from tickwire.clearing.closeout import close_out
from tickwire.clearing.coordinator_log import CoordinatorLog, Instruction
from tickwire.clearing.corporate_settle import apply_actions
from tickwire.clearing.dvp import Dvp, failpoint
from tickwire.clearing.fails import close_out_date, default_members, due_for_close_out
from tickwire.clearing.files import cleared_days, read_obligations, read_trades, write_atomic
from tickwire.clearing.ledger.ledger import Ledger
from tickwire.clearing.ledger.records import OK_RESULTS
from tickwire.clearing.ledger.store import open_store
from tickwire.clearing.opening import OpeningError
from tickwire.clearing.records import CASH, CCP
from tickwire.core.money import format_price
from tickwire.util.progress import progress as progress_bar

__all__ = ["DEFAULT_BATCH", "AlreadySettled", "SettlementError", "open_ledgers", "settle"]

log = logging.getLogger(__name__)

DEFAULT_BATCH = 1000
DEFAULT_NAMESPACE = "tw"


class SettlementError(ValueError):
    """The settlement cannot run (a date, a file, a member without balances)."""


class AlreadySettled(SettlementError):
    """The cycle of that date has run to its end already."""


def open_ledgers(out_dir, db=None, namespace=DEFAULT_NAMESPACE):
    """(cash Ledger, securities Ledger): both opened before anything is written."""
    stores = [open_store(name, directory=out_dir, url=db, namespace=namespace)
              for name in ("cash", "securities")]
    return tuple(Ledger(s) for s in stores)


def _instructions(positions):
    """One instruction per (settlement date, NetPosition) with something to move."""
    return [Instruction(f"{due}:{p.member}:{p.symbol}", p.member, p.symbol, p.qty, p.cash,
                        due.isoformat())
            for due, p in positions
            if p.symbol != CASH and p.member != CCP and (p.qty or p.cash)]


def _fund(cash, securities, opening, ccp, members, symbols):
    cash.create_accounts(cash_accounts(sorted(members), ccp))
    securities.create_accounts(security_accounts(sorted(members), sorted(symbols)))
    cash_open, share_open = opening_transfers({m: opening[m] for m in members}, ccp,
                                              sorted(symbols))
    for ledger, batch in ((cash, cash_open), (securities, share_open)):
        bad = [(t.id, r.value) for t, r in zip(batch, ledger.create_transfers(batch))
               if r not in OK_RESULTS]
        if bad:
            raise SettlementError(f"opening balances refused by the ledger: {bad}")


def settle(out_dir, date, db=None, batch=DEFAULT_BATCH, progress=True, namespace=None,
           buy_in_venue=None):
    """Run the settlement cycle of ``date``; write and return ``settlement.json``'s dict.

    ``buy_in_venue`` (:class:`~tickwire.clearing.buyin.BuyInVenue`): where the CCP buys in the
    fails to deliver past their close-out date (without it they are listed, not bought in).

    Raises
    ------
    SettlementError, AlreadySettled, CalendarError, LedgerStoreError, ClearingFilesError
    """
    if not is_business_day(date):
        raise CalendarError(f"settlement date {date} ({date:%A}) is not an NYSE business day")
    days = cleared_days(out_dir)
    due_days = [(where, info) for where, info in days if info.settlement_date <= date]
    if not due_days:
        first = days[0][1]
        raise SettlementError(f"nothing settles on {date}: the trades of {first.trade_date} "
                              f"settle on {first.settlement_date}")
    info = due_days[-1][1]
    due = info.settlement_date
    opening, ccp = {}, due_days[0][1].ccp
    for _, day in reversed(due_days):       # a member is funded as it first appeared
        opening.update(day.opening)
    positions = [(day.settlement_date, p) for where, day in due_days
                 for p in read_obligations(where)]
    # the CCP's own trades (its buy-ins) need no instruction: its side is its own account;
    # a member that did not trade needs no balances, one that has them is funded all the same
    trading = {p.member for _, p in positions if p.symbol != CASH and (p.qty or p.cash)} - {CCP}
    members = trading | ({p.member for _, p in positions} & set(opening)) - {CCP}
    missing = sorted(trading - set(opening))
    if missing:
        raise OpeningError(f"members {', '.join(missing)} have no opening balances in the "
                           "venue config ([members.<firm>] cash, shares)")
    symbols = {p.symbol for _, p in positions if p.symbol != CASH}
    symbols |= {s for m in members for s in opening[m].shares}
    cash, securities = open_ledgers(out_dir, db, namespace or DEFAULT_NAMESPACE)
    coordinator = CoordinatorLog(os.path.join(out_dir, "ccp.db"))
    try:
        done = coordinator.cycle(date.isoformat())
        if done is not None:
            path = os.path.join(out_dir, "settlement.json")
            if not os.path.exists(path):        # killed between the log and the file
                write_atomic(path, json.dumps(json.loads(done), indent=2) + "\n")
            raise AlreadySettled(f"the settlement of {date} has already run in {out_dir}: "
                                 "nothing new to settle")
        last = coordinator.last_cycle()
        if last is not None and date.isoformat() < last:
            raise SettlementError(f"the settlement cycle of {last} has run in {out_dir}: "
                                  f"{date} comes before it")
        _fund(cash, securities, opening, ccp, members, symbols)
        coordinator.register(_instructions(positions))
        dvp = Dvp(cash, securities, coordinator)
        day = date.isoformat()
        dvp.recover(day)
        trades = ([t for where, _ in due_days for t in read_trades(where)]
                  if info.actions else [])
        apply_actions(info, date, cash, securities, coordinator, trades)
        # The batches are cut from everything the cycle deals with, done or not, so a cycle
        # restarted after a crash cuts the same ones (a batch is done whole or not at all).
        # Deliveries to the CCP settle (and post) first, so the shares it hands on are there.
        cycle = coordinator.cycle_instructions(day)
        rounds = [[i for i in cycle if i.qty < 0], [i for i in cycle if i.qty >= 0]]
        todo = coordinator.due_today(day)
        bar = progress_bar(None, f"settle {date}", "instr", enabled=progress, total=len(cycle))
        bar.update(len(cycle) - len(todo))
        for r in rounds:
            for start in range(0, len(r), batch):
                chunk = [i for i in r[start:start + batch] if i.id in todo]
                if chunk:
                    dvp.settle_batch(chunk, day)
                    bar.update(len(chunk))
                    failpoint("batch")
        bar.close()
        apply_actions(info, date, cash, securities, coordinator, trades, end_of_cycle=True)
        defaults = default_members(coordinator, cash, date, members)
        closing = due_for_close_out(coordinator.instructions(("failed",)), date,
                                    "fail_to_deliver")
        buy_ins = close_out(coordinator, cash, closing, date, buy_in_venue, members) \
            if buy_in_venue is not None and closing else {}
        if buy_ins:
            closing = due_for_close_out(coordinator.instructions(("failed",)), date,
                                        "fail_to_deliver")
        summary = _summary(coordinator, date, due, cash, securities)
        summary["buy_ins"] = buy_ins
        summary["defaults"] = _stored_defaults(coordinator, defaults)
        summary["buy_ins_due"] = [{"instruction": i.id, "member": i.member, "symbol": i.symbol,
                                   "shares": -i.qty, "failed_since": i.due,
                                   "close_out_date": close_out_date(
                                       dt.date.fromisoformat(i.due)).isoformat()}
                                  for i in closing]
        coordinator.close_cycle(date.isoformat(), json.dumps(summary))
    finally:
        coordinator.close()
        cash.store.dispose()
        securities.store.dispose()
    write_atomic(os.path.join(out_dir, "settlement.json"), json.dumps(summary, indent=2) + "\n")
    log.info("settled %s: %d instructions settled, %d failed", date,
             summary["totals"]["settled"], summary["totals"]["failed"])
    return summary


def _stored_defaults(coordinator, now):
    """Every default so far ({instruction: waterfall}), kept in the log across cycles."""
    for instr, detail in now.items():
        coordinator.note(f"default:{instr}", json.dumps(detail))
    return {key.split(":", 1)[1]: json.loads(text)
            for key, text in coordinator.notes("default:")}


def _summary(coordinator, date, due, cash, securities):
    per = defaultdict(lambda: {"settled": 0, "failed": 0, "bought_in": 0, "defaulted": 0,
                               "cash_moved": 0,
                               "shares_moved": 0, "fails": []})
    for i in coordinator.settled_on(date.isoformat()):
        m = per[i.member]
        m["settled"] += 1
        m["cash_moved"] += abs(i.cash)
        m["shares_moved"] += abs(i.qty)
    for i in coordinator.instructions(("failed",)):
        m = per[i.member]
        m["failed"] += 1
        m["fails"].append({"instruction": i.id, "kind": i.reason,
                           "age": business_days_between(dt.date.fromisoformat(i.due), date)})
    for i in coordinator.instructions(("closed_out",)):
        per[i.member]["bought_in"] += 1
    for i in coordinator.instructions(("defaulted",)):
        per[i.member]["defaulted"] += 1
    members = {}
    for name in sorted(per):
        m = per[name]
        members[name] = dict(m, cash_moved=format_price(m["cash_moved"]))
    audit = {"cash": sorted(cash.audit()), "securities": sorted(securities.audit())}
    actions = {a: json.loads(summary) for a, _, summary in coordinator.actions()}
    return {"date": date.isoformat(), "due": due.isoformat(), "corporate_actions": actions,
            "totals": {"settled": sum(m["settled"] for m in per.values()),
                       "failed": sum(m["failed"] for m in per.values()),
                       "bought_in": sum(m["bought_in"] for m in per.values())},
            "members": members, "ledger_audit": audit}
