"""A double-entry ledger with two-phase and linked transfers (TigerBeetle's model) in SQL.

:meth:`Ledger.create_transfers` applies a batch in one database transaction under the ledger's
write lock: it reads the accounts and the pending transfers the batch touches, applies the
transfers in order in memory (each checked against the balances the earlier ones left), then
writes the new transfers, the pending transfers' new states and the accounts' balances with one
statement each. So a batch costs a handful of round trips however many transfers it holds, and
a crash leaves it entirely applied or not at all.

Balances are the sums of the transfers: each account row carries its four totals
(debits/credits, pending/posted), updated in the same transaction as the transfers that change
them, and :meth:`Ledger.audit` recomputes them from the transfers table and reports any account
whose row disagrees.
"""

import time

from sqlalchemy import bindparam, func, insert, select
from tickwire.clearing.ledger.records import Account, Balance, Flags, PendingState, Result
from tickwire.clearing.ledger.store import TRANSFER_COLUMNS, accounts, transfers

__all__ = ["AccountExists", "Ledger"]

_F = Flags
# Plain ints on the hot path: enum arithmetic costs more than the rest of a transfer.
_LINKED, _PENDING, _POST, _VOID = (int(f) for f in (_F.LINKED, _F.PENDING, _F.POST_PENDING,
                                                   _F.VOID_PENDING))
_IS_PENDING, _POSTED, _VOIDED, _EXPIRED = (int(s) for s in PendingState)
_FINAL = {_POSTED: Result.PENDING_TRANSFER_ALREADY_POSTED,
          _VOIDED: Result.PENDING_TRANSFER_ALREADY_VOIDED,
          _EXPIRED: Result.PENDING_TRANSFER_EXPIRED}
_OK = Result.OK


class AccountExists(ValueError):
    """An account created again with a different credit limit."""


class _Work:
    """The batch's view: account balances and pending transfers, changed in memory."""

    def __init__(self, account_rows, transfer_rows):
        # id -> [debits_pending, debits_posted, credits_pending, credits_posted, limit]
        self.accounts = {r.id: [r.debits_pending, r.debits_posted, r.credits_pending,
                                r.credits_posted, r.credit_limit] for r in account_rows}
        self.existing = {r.id: r for r in transfer_rows}
        self.created = {}           # id -> _Row of the transfers this batch creates
        self.states = {}            # pending id -> new PendingState
        self.new = []               # dicts to insert
        self.undo = []              # kept only inside a linked chain (the only rollback)
        self.tracking = False

    def find(self, transfer_id):
        return self.existing.get(transfer_id) or self.created.get(transfer_id)

    def create(self, row):
        self.new.append(row)
        self.created[row["id"]] = _Row(row)

    def state(self, pending_id):
        if pending_id in self.states:
            return self.states[pending_id]
        row = self.find(pending_id)
        return None if row is None else row.state

    def add(self, account, index, amount):
        self.accounts[account][index] += amount
        if self.tracking:
            self.undo.append(("acct", account, index, amount))

    def set_state(self, pending_id, state):
        if self.tracking:
            self.undo.append(("state", pending_id, self.states.get(pending_id)))
        self.states[pending_id] = state

    def rollback(self, mark, new_mark):
        for row in self.new[new_mark:]:
            del self.created[row["id"]]
        del self.new[new_mark:]
        while len(self.undo) > mark:
            entry = self.undo.pop()
            if entry[0] == "acct":
                self.accounts[entry[1]][entry[2]] -= entry[3]
            elif entry[2] is None:
                del self.states[entry[1]]
            else:
                self.states[entry[1]] = entry[2]


