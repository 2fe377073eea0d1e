"""DVP crash trials: the settlement process SIGKILLed at the named kill points and at random
moments, on SQLite and PostgreSQL; after every kill the ledgers conserve cash and shares and
agree with their transfers, and a restart finishes the cycle exactly as a run that was never
killed: nothing half-settled, nothing settled twice."""

import datetime as dt
import multiprocessing
import os
import random
import shutil
import signal
import time
from collections import Counter

import pytest
from ledger_util import BACKENDS, namespace
from pg_util import require_pg
from sqlalchemy import select
from tickwire.clearing import dvp
from tickwire.clearing.files import write_clearing
from tickwire.clearing.ledger.records import Flags
from tickwire.clearing.ledger.store import open_store, transfers
from tickwire.clearing.netting import net
from tickwire.clearing.novation import novate
from tickwire.clearing.opening import CcpTerms, OpeningBalance
from tickwire.clearing.records import Trade
from tickwire.clearing.settle import open_ledgers, settle

TRADE_DATE, SETTLE = dt.date(2026, 12, 4), dt.date(2026, 12, 7)
MEMBERS = [f"M{i}" for i in range(8)]
SYMBOLS = [f"S{i}" for i in range(5)]
BATCH = 3
CASH, SHARES = 10_000_000 * 10_000, 5_000


def _opening():
    out = {m: OpeningBalance(CASH, 0, 0, dict.fromkeys(SYMBOLS, SHARES)) for m in MEMBERS}
    out["M3"] = OpeningBalance(CASH, 0, 0, dict(out["M3"].shares, S1=0))     # fails to deliver
    out["M5"] = OpeningBalance(1_000 * 10_000, 0, 0, out["M5"].shares)       # fails to pay
    return out


@pytest.fixture(scope="module")
def cleared(tmp_path_factory):
    rng = random.Random(12)
    trades = []
    for match in range(1, 201):
        buyer, seller = rng.sample(MEMBERS, 2)
        trades.append(Trade(match, rng.choice(SYMBOLS), rng.randrange(1, 40) * 10,
                            rng.randrange(90, 110) * 10_000, buyer, seller, "a", "b",
                            TRADE_DATE, match))
    out = tmp_path_factory.mktemp("cleared")
    write_clearing(str(out), trades, net(novate(trades), MEMBERS), TRADE_DATE, SETTLE, 1,
                   _opening(), CcpTerms(capital=0, credit_line=10**15))
    return out


def _copy(cleared, target):
    target.mkdir()
    for name in ("obligations.csv", "clearing.json"):
        shutil.copy(cleared / name, target / name)
    return target


def _state(out, db, ns):
    """(cash balances, share balances, audits, posts per leg) of a clearing directory."""
    cash, securities = open_ledgers(str(out), db, ns)
    try:
        balances = [{k: (v.posted, v.debits_pending) for k, v in ledger.balances().items()}
                    for ledger in (cash, securities)]
        audits = [cash.audit(), securities.audit()]
        posts = Counter()
        for ledger in (cash, securities):
            with ledger.store.connect() as conn:
                for (tid,) in conn.execute(select(transfers.c.id).where(
                        transfers.c.flags == int(Flags.POST_PENDING))):
                    instr, _attempt, leg, _ = tid.rsplit(":", 3)
                    posts[instr, leg] += 1
        return balances, audits, posts
    finally:
        cash.store.dispose()
        securities.store.dispose()


def _conserved(balances):
    """Double entry holds; once funded, the members and the CCP hold exactly what was issued
    (a kill can come before the opening transfers, which are one transaction per ledger)."""
    cash, shares = balances
    assert sum(p for p, _ in cash.values()) == 0
    assert sum(p for p, _ in shares.values()) == 0
    if cash.get("BANK", (0,))[0]:
        assert cash["BANK"][0] == -(CASH * (len(MEMBERS) - 1) + 1_000 * 10_000)
    if shares.get("ISSUER:S0", (0,))[0]:
        total = sum(o.shares[s] for o in _opening().values() for s in SYMBOLS)
        assert sum(p for k, (p, _) in shares.items() if not k.startswith("ISSUER")) == total


def _run(out, db, ns, spec):
    dvp.failpoint.spec, dvp.failpoint.counts = spec, {}
    settle(str(out), SETTLE, db, batch=BATCH, progress=False, namespace=ns)


def _trial(out, db, ns, spec=None, delay=None):
    """Run the cycle in a child process; kill it at ``spec`` or after ``delay`` seconds.
    Return whether it was killed."""
    child = multiprocessing.get_context("fork").Process(target=_run,
                                                         args=(out, db, ns, spec or ""))
    child.start()
    if delay is not None:
        child.join(delay)
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
    child.join(60)
    return child.exitcode == -signal.SIGKILL


def _backend(name):
    return (None, None) if name == "sqlite" else (require_pg(), None)


def _drop(db, ns):
    if db is not None:
        for name in ("cash", "securities"):
            open_store(name, url=db, namespace=ns).drop()


def _reference(cleared, tmp_path, db):
    """(state of a cycle never killed, its duration in s)."""
    ns = namespace()
    started = time.monotonic()
    assert not _trial(_copy(cleared, tmp_path / "ref"), db, ns)
    duration = time.monotonic() - started
    reference = _state(tmp_path / "ref", db, ns)
    _drop(db, ns)
    _conserved(reference[0])
    assert reference[1] == [{}, {}]
    assert set(reference[2].values()) == {1}            # every posted leg posted once
    assert any(p for p, _ in (reference[0][0].values())) and reference[2]
    return reference, duration


def _kill_and_restart(plans, cleared, tmp_path, db, reference):
    """Run each plan (kill point, or delay), check, restart, compare; return the kills."""
    kills = 0
    for n, (spec, delay) in enumerate(plans):
        ns = namespace()
        out = _copy(cleared, tmp_path / f"t{n}")
        killed = _trial(out, db, ns, spec, delay)
        kills += killed
        balances, audits, _ = _state(out, db, ns)
        _conserved(balances)
        assert audits == [{}, {}], (spec, delay)
        assert not _trial(out, db, ns)                   # the restart finishes the cycle
        final = _state(out, db, ns)
        assert final[0] == reference[0], (spec, delay)    # as if never killed
        assert final[2] == reference[2], (spec, delay)    # each leg posted exactly once
        assert all(pending == 0 for ledger in final[0] for _, pending in ledger.values())
        _drop(db, ns)
    return kills


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_at_every_kill_point_and_at_random(backend, cleared, tmp_path):
    db, _ = _backend(backend)
    reference, duration = _reference(cleared, tmp_path, db)
    rng = random.Random(backend)
    plans = [(f"{point}@{rng.randrange(1, 4)}", None) for point in dvp.FAILPOINTS]
    plans += [(None, rng.uniform(0.05, duration)) for _ in range(4)]
    assert _kill_and_restart(plans, cleared, tmp_path, db, reference) >= len(dvp.FAILPOINTS)


@pytest.mark.regress
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_at_many_random_moments(backend, cleared, tmp_path):
    """``make regress``: every kill point at each of its first passes, and 60 random moments."""
    db, _ = _backend(backend)
    reference, duration = _reference(cleared, tmp_path, db)
    rng = random.Random(f"{backend}-long")
    plans = [(f"{point}@{n}", None) for point in dvp.FAILPOINTS for n in range(1, 6)]
    plans += [(None, rng.uniform(0.0, duration)) for _ in range(60)]
    assert _kill_and_restart(plans, cleared, tmp_path, db, reference) >= len(dvp.FAILPOINTS)
