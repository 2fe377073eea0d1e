"""Corporate actions in the settlement cycle: each applied once, recorded in the CCP's log.

At the start of the cycle of ``date`` (before any instruction moves):

* a split whose ex-date has come issues the new shares to every holder at the depository and
  adjusts the quantity of every instruction still open (:func:`~corporate.split_obligation`);
* a dividend whose record date has passed pays the holders of record (the holdings before
  today's settlements), then the claims of the trades that straddled its record date.

At the end of the cycle, a dividend whose record date is today pays the holders of record
(today's settlements included) and its claims. Ledger transfers carry fixed ids
(``ca:<action>:…``) and each ledger step is one transaction, so a crash repeats nothing.
"""

import datetime as dt
import json

from tickwire.clearing.books import BANK, issuer
from tickwire.clearing.corporate import (
    CashDividend,
    Split,
    dividend_claims,
    split_issue,
    split_obligation,
)
from tickwire.clearing.ledger.records import OK_RESULTS, Transfer
from tickwire.clearing.records import CCP

__all__ = ["apply_actions"]


def _holders(securities, symbol):
    suffix = f":{symbol}"
    return {k: b.posted for k, b in securities.balances().items()
            if k.endswith(suffix) and not k.startswith("ISSUER:") and b.posted > 0}


def _once(ledger, transfers):
    """Apply ``transfers`` unless the first is there already; (done, refused ids)."""
    if not transfers or ledger.lookup_transfers([transfers[0].id]):
        return len(transfers), []
    results = ledger.create_transfers(transfers)
    return len(transfers), [t.id for t, r in zip(transfers, results) if r not in OK_RESULTS]


def _split(split, date, info, securities, log):
    issue = [Transfer(f"ca:{split.id}:{account}", issuer(split.symbol), account, extra,
                      code="split")
             for account, held in sorted(_holders(securities, split.symbol).items())
             if (extra := split_issue(split, held))]
    issued, refused = _once(securities, issue)
    adjusted = [(i.id, split_obligation(split, i.qty, info.trade_date, date))
                for i in log.instructions(("open", "failed"))
                if i.symbol == split.symbol]
    return {"issued_to": issued, "refused": refused,
            "instructions": {i: q for i, q in adjusted}}, adjusted


def _dividend(dividend, info, cash, securities, log, trades):
    members = {k.split(":")[0]: v for k, v in _holders(securities, dividend.symbol).items()}
    pay = [Transfer(f"ca:{dividend.id}:{m}", BANK, m, dividend.amount * held, code="dividend")
           for m, held in sorted(members.items()) if m != CCP]
    paid, refused = _once(cash, pay)
    settled_on = {(i.member, i.symbol): log.settled_date(i.id) for i in log.instructions()}

    def settles(t):
        # a member netted flat in the symbol has nothing to wait for: the due date
        dates = [settled_on.get((m, t.symbol), info.settlement_date)
                 for m in (t.buyer, t.seller)]
        return dt.date.max if None in dates else max(dates)

    claims = dividend_claims(dividend, trades, {t.match: settles(t) for t in trades})
    transfers = [Transfer(f"ca:{dividend.id}:claim:{c.match}", c.payer, c.payee, c.cash,
                          code="claim") for c in claims]
    claimed, unpaid = _once(cash, transfers)
    return {"paid_to": paid, "refused": refused, "claims": claimed, "unpaid_claims": unpaid}


def apply_actions(info, date, cash, securities, log, trades, end_of_cycle=False):
    """Apply the corporate actions due at this point of the cycle of ``date``; return
    {action id: summary} of those applied now."""
    done = {}
    for action in info.actions:
        if log.applied(action.id) is not None:
            continue
        if isinstance(action, Split) and not end_of_cycle and action.ex_date <= date:
            summary, adjusted = _split(action, date, info, securities, log)
            log.apply_action(action.id, date.isoformat(), json.dumps(summary), adjusted)
            done[action.id] = summary
        elif isinstance(action, CashDividend) and (
                action.record_date < date or (end_of_cycle and action.record_date == date)):
            summary = _dividend(action, info, cash, securities, log, trades)
            log.apply_action(action.id, date.isoformat(), json.dumps(summary))
            done[action.id] = summary
    return done