class Ledger:
    """One ledger (the cash ledger, or the securities ledger) over a :class:`Store`.

    Parameters
    ----------
    store : Store
    clock : callable
        ns (wall clock by default); transfer timestamps are made strictly rising from it.
    """

    def __init__(self, store, clock=time.time_ns):
        self.store = store
        self.clock = clock

    # -- accounts --------------------------------------------------------------------------

    def create_accounts(self, new_accounts):
        """Create accounts; one that exists with the same limit is left as it is."""
        with self.store.connect() as conn, self.store.begin_write(conn):
            ids = [a.id for a in new_accounts]
            have = {r.id: r.credit_limit for r in conn.execute(
                select(accounts.c.id, accounts.c.credit_limit).where(
                    accounts.c.id.in_(bindparam("ids", expanding=True))), {"ids": ids})}
            rows = []
            for a in new_accounts:
                if a.id in have:
                    if have[a.id] != a.credit_limit:
                        raise AccountExists(f"account {a.id} exists with credit limit "
                                            f"{have[a.id]}, not {a.credit_limit}")
                    continue
                have[a.id] = a.credit_limit
                rows.append({"id": a.id, "credit_limit": a.credit_limit, "debits_pending": 0,
                             "debits_posted": 0, "credits_pending": 0, "credits_posted": 0})
            if rows:
                conn.execute(insert(accounts), rows)

    def balance(self, account_id):
        return self.balances([account_id]).get(account_id)

    def balances(self, ids=None):
        """account id → :class:`Balance` (all accounts if ``ids`` is None)."""
        q = select(accounts)
        if ids is not None:
            q = q.where(accounts.c.id.in_(bindparam("ids", expanding=True)))
        with self.store.connect() as conn:
            rows = conn.execute(q, {"ids": list(ids)} if ids is not None else {})
            return {r.id: Balance(r.debits_pending, r.debits_posted, r.credits_pending,
                                  r.credits_posted) for r in rows}

    def accounts(self):
        """account id → :class:`Account`."""
        with self.store.connect() as conn:
            return {r.id: Account(r.id, r.credit_limit)
                    for r in conn.execute(select(accounts.c.id, accounts.c.credit_limit))}

    # -- transfers -------------------------------------------------------------------------

    def create_transfers(self, batch):
        """Apply ``batch`` (a list of :class:`Transfer`) in one transaction; return one
        :class:`Result` per transfer."""
        if not batch:
            return []
        with self.store.connect() as conn, self.store.begin_write(conn):
            work = self._load(conn, batch)
            now = max(self.clock(), (conn.execute(select(func.max(transfers.c.ts))).scalar()
                                     or 0) + 1)
            results = self._apply(work, batch, now)
            self._write(conn, work)
        return results

    def lookup_transfers(self, ids):
        """id → row (a mapping with the transfers table's columns) of the transfers that exist."""
        with self.store.connect() as conn:
            return {r.id: r._mapping for r in conn.execute(
                select(transfers).where(transfers.c.id.in_(bindparam("ids", expanding=True))),
                {"ids": list(ids)})}

    def expire_pending(self, now=None):
        """Expire every pending transfer whose timeout has passed; return how many."""
        now = self.clock() if now is None else now
        with self.store.connect() as conn, self.store.begin_write(conn):
            rows = conn.execute(select(transfers).where(
                transfers.c.state == int(PendingState.PENDING), transfers.c.expires.is_not(None),
                transfers.c.expires <= now)).all()
            if not rows:
                return 0
            ids = {r.debit for r in rows} | {r.credit for r in rows}
            work = _Work(conn.execute(select(accounts).where(
                accounts.c.id.in_(bindparam("ids", expanding=True))), {"ids": list(ids)}), rows)
            for r in rows:
                work.add(r.debit, 0, -r.amount)
                work.add(r.credit, 2, -r.amount)
                work.set_state(r.id, _EXPIRED)
            self._write(conn, work)
        return len(rows)

    def audit(self):
        """Accounts whose stored balance differs from the sum of their transfers, as
        ``{id: (stored Balance, recomputed Balance)}`` (empty: all agree)."""
        posted = (transfers.c.flags.op("&")(int(_F.PENDING | _F.VOID_PENDING)) == 0)
        pending = transfers.c.state == int(PendingState.PENDING)
        sums = {}
        with self.store.connect() as conn:
            for column, index in ((transfers.c.debit, 0), (transfers.c.credit, 2)):
                for cond, offset in ((pending, 0), (posted, 1)):
                    q = select(column, func.sum(transfers.c.amount)).where(cond).group_by(column)
                    for account, total in conn.execute(q):
                        sums.setdefault(account, [0, 0, 0, 0])[index + offset] = int(total)
        out = {}
        for account, stored in self.balances().items():
            derived = Balance(*sums.get(account, (0, 0, 0, 0)))
            if derived != stored:
                out[account] = (stored, derived)
        return out

    # -- internals -------------------------------------------------------------------------

    def _load(self, conn, batch):
        ids = {t.id for t in batch} | {t.pending_id for t in batch if t.pending_id}
        rows = conn.execute(select(transfers).where(
            transfers.c.id.in_(bindparam("ids", expanding=True))), {"ids": list(ids)}).all()
        names = {t.debit for t in batch} | {t.credit for t in batch}
        names |= {r.debit for r in rows} | {r.credit for r in rows}
        names.discard("")
        account_rows = conn.execute(select(accounts).where(
            accounts.c.id.in_(bindparam("ids", expanding=True))), {"ids": list(names)})
        return _Work(account_rows, rows)

    def _apply(self, work, batch, now):
        results = [None] * len(batch)
        linked = [int(t.flags) & _LINKED for t in batch]
        start = 0
        while start < len(batch):
            end = start
            while end < len(batch) - 1 and linked[end]:
                end += 1
            chain = range(start, end + 1)
            mark, new_mark = len(work.undo), len(work.new)
            open_chain = bool(linked[end])
            work.tracking = end > start or open_chain
            failed = None
            for i in chain:
                results[i] = Result.LINKED_EVENT_CHAIN_OPEN if open_chain else \
                    self._one(work, batch[i], now + i)
                if results[i] not in (Result.OK, Result.EXISTS):
                    failed = i
                    break
            if failed is not None and (len(chain) > 1 or open_chain):
                work.rollback(mark, new_mark)
                for i in chain:
                    if i != failed:
                        results[i] = Result.LINKED_EVENT_FAILED
            start = end + 1
        return results

    def _one(self, work, t, ts):
        flags = int(t.flags)
        if (flags & (_PENDING | _POST | _VOID)).bit_count() > 1:
            return Result.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        seen = work.find(t.id)
        if seen is not None:
            return self._exists(t, seen)
        if flags & (_POST | _VOID):
            return self._resolve(work, t, flags, ts)
        if t.amount <= 0:
            return Result.AMOUNT_MUST_NOT_BE_ZERO
        if t.debit == t.credit:
            return Result.ACCOUNTS_MUST_BE_DIFFERENT
        debit = work.accounts.get(t.debit)
        if debit is None:
            return Result.DEBIT_ACCOUNT_NOT_FOUND
        if t.credit not in work.accounts:
            return Result.CREDIT_ACCOUNT_NOT_FOUND
        limit = debit[4]
        if limit is not None and debit[3] - debit[1] - debit[0] - t.amount < -limit:
            return Result.EXCEEDS_CREDITS
        pending = flags & _PENDING
        work.add(t.debit, 0 if pending else 1, t.amount)
        work.add(t.credit, 2 if pending else 3, t.amount)
        row = self._row(t, flags, t.debit, t.credit, t.amount, ts)
        if pending:
            row["state"] = _IS_PENDING
            row["expires"] = ts + t.timeout * 10**9 if t.timeout else None
        work.create(row)
        return _OK

    def _resolve(self, work, t, flags, ts):
        if not t.pending_id:
            return Result.PENDING_ID_REQUIRED
        p = work.find(t.pending_id)
        if p is None or not p.flags & _PENDING:
            return Result.PENDING_TRANSFER_NOT_FOUND if p is None else \
                Result.PENDING_TRANSFER_NOT_PENDING
        state = work.state(t.pending_id)
        if state in _FINAL:
            return _FINAL[state]
        if p.expires is not None and p.expires <= ts:
            work.add(p.debit, 0, -p.amount)
            work.add(p.credit, 2, -p.amount)
            work.set_state(t.pending_id, _EXPIRED)
            return Result.PENDING_TRANSFER_EXPIRED
        amount = t.amount or p.amount
        if amount > p.amount:
            return Result.EXCEEDS_PENDING_TRANSFER_AMOUNT
        work.add(p.debit, 0, -p.amount)
        work.add(p.credit, 2, -p.amount)
        if flags & _POST:
            work.add(p.debit, 1, amount)
            work.add(p.credit, 3, amount)
            work.set_state(t.pending_id, _POSTED)
        else:
            amount = p.amount
            work.set_state(t.pending_id, _VOIDED)
        work.create(self._row(t, flags, p.debit, p.credit, amount, ts))
        return _OK

    @staticmethod
    def _exists(t, seen):
        same = (seen.flags & ~_LINKED) == (int(t.flags) & ~_LINKED) and \
            seen.pending_id == t.pending_id and \
            (not t.amount or seen.amount == t.amount) and \
            (not t.debit or seen.debit == t.debit) and (not t.credit or seen.credit == t.credit)
        return Result.EXISTS if same else Result.EXISTS_WITH_DIFFERENT_FIELDS

    @staticmethod
    def _row(t, flags, debit, credit, amount, ts):
        return {"id": t.id, "debit": debit, "credit": credit, "amount": amount,
                "flags": flags, "pending_id": t.pending_id, "timeout": t.timeout,
                "code": t.code, "ts": ts, "expires": None, "state": None}

    def _write(self, conn, work):
        """The batch's rows, states and balances: one executemany each, straight to the
        driver (SQLAlchemy's per-row parameter handling costs more than the database)."""
        sql = self.store.sql
        changed = []
        for pid, state in work.states.items():
            if pid in work.created:
                work.created[pid].row["state"] = int(state)
            else:
                changed.append((int(state), pid))
        if work.new:
            conn.exec_driver_sql(sql["insert_transfer"],
                                 [tuple(r[c] for c in TRANSFER_COLUMNS) for r in work.new])
        if changed:
            conn.exec_driver_sql(sql["set_state"], changed)
        if work.accounts:
            conn.exec_driver_sql(sql["set_balance"],
                                 [(v[0], v[1], v[2], v[3], k) for k, v in work.accounts.items()])


class _Row:
    """A transfer created in this batch, read like a loaded row (its dict is what is written)."""

    __slots__ = ("row",)

    def __init__(self, row):
        self.row = row

    def __getattr__(self, name):
        return self.row[name]
