"""Delivery versus payment as a two-phase commit coordinated by the CCP.

For a batch of instructions:

1. the coordinator log marks them ``preparing`` (attempt + 1);
2. *prepare*: one pending transfer per cash leg in the cash ledger, then one per share leg in
   the securities ledger (each ledger one transaction for the whole batch); a leg that cannot
   be reserved (the payer or the deliverer is short) is the instruction's vote to abort;
3. the decision, ``commit`` or ``abort`` per instruction, goes into the coordinator log: the
   commit point;
4. *commit* posts both pending legs, *abort* voids them, in each ledger (again one
   transaction per ledger);
5. the log marks them ``settled`` or ``failed`` (a fail to deliver or to pay, retried later).

Transfer ids are ``dvp:<instruction>:<attempt>:<leg>`` (``…:post``/``…:void`` for phase two),
so every step is idempotent. :meth:`Dvp.recover` finishes what a crash left: ``commit`` and
``abort`` are carried out again (a post or void already there answers ``exists``);
``preparing`` had no decision, so its legs are voided and the instruction is open again.
Pending legs carry no timeout: a participant that has voted to commit must not drop its
reservation on its own.
"""

import logging
import os
import signal

from tickwire.clearing.books import position
from tickwire.clearing.ledger.records import OK_RESULTS, Flags, Result, Transfer
from tickwire.clearing.records import CCP

__all__ = ["FAIL_KINDS", "Dvp", "failpoint", "legs"]

log = logging.getLogger(__name__)

FAIL_KINDS = {"fail_to_deliver": "the member does not have the shares",
              "fail_to_pay": "the member does not have the cash",
              "ccp_short_shares": "the CCP has not received the shares (another member's fail)",
              "ccp_short_cash": "the CCP's settlement account is past its credit line"}


class _Failpoints:
    """Crash tests' kill points: ``failpoint(name)`` SIGKILLs this process when ``spec``
    (``TICKWIRE_FAILPOINTS``, comma-separated ``name`` or ``name@N`` for its N-th pass)
    names it."""

    def __init__(self, spec):
        self.spec, self.counts = spec, {}

    def __call__(self, name):
        if not self.spec:
            return
        self.counts[name] = self.counts.get(name, 0) + 1
        for item in self.spec.split(","):
            point, _, nth = item.partition("@")
            if point == name and (not nth or int(nth) == self.counts[name]):
                os.kill(os.getpid(), signal.SIGKILL)


failpoint = _Failpoints(os.environ.get("TICKWIRE_FAILPOINTS", ""))
FAILPOINTS = ("between_prepares", "decided", "between_posts", "finished", "batch")


def legs(instr, attempt=None):
    """(cash Transfer or None, securities Transfer or None), both pending."""
    cash = sec = None
    if instr.cash:
        payer, payee = (CCP, instr.member) if instr.cash > 0 else (instr.member, CCP)
        cash = Transfer(instr.leg_id("cash", attempt), payer, payee, abs(instr.cash),
                        Flags.PENDING, code="dvp")
    if instr.qty:
        ccp, member = position(CCP, instr.symbol), position(instr.member, instr.symbol)
        giver, taker = (ccp, member) if instr.qty > 0 else (member, ccp)
        sec = Transfer(instr.leg_id("sec", attempt), giver, taker, abs(instr.qty),
                       Flags.PENDING, code="dvp")
    return cash, sec


def _fail_kind(leg, result, ledger):
    if result is not Result.EXCEEDS_CREDITS:
        return f"{ledger}: {result.value}"
    ccp_side = leg.debit == CCP or leg.debit.startswith(f"{CCP}:")
    if ledger == "cash":
        return "ccp_short_cash" if ccp_side else "fail_to_pay"
    return "ccp_short_shares" if ccp_side else "fail_to_deliver"


class Dvp:
    """The CCP's settlement coordinator over the two ledgers and its log."""

    def __init__(self, cash, securities, coordinator):
        self.cash, self.securities, self.log = cash, securities, coordinator

    def settle_batch(self, batch, date):
        """Run DVP for ``batch`` (instructions); return (settled ids, failed (id, kind))."""
        self.log.begin(batch)
        attempts = [i.attempt + 1 for i in batch]
        pairs = [legs(i, a) for i, a in zip(batch, attempts)]
        cash_ok = self._prepare(self.cash, [c for c, _ in pairs])
        failpoint("between_prepares")
        sec_ok = self._prepare(self.securities, [s for _, s in pairs])
        decisions = []
        for instr, (c, s) in zip(batch, pairs):
            why = None
            if c is not None and cash_ok[c.id] not in OK_RESULTS:
                why = _fail_kind(c, cash_ok[c.id], "cash")
            elif s is not None and sec_ok[s.id] not in OK_RESULTS:
                why = _fail_kind(s, sec_ok[s.id], "securities")
            decisions.append((instr.id, "abort" if why else "commit", why))
        self.log.decide(decisions)
        failpoint("decided")
        self._complete(pairs, [d for _, d, _ in decisions])
        settled = [i for i, d, _ in decisions if d == "commit"]
        failed = [(i, a, why) for (i, d, why), a in zip(decisions, attempts) if d == "abort"]
        self.log.finish(settled, failed, date)
        failpoint("finished")
        return settled, [(i, why) for i, _, why in failed]

    def recover(self, date):
        """Finish every instruction a crash left between ``preparing`` and done."""
        stuck = self.log.instructions(("preparing", "commit", "abort"))
        if not stuck:
            return 0
        pairs = [legs(i) for i in stuck]
        decisions = [i.phase if i.phase != "preparing" else "abort" for i in stuck]
        self._complete(pairs, decisions)
        self.log.reopen([i.id for i in stuck if i.phase == "preparing"])
        decided = [i for i in stuck if i.phase != "preparing"]
        self.log.finish([i.id for i in decided if i.phase == "commit"],
                        [(i.id, i.attempt, i.reason) for i in decided if i.phase == "abort"],
                        date)
        log.info("recovered %d instructions: %d re-opened, %d committed, %d aborted",
                 len(stuck), len(stuck) - len(decided),
                 sum(i.phase == "commit" for i in decided),
                 sum(i.phase == "abort" for i in decided))
        return len(stuck)

    @staticmethod
    def _prepare(ledger, transfers):
        batch = [t for t in transfers if t is not None]
        return dict(zip((t.id for t in batch), ledger.create_transfers(batch)))

    def _complete(self, pairs, decisions):
        """Post (commit) or void (abort) the legs that were reserved, cash ledger first."""
        for index, ledger in ((0, self.cash), (1, self.securities)):
            out = []
            for pair, decision in zip(pairs, decisions):
                leg = pair[index]
                if leg is None:
                    continue
                flag = Flags.POST_PENDING if decision == "commit" else Flags.VOID_PENDING
                out.append(Transfer(f"{leg.id}:{'post' if decision == 'commit' else 'void'}",
                                    flags=flag, pending_id=leg.id, code="dvp"))
            results = ledger.create_transfers(out)
            for t, r in zip(out, results):
                if r not in OK_RESULTS and not (t.flags & Flags.VOID_PENDING and r in (
                        Result.PENDING_TRANSFER_NOT_FOUND,
                        Result.PENDING_TRANSFER_ALREADY_VOIDED)):
                    raise RuntimeError(f"DVP {t.id}: {r.value} (the ledgers disagree with the "
                                       "coordinator log)")
            if index == 0:
                failpoint("between_posts")
