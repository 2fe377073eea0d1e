"""The double-entry ledger with two-phase and linked transfers, on SQLite and PostgreSQL."""

import pytest
from ledger_util import BACKENDS, namespace, store_for
from sqlalchemy import update
from tickwire.bench.clearing import BATCH as BENCH_BATCH
from tickwire.bench.clearing import posting_rates
from tickwire.clearing.ledger.ledger import Ledger
from tickwire.clearing.ledger.records import Account, Flags, Result, Transfer
from tickwire.clearing.ledger.store import LedgerStoreError, accounts, open_store

R = Result


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    ns = namespace()
    store = store_for(request.param, tmp_path, "cash", ns)
    clock = iter(range(10**9, 10**18, 10**9))           # one second per transfer batch
    ledger = Ledger(store, clock=lambda: next(clock))
    ledger.create_accounts([Account("BANK", None), Account("A"), Account("B"),
                            Account("C", credit_limit=500)])
    assert ledger.create_transfers([Transfer("fund-a", "BANK", "A", 1000)]) == [R.OK]
    yield ledger
    if request.param == "postgresql":
        store.drop()
    store.dispose()


def _posted(ledger):
    return {k: v.posted for k, v in ledger.balances().items()}


def test_single_phase_and_no_negative_balance(ledger):
    assert ledger.create_transfers([Transfer("t1", "A", "B", 600),
                                    Transfer("t2", "A", "B", 600),
                                    Transfer("t3", "B", "A", 0),
                                    Transfer("t4", "A", "A", 1),
                                    Transfer("t5", "A", "Z", 1)]) == [
        R.OK, R.EXCEEDS_CREDITS, R.AMOUNT_MUST_NOT_BE_ZERO, R.ACCOUNTS_MUST_BE_DIFFERENT,
        R.CREDIT_ACCOUNT_NOT_FOUND]
    assert _posted(ledger) == {"BANK": -1000, "A": 400, "B": 600, "C": 0}
    # C is allowed 500 of credit, and no more
    assert ledger.create_transfers([Transfer("c1", "C", "B", 500),
                                    Transfer("c2", "C", "B", 1)]) == [R.OK, R.EXCEEDS_CREDITS]
    assert sum(_posted(ledger).values()) == 0
    assert ledger.audit() == {}


def test_pending_reserves_then_post_or_void(ledger):
    assert ledger.create_transfers([Transfer("p1", "A", "B", 700, Flags.PENDING)]) == [R.OK]
    a = ledger.balance("A")
    assert (a.debits_pending, a.posted, a.available) == (700, 1000, 300)
    # the reservation blocks a second debit
    assert ledger.create_transfers([Transfer("x", "A", "C", 400)]) == [R.EXCEEDS_CREDITS]
    assert ledger.create_transfers([Transfer("p1-post", flags=Flags.POST_PENDING,
                                             pending_id="p1", amount=500)]) == [R.OK]
    assert _posted(ledger)["B"] == 500 and ledger.balance("A").debits_pending == 0
    assert ledger.create_transfers([Transfer("again", flags=Flags.VOID_PENDING,
                                             pending_id="p1")]) == [
        R.PENDING_TRANSFER_ALREADY_POSTED]
    assert ledger.create_transfers([Transfer("p2", "A", "B", 100, Flags.PENDING),
                                    Transfer("p2-void", flags=Flags.VOID_PENDING,
                                             pending_id="p2")]) == [R.OK, R.OK]
    assert ledger.create_transfers([Transfer("p2-post", flags=Flags.POST_PENDING,
                                             pending_id="p2")]) == [
        R.PENDING_TRANSFER_ALREADY_VOIDED]
    assert ledger.create_transfers([Transfer("nope", flags=Flags.POST_PENDING,
                                             pending_id="nothing")]) == [
        R.PENDING_TRANSFER_NOT_FOUND]
    assert _posted(ledger)["A"] == 500 and ledger.audit() == {}


def test_timeout_expires_a_pending_transfer(ledger):
    assert ledger.create_transfers([Transfer("p", "A", "B", 900, Flags.PENDING,
                                             timeout=2)]) == [R.OK]
    # the clock moves one second per call: the post comes after the timeout
    ledger.clock()
    ledger.clock()
    assert ledger.create_transfers([Transfer("p-post", flags=Flags.POST_PENDING,
                                             pending_id="p")]) == [R.PENDING_TRANSFER_EXPIRED]
    assert ledger.balance("A").available == 1000 and ledger.audit() == {}
    assert ledger.create_transfers([Transfer("q", "A", "B", 900, Flags.PENDING,
                                             timeout=1)]) == [R.OK]
    assert ledger.expire_pending(now=10**18) == 1
    assert ledger.balance("A").debits_pending == 0 and ledger.audit() == {}


