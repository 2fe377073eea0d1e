"""A double-entry ledger with two-phase and linked transfers (TigerBeetle's model) in SQL.

:meth:`Ledger.create_transfers` applies a batch in one database transaction under the ledger's
write lock: it reads the accounts and the pending transfers the batch touches, applies the
transfers in order in memory (each checked against the balances the earlier ones left), then
writes the new transfers, the pending transfers' new states and the accounts' balances with one
statement each. So a batch costs a handful of round trips however many transfers it holds, and
a crash leaves it entirely applied or not at all. The batch's own ids are not looked up first
(new ids are the rule): a batch with a refusal is applied again with them looked up, since a
stored id answers ``EXISTS`` before any other check, and one stored under a transfer that was
accepted fails the insert on the primary key, so the batch is done again in a new transaction.

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
_PHASES = _PENDING | _POST | _VOID
_RESOLVE = _POST | _VOID
# where a transfer row (a list in the table's column order) keeps each field
_ID, _DEBIT, _CREDIT, _AMOUNT, _FLAGS, _PENDING_ID, _TIMEOUT, _CODE, _TS, _EXPIRES, _STATE = (
    TRANSFER_COLUMNS.index(c) for c in ("id", "debit", "credit", "amount", "flags",
                                        "pending_id", "timeout", "code", "ts", "expires",
                                        "state"))


class AccountExists(ValueError):
    """An account created again with a different credit limit."""


class _Work:
    """The batch's view: account balances and transfers (rows as lists in the table's column
    order), changed in memory."""

    def __init__(self, account_rows, transfer_rows):
        # id -> [debits_pending, debits_posted, credits_pending, credits_posted, limit]
        self.accounts = {r[0]: list(r[1:]) for r in account_rows}
        self.existing = {r[_ID]: r for r in transfer_rows}
        self.created = {}           # id -> row of the transfers this batch creates
        self.states = {}            # pending id -> new PendingState
        self.new = []               # rows to insert
        self.undo = []              # kept only inside a linked chain (the only rollback)
        self.tracking = False

    def find(self, transfer_id):
        return self.existing.get(transfer_id) or self.created.get(transfer_id)

    def create(self, row):
        self.new.append(row)
        self.created[row[_ID]] = row

    def state(self, pending_id):
        if pending_id in self.states:
            return self.states[pending_id]
        row = self.find(pending_id)
        return None if row is None else row[_STATE]

    def move(self, debit, credit, debit_index, credit_index, amount):
        """Add ``amount`` to one total of each side."""
        self.accounts[debit][debit_index] += amount
        self.accounts[credit][credit_index] += amount
        if self.tracking:
            self.undo.append(("acct", debit, debit_index, amount))
            self.undo.append(("acct", credit, credit_index, amount))

    def set_state(self, pending_id, state):
        if self.tracking:
            self.undo.append(("state", pending_id, self.states.get(pending_id)))
        self.states[pending_id] = state

    def rollback(self, mark, new_mark):
        for row in self.new[new_mark:]:
            del self.created[row[_ID]]
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
        try:
            return self._create(batch, look_up_ids=False)
        except self.store.engine.dialect.dbapi.IntegrityError:   # rolled back: an id is stored
            return self._create(batch, look_up_ids=True)

    def _create(self, batch, look_up_ids):
        with self.store.connect() as conn, self.store.begin_write(conn):
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                work = self._load(cursor, batch, look_up_ids)
                now = max(self.clock(), self._last_ts(cursor) + 1)
                results = self._apply(work, batch, now)
                if not look_up_ids and any(r is not _OK for r in results):
                    work = self._load(cursor, batch, True)
                    results = self._apply(work, batch, now)
                self._write(cursor, work)
                cursor.execute(self.store.sql["set_last_ts"], (now + len(batch),))
            finally:
                cursor.close()
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
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                work = _Work(self._rows(cursor, "load_accounts", ids), [list(r) for r in rows])
                for r in rows:
                    work.move(r.debit, r.credit, 0, 2, -r.amount)
                    work.set_state(r.id, _EXPIRED)
                self._write(cursor, work)
            finally:
                cursor.close()
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

    def _last_ts(self, cursor):
        sql = self.store.sql
        cursor.execute(sql["last_ts"])
        row = cursor.fetchone()
        if row is None:                 # a ledger from before the clock row
            cursor.execute(sql["max_ts"])
            row = cursor.fetchone()
        return row[0] or 0

    def _rows(self, cursor, statement, ids):
        """Rows (tuples) of the driver statement ``statement`` for ``ids``: one round trip,
        on the DBAPI cursor (the hot path skips SQLAlchemy's result handling)."""
        cursor.execute(self.store.sql[statement], (self.store.id_list(list(ids)),))
        return cursor.fetchall()

    def _load(self, cursor, batch, look_up_ids):
        """The batch's :class:`_Work`: the accounts and pending transfers it names (and, when
        ``look_up_ids``, its own ids that are stored already)."""
        ids = {t.pending_id for t in batch if t.pending_id}
        if look_up_ids:
            ids |= {t.id for t in batch}
        rows = self._rows(cursor, "load_transfers", ids) if ids else []
        names = {t.debit for t in batch} | {t.credit for t in batch}
        names |= {r[_DEBIT] for r in rows} | {r[_CREDIT] for r in rows}
        names.discard("")
        return _Work(self._rows(cursor, "load_accounts", names), rows)

    def _apply(self, work, batch, now):
        linked = [int(t.flags) & _LINKED for t in batch]
        if not any(linked):             # no chain: each transfer stands alone
            one = self._one
            return [one(work, t, now + i) for i, t in enumerate(batch)]
        results = [None] * len(batch)
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
        if (flags & _PHASES).bit_count() > 1:
            return Result.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        seen = work.existing.get(t.id) or work.created.get(t.id)
        if seen is not None:
            return self._exists(t, seen)
        if flags & _RESOLVE:
            return self._resolve(work, t, flags, ts)
        amount, debit_id, credit_id = t.amount, t.debit, t.credit
        if amount <= 0:
            return Result.AMOUNT_MUST_NOT_BE_ZERO
        if debit_id == credit_id:
            return Result.ACCOUNTS_MUST_BE_DIFFERENT
        accounts = work.accounts
        debit = accounts.get(debit_id)
        if debit is None:
            return Result.DEBIT_ACCOUNT_NOT_FOUND
        if credit_id not in accounts:
            return Result.CREDIT_ACCOUNT_NOT_FOUND
        limit = debit[4]
        if limit is not None and debit[3] - debit[1] - debit[0] - amount < -limit:
            return Result.EXCEEDS_CREDITS
        if flags & _PENDING:
            work.move(debit_id, credit_id, 0, 2, amount)
            row = [t.id, debit_id, credit_id, amount, flags, t.pending_id, t.timeout, t.code,
                   ts, ts + t.timeout * 10**9 if t.timeout else None, _IS_PENDING]
        else:
            work.move(debit_id, credit_id, 1, 3, amount)
            row = [t.id, debit_id, credit_id, amount, flags, t.pending_id, t.timeout, t.code,
                   ts, None, None]
        work.new.append(row)
        work.created[t.id] = row
        return _OK

    def _resolve(self, work, t, flags, ts):
        pending_id = t.pending_id
        if not pending_id:
            return Result.PENDING_ID_REQUIRED
        p = work.find(pending_id)
        if p is None:
            return Result.PENDING_TRANSFER_NOT_FOUND
        if not p[_FLAGS] & _PENDING:
            return Result.PENDING_TRANSFER_NOT_PENDING
        state = work.states[pending_id] if pending_id in work.states else p[_STATE]
        if state in _FINAL:
            return _FINAL[state]
        debit, credit, reserved, expires = p[_DEBIT], p[_CREDIT], p[_AMOUNT], p[_EXPIRES]
        if expires is not None and expires <= ts:
            work.move(debit, credit, 0, 2, -reserved)
            work.set_state(pending_id, _EXPIRED)
            return Result.PENDING_TRANSFER_EXPIRED
        amount = t.amount or reserved
        if amount > reserved:
            return Result.EXCEEDS_PENDING_TRANSFER_AMOUNT
        work.move(debit, credit, 0, 2, -reserved)
        if flags & _POST:
            work.move(debit, credit, 1, 3, amount)
            work.set_state(pending_id, _POSTED)
        else:
            amount = reserved
            work.set_state(pending_id, _VOIDED)
        row = [t.id, debit, credit, amount, flags, pending_id, t.timeout, t.code, ts, None, None]
        work.new.append(row)
        work.created[t.id] = row
        return _OK

    @staticmethod
    def _exists(t, seen):
        same = (seen[_FLAGS] & ~_LINKED) == (int(t.flags) & ~_LINKED) and \
            seen[_PENDING_ID] == t.pending_id and \
            (not t.amount or seen[_AMOUNT] == t.amount) and \
            (not t.debit or seen[_DEBIT] == t.debit) and \
            (not t.credit or seen[_CREDIT] == t.credit)
        return Result.EXISTS if same else Result.EXISTS_WITH_DIFFERENT_FIELDS

    def _write(self, cursor, work):
        """The batch's rows (:meth:`Store.insert_transfers`), states and balances, one
        statement each on the DBAPI cursor (SQLAlchemy's per-row parameter handling costs more
        than the database)."""
        sql = self.store.sql
        changed = {}                # new state -> ids of the stored pending transfers
        for pid, state in work.states.items():
            if pid in work.created:
                work.created[pid][_STATE] = int(state)
            else:
                changed.setdefault(int(state), []).append(pid)
        if work.new:
            self.store.insert_transfers(cursor, work.new)
        for state, ids in changed.items():      # one statement per state, not per transfer
            cursor.execute(sql["set_state"], (state, self.store.id_list(ids)))
        if work.accounts:
            cursor.executemany(sql["set_balance"],
                               [(v[0], v[1], v[2], v[3], k) for k, v in work.accounts.items()])
