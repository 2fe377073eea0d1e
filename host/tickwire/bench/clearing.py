"""Post-trade figures: netting throughput, and ledger postings batched against one commit per
transfer, on SQLite and (when ``TICKWIRE_TEST_PG`` names a server) PostgreSQL.

A *posting* is one transfer the ledger records: a two-phase DVP leg is two (the pending
transfer and its post). The batched run prepares and posts ``BATCH`` legs per transaction, as
the settlement cycle does; the naive baseline commits every transfer on its own, in the same
run and on the same ledger code.
"""

import datetime as dt
import os
import random
import tempfile
import time
import uuid

from tickwire.clearing.ledger.ledger import Ledger
from tickwire.clearing.ledger.records import Account, Flags, Transfer
from tickwire.clearing.ledger.store import LedgerStoreError, open_store
from tickwire.clearing.netting import net
from tickwire.clearing.novation import novate
from tickwire.clearing.records import Trade
from tickwire.util.figure import Figure

__all__ = ["clearing_figures", "netting_rate", "posting_rates"]

BATCH = 1000                # the settlement cycle's batch (tickwire settle --batch)
TIGERBEETLE_BATCH = 8190    # TigerBeetle's largest request, the batch of its anchor figure
MEMBERS = 50


def _trades(n, seed=1, members=MEMBERS, symbols=100):
    rng = random.Random(seed)
    names = [f"F{i:02d}" for i in range(members)]
    syms = [f"S{i:03d}" for i in range(symbols)]
    day = dt.date(2026, 12, 4)
    out = []
    for match in range(1, n + 1):
        buyer, seller = rng.sample(names, 2)
        out.append(Trade(match, rng.choice(syms), rng.randrange(1, 50) * 100,
                         rng.randrange(10, 500) * 10_000, buyer, seller, "a", "b", day, match))
    return out


def netting_rate(n=1_000_000):
    """(trades/s of novation + netting of ``n`` trades, the netting efficiency)."""
    trades = _trades(n)
    t0 = time.perf_counter()
    netting = net(novate(trades))
    return n / (time.perf_counter() - t0), netting.efficiency


def _ledger(store):
    ledger = Ledger(store)
    ledger.create_accounts([Account("BANK", None)] +
                           [Account(f"M{i}") for i in range(MEMBERS)])
    ledger.create_transfers([Transfer(f"fund{i}", "BANK", f"M{i}", 10**15)
                             for i in range(MEMBERS)])
    return ledger


def _two_phase(ledger, legs, tag, batch=BATCH):
    """(postings/s, postings per CPU-second) of the ledger, ``batch`` legs per transaction:
    the batches (the client's requests) are made before the clock starts, as a client process
    would send them."""
    rng = random.Random(3)
    batches = []
    for start in range(0, legs, batch):
        pending = []
        for n in range(start, min(legs, start + batch)):
            a, b = rng.sample(range(MEMBERS), 2)
            pending.append(Transfer(f"{tag}p{n}", f"M{a}", f"M{b}", rng.randrange(1, 10**6),
                                    Flags.PENDING))
        batches.append((pending, [Transfer(f"{t.id}:post", flags=Flags.POST_PENDING,
                                           pending_id=t.id) for t in pending]))
    t0, c0 = time.perf_counter(), time.process_time()
    for pending, posts in batches:
        ledger.create_transfers(pending)
        ledger.create_transfers(posts)
    return 2 * legs / (time.perf_counter() - t0), 2 * legs / (time.process_time() - c0)


def _naive(ledger, count, tag):
    rng = random.Random(4)
    t0 = time.perf_counter()
    for n in range(count):
        a, b = rng.sample(range(MEMBERS), 2)
        ledger.create_transfers([Transfer(f"{tag}n{n}", f"M{a}", f"M{b}", 1)])
    return count / (time.perf_counter() - t0)


def posting_rates(store, legs=50_000, naive=2_000):
    """(batched two-phase postings/s, the same per CPU-second of this process, naive
    postings/s) on one store."""
    ledger = _ledger(store)
    tag = uuid.uuid4().hex[:6]
    return (*_two_phase(ledger, legs, tag), _naive(ledger, naive, tag))


def _durability(store):
    """How the store's commits are made durable, as its connection reports it."""
    with store.connect() as conn:
        if store.postgres:
            fsync, commit = (conn.exec_driver_sql(f"SHOW {k}").scalar()
                             for k in ("fsync", "synchronous_commit"))
            return f"fsync={fsync}, synchronous_commit={commit}"
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    return f"journal_mode={mode}, synchronous={_SQLITE_SYNC.get(sync, sync)}"


_SQLITE_SYNC = {0: "OFF", 1: "NORMAL", 2: "FULL: every commit fsynced", 3: "EXTRA"}


def _ledger_rows(backend, store, legs):
    batched, per_cpu, naive = posting_rates(store, legs)
    durable = _durability(store)
    rows = [Figure(f"ledger {backend}: two-phase postings, {BATCH} per transaction", batched,
                   "post/s", note=f"{legs:,} DVP legs pending + post ({durable}); goal ≥ 50k/s "
                   "on SQLite")]
    if backend == "sqlite":         # all of SQLite's work is this process's: CPU-s is its cost
        rows.append(Figure(f"ledger {backend}: two-phase postings per CPU-second", per_cpu,
                           "post/CPU-s", note="the batched run without its waits (fsync at "
                           "each commit, a loaded machine)"))
        big, _ = _two_phase(Ledger(store), legs, uuid.uuid4().hex[:6], TIGERBEETLE_BATCH)
        rows.append(Figure(f"ledger {backend}: two-phase postings, {TIGERBEETLE_BATCH} per "
                           "transaction", big, "post/s", note=f"TigerBeetle's batch ({durable})"))
    return rows + [
        Figure(f"ledger {backend}: naive, one commit per transfer", naive, "post/s"),
        Figure(f"ledger {backend}: batched vs naive", batched / naive, "x",
               peer="one commit per transfer", ratio=batched / naive)]


def clearing_figures():
    rate, efficiency = netting_rate()
    rows = [Figure("clearing: novation + netting, 1M trades", rate, "trades/s",
                   note=f"50 members, 100 symbols; efficiency {efficiency:.1%}")]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store("bench", directory=tmp)
        rows += _ledger_rows("sqlite", store, 50_000)
        store.dispose()
    url = os.environ.get("TICKWIRE_TEST_PG")
    if url:
        try:
            store = open_store("bench", url=url, namespace="b" + uuid.uuid4().hex[:8])
        except LedgerStoreError as exc:
            print(f"clearing bench: PostgreSQL skipped: {exc}")
        else:
            try:
                rows += _ledger_rows("postgresql", store, 20_000)
            finally:
                store.drop()
                store.dispose()
    else:
        print("clearing bench: PostgreSQL skipped (set TICKWIRE_TEST_PG to a server URL)")
    return rows
