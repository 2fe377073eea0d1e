"""Close-out of fails to deliver past their Rule 204 date: the CCP buys in and charges.

For each instruction due (:func:`~tickwire.clearing.fails.due_for_close_out`), the CCP buys the
missing shares through the venue (:func:`~tickwire.clearing.buyin.buy_in`) at a limit 10 %
above the price of the failed sale (whole cents, rounded up). The failing member is settled in
cash for what was bought: it receives the sale's proceeds for those shares and pays the
buy-in's cost, one net transfer in the cash ledger; if it cannot pay, it is in default and the
waterfall covers the difference. All bought: the instruction is ``closed_out``; part: its
quantity and cash shrink by what was bought and the rest stays failed.

The order's token is fixed by the instruction and the date, and the CCP's log records that
the order was sent before it is sent: a cycle restarted after a crash never buys twice (an
order whose outcome the crash lost is reported for an operator to reconcile).
"""

import json
import zlib

from tickwire.clearing.buyin import buy_in
from tickwire.clearing.fails import waterfall
from tickwire.clearing.ledger.records import OK_RESULTS, Transfer
from tickwire.clearing.records import CCP

__all__ = ["buy_in_limit", "close_out"]


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
    available = {k: b.available for k, b in cash.balances().items()}
    layers, uncovered = waterfall(instr.member, -net, available, members)
    results = cash.create_transfers([
        Transfer(f"buyin:{instr.id}:{token}:{n}", account, CCP, amount, code=layer)
        for n, (account, amount, layer) in enumerate(layers)])
    if any(r not in OK_RESULTS for r in results):
        raise RuntimeError(f"buy-in of {instr.id}: the waterfall was refused")
    return {"layers": [{"account": a, "amount": t, "layer": layer} for a, t, layer in layers],
            "uncovered": uncovered}


def close_out(log, cash, closing, date, venue, members):
    """Buy in every instruction of ``closing``; return {instruction: what happened}."""
    out = {}
    for instr in closing:
        token = f"BI{zlib.crc32(f'{instr.id}:{date}'.encode()):08X}"
        sent = f"buyin:{instr.id}:{token}"
        if log.notes(sent):
            done = log.notes(f"{sent}:result")
            out[instr.id] = json.loads(done[0][1]) if done else {
                "token": token, "outcome": "unknown: sent before a crash, reconcile"}
            continue
        log.note(sent, date.isoformat())
        shares, limit = -instr.qty, buy_in_limit(instr)
        result = buy_in(venue, token, instr.symbol, shares, limit)
        bought = result.shares
        proceeds = instr.cash * bought // shares
        default = _charge(cash, instr, token, proceeds - result.cost, members) if bought \
            else None
        if bought == shares:
            log.mark(instr.id, "closed_out", "bought_in")
        elif bought:
            log.shrink(instr.id, instr.qty + bought, instr.cash - proceeds)
        record = {"token": token, "outcome": result.outcome, "limit": limit, "asked": shares,
                  "bought": bought, "cost": result.cost, "proceeds": proceeds,
                  "fills": result.fills, "default": default}
        log.note(f"{sent}:result", json.dumps(record))
        out[instr.id] = record
    return out