def test_linked_transfers_succeed_or_fail_together(ledger):
    results = ledger.create_transfers([
        Transfer("l1", "A", "B", 100, Flags.LINKED),
        Transfer("l2", "B", "C", 50, Flags.LINKED | Flags.PENDING),
        Transfer("l3", "A", "C", 5000),                 # fails: the chain fails
        Transfer("solo", "A", "C", 10)])
    assert results == [R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS, R.OK]
    assert _posted(ledger) == {"BANK": -1000, "A": 990, "B": 0, "C": 10}
    assert ledger.lookup_transfers(["l1", "l2", "l3"]) == {}
    assert ledger.create_transfers([Transfer("m1", "A", "B", 100, Flags.LINKED),
                                    Transfer("m2", "B", "C", 100)]) == [R.OK, R.OK]
    assert ledger.create_transfers([Transfer("open", "A", "B", 1, Flags.LINKED)]) == [
        R.LINKED_EVENT_CHAIN_OPEN]
    assert ledger.audit() == {}


def test_same_id_twice_is_idempotent(ledger):
    assert ledger.create_transfers([Transfer("t", "A", "B", 10)]) == [R.OK]
    assert ledger.create_transfers([Transfer("t", "A", "B", 10)]) == [R.EXISTS]
    assert ledger.create_transfers([Transfer("t", "A", "B", 11)]) == [
        R.EXISTS_WITH_DIFFERENT_FIELDS]
    assert _posted(ledger)["B"] == 10


def test_a_batch_resent_among_new_transfers_applies_each_once(ledger):
    """A batch's ids are not looked up first: a stored one fails the insert, and the batch is
    applied again with every id looked up (a client's retry after a crash)."""
    first = [Transfer("p1", "A", "B", 100, Flags.PENDING), Transfer("s1", "A", "B", 10)]
    assert ledger.create_transfers(first) == [R.OK, R.OK]
    again = [Transfer("s2", "A", "B", 20), *first, Transfer("p1:post", flags=Flags.POST_PENDING,
                                                            pending_id="p1")]
    assert ledger.create_transfers(again) == [R.OK, R.EXISTS, R.EXISTS, R.OK]
    assert ledger.create_transfers(again) == [R.EXISTS] * 4
    b = ledger.balance("B")
    assert (b.credits_posted, b.credits_pending) == (130, 0)
    assert ledger.audit() == {}


def test_audit_finds_a_balance_that_is_not_its_transfers(ledger):
    with ledger.store.connect() as conn, conn.begin():
        conn.execute(update(accounts).where(accounts.c.id == "A").values(credits_posted=1))
    assert set(ledger.audit()) == {"A"}


def test_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(LedgerStoreError, match="cannot open"):
        open_store("cash", url="postgresql://tw:tw@127.0.0.1:1/none")
    with pytest.raises(LedgerStoreError, match="only postgresql"):
        open_store("cash", url="mysql://x@y/z")


def test_the_benchmarks_postings_are_applied_and_balance(ledger):
    """The bench's runs (``tickwire bench --only clearing``) on a small scale: every posting
    applied, balances agreeing with the transfers (rates are measured there, not here)."""
    batched, per_cpu, naive = posting_rates(ledger.store, legs=2 * BENCH_BATCH + 7, naive=5)
    assert batched > 0 and per_cpu > 0 and naive > 0
    assert ledger.audit() == {}
    totals = ledger.balances()
    assert sum(b.posted for b in totals.values()) == 0
    assert sum(b.debits_pending + b.credits_pending for b in totals.values()) == 0


def test_a_resent_post_answers_exists_not_already_posted(ledger):
    """A stored id answers EXISTS before any other check (what DVP recovery relies on)."""
    post = Transfer("p:post", flags=Flags.POST_PENDING, pending_id="p")
    assert ledger.create_transfers([Transfer("p", "A", "B", 5, Flags.PENDING)]) == [R.OK]
    assert ledger.create_transfers([post]) == [R.OK]
    assert ledger.create_transfers([post, Transfer("n", "A", "B", 1)]) == [R.EXISTS, R.OK]
    assert ledger.create_transfers([Transfer("p:void", flags=Flags.VOID_PENDING,
                                             pending_id="p")]) == [
        R.PENDING_TRANSFER_ALREADY_POSTED]
