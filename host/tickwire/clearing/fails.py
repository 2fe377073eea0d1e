"""Fails past their close-out date: Reg SHO Rule 204-style close-out and member default.

Dates, under T+1 (the settlement date S is the day the fail arose):

* **Fail to deliver**: Rule 204(a) requires a participant of a clearing agency with a fail to
  deliver to close it out by the beginning of regular trading hours on the settlement day
  following the settlement date, S+1 (XNYS). A fail still open when the cycle of S+1 or later
  has retried it is *due for buy-in*: the CCP buys the shares in the market through the venue
  as its own account and charges the failing member the cost (:mod:`tickwire.clearing.buyin`).
* **Fail to pay**: a member that has not paid by S+1 is in default. The CCP, which paid the
  sellers, covers the shortfall through the default waterfall, each layer a ledger account:
  the defaulter's margin → the defaulter's guarantee-fund contribution → the CCP's own capital
  → the non-defaulting members' guarantee-fund contributions (pro rata to their size). The
  shares the defaulter did not pay for stay with the CCP (to be liquidated). Whatever the four
  layers cannot cover is reported as uncovered (the next layer, assessments, is the members').
"""

import datetime as dt

from tickwire.clearing.books import CCP_CAPITAL, guarantee_fund, margin
from tickwire.clearing.calendar import next_business_day
from tickwire.clearing.ledger.records import OK_RESULTS, Transfer
from tickwire.clearing.records import CCP

__all__ = ["close_out_date", "default_members", "due_for_close_out", "waterfall"]


def close_out_date(settlement_date: dt.date) -> dt.date:
    """S+1: the settlement day after the settlement date (Rule 204(a), T+1)."""
    return next_business_day(settlement_date)


def due_for_close_out(instructions, date, kind):
    """The failed instructions of ``kind`` whose close-out date is ``date`` or earlier."""
    return [i for i in instructions if i.phase == "failed" and i.reason == kind
            and close_out_date(dt.date.fromisoformat(i.due)) <= date]


def waterfall(defaulter, shortfall, balances, members):
    """The transfers (debit account, amount, layer) that cover ``shortfall`` (1/10000 $)
    into the CCP's settlement account, layer by layer; and what stays uncovered.

    ``balances``: account → available cash; ``members``: every member (the others' guarantee
    fund contributions are the last layer, pro rata to their size).
    """
    out, left = [], shortfall
    for account, layer in ((margin(defaulter), "defaulter margin"),
                           (guarantee_fund(defaulter), "defaulter guarantee fund"),
                           (CCP_CAPITAL, "CCP capital")):
        take = min(left, max(0, balances.get(account, 0)))
        if take:
            out.append((account, take, layer))
            left -= take
    others = {guarantee_fund(m): max(0, balances.get(guarantee_fund(m), 0))
              for m in sorted(members) if m != defaulter}
    pool = sum(others.values())
    if left and pool:
        share_total = min(left, pool)
        shares, given = [], 0
        for account, size in others.items():
            take = share_total * size // pool
            shares.append([account, take])
            given += take
        for entry in shares:                       # the rounding remainder, first come
            extra = min(share_total - given, others[entry[0]] - entry[1])
            entry[1] += extra
            given += extra
        out += [(a, t, "members' guarantee fund") for a, t in shares if t]
        left -= given
    return out, left


def default_members(log, cash, date, members):
    """Put every member with a fail to pay past its close-out date into default: cover each
    shortfall through the waterfall, mark the instructions ``defaulted``. Returns
    {instruction id: {"layers": [...], "uncovered": amount}}."""
    done = {}
    for instr in due_for_close_out(log.instructions(("failed",)), date, "fail_to_pay"):
        shortfall = -instr.cash
        available = {k: b.available for k, b in cash.balances().items()}
        layers, uncovered = waterfall(instr.member, shortfall, available, members)
        transfers = [Transfer(f"default:{instr.id}:{n}", account, CCP, amount, code=layer)
                     for n, (account, amount, layer) in enumerate(layers)]
        if transfers and not cash.lookup_transfers([transfers[0].id]):
            results = cash.create_transfers(transfers)
            bad = [t.id for t, r in zip(transfers, results) if r not in OK_RESULTS]
            if bad:
                raise RuntimeError(f"default of {instr.member}: waterfall refused {bad}")
        log.mark(instr.id, "defaulted")
        done[instr.id] = {"member": instr.member, "shortfall": shortfall,
                          "layers": [{"account": a, "amount": t, "layer": layer}
                                     for a, t, layer in layers], "uncovered": uncovered}
    return done
