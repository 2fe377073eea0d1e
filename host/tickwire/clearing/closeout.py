"""Close-out of fails to deliver past their Rule 204 date: the CCP buys in and charges.

For each instruction due (:func:`~tickwire.clearing.fails.due_for_close_out`), the CCP buys the
missing shares through the venue (:func:`~tickwire.clearing.buyin.buy_in`) at a limit 10 %
above the price of the failed sale (whole cents, rounded up). The failing member is settled in
cash for what was bought: it receives the sale's proceeds for those shares and pays the
buy-in's cost, one net transfer in the cash ledger; if it cannot pay, it is in default and the
waterfall covers the difference. All bought: the instruction is ``closed_out``; part: its
quantity and cash shrink by what was bought and the rest stays failed.

The order's token is fixed by the instruction and the date and recorded in the CCP's log
before anything is sent; :func:`~tickwire.clearing.buyin.buy_in` reconciles with the venue's
stream before sending, so a cycle restarted after a crash (before the order, after it, after
its fills) finds the one order the venue has and records its result: never twice, never
lost. The charge's transfers have fixed ids, and the result, the instruction's new state and
the log's record are written in one transaction.
"""

import json
import zlib

from tickwire.clearing.buyin import buy_in
from tickwire.clearing.dvp import failpoint
from tickwire.clearing.fails import waterfall
from tickwire.clearing.ledger.records import OK_RESULTS, Transfer
from tickwire.clearing.records import CCP

__all__ = ["FAILPOINTS", "buy_in_limit", "close_out"]

# the crash trials' kill points (:func:`~tickwire.clearing.dvp.failpoint`) of a buy-in
FAILPOINTS = ("buyin_noted", "buyin_sent", "buyin_done", "buyin_charged")


def buy_in_limit(instr):
    """10 % above the failed sale's price per share, rounded up to a whole cent."""
    price = -(-instr.cash // -instr.qty)
    limit = -(-price * 11 // 10)
    return -(-limit // 100) * 100


def _charge(cash, instr, token, net, members):
    """Settle the member in cash for the bought shares; cover a refusal by the waterfall."""
    if not net:
        return None
    payer, payee = (CCP, instr.member) if net > 0 else (instr.member, CCP)
    t = Transfer(f"buyin:{instr.id}:{token}", payer, payee, abs(net), code="buy-in")
    if cash.create_transfers([t])[0] in OK_RESULTS or net > 0:
        return None
    ids = [f"{t.id}:{n}" for n in range(3 + len(members))]
    prior = cash.lookup_transfers(ids)
    if prior:                        # a restart: the waterfall ran before the crash
        layers = [(prior[i]["debit"], prior[i]["amount"], prior[i]["code"])
                  for i in ids if i in prior]
        uncovered = -net - sum(amount for _, amount, _ in layers)
    else:
        available = {k: b.available for k, b in cash.balances().items()}
        layers, uncovered = waterfall(instr.member, -net, available, members)
        results = cash.create_transfers([
            Transfer(i, account, CCP, amount, code=layer)
            for i, (account, amount, layer) in zip(ids, layers)])
        if any(r not in OK_RESULTS for r in results):
            raise RuntimeError(f"buy-in of {instr.id}: the waterfall was refused")
    return {"layers": [{"account": a, "amount": t, "layer": layer} for a, t, layer in layers],
            "uncovered": uncovered}


def close_out(log, cash, closing, date, venue, members):
    """Buy in every instruction of ``closing``; return {instruction: what happened}."""
    out = {}
    for instr in closing:
        token = f"BI{zlib.crc32(f'{instr.id}:{date}'.encode()):08X}"
        key = f"buyin:{instr.id}:{token}"
        done = log.notes(f"{key}:result")
        if done:
            out[instr.id] = json.loads(done[0][1])
            continue
        if not log.notes(key):
            log.note(key, date.isoformat())         # the token, before anything is sent
        failpoint("buyin_noted")
        shares, limit = -instr.qty, buy_in_limit(instr)
        result = buy_in(venue, token, instr.symbol, shares, limit)
        failpoint("buyin_done")
        bought = result.shares
        proceeds = instr.cash * bought // shares
        default = _charge(cash, instr, token, proceeds - result.cost, members) if bought \
            else None
        failpoint("buyin_charged")
        record = {"token": token, "outcome": result.outcome, "limit": limit, "asked": shares,
                  "bought": bought, "cost": result.cost, "proceeds": proceeds,
                  "fills": result.fills, "default": default, "recovered": result.recovered}
        left = None if bought == shares else (instr.qty + bought, instr.cash - proceeds)
        log.record_buy_in(instr.id, f"{key}:result", json.dumps(record), left)
        out[instr.id] = record
    return out
