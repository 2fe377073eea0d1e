"""The CCP's coordinator log: the settlement instructions and where each one is in DVP.

A SQLite file (``ccp.db`` in the clearing directory, synchronous writes) apart from both
ledgers. Each instruction's ``phase`` moves ``open → preparing → commit | abort → settled |
failed``; ``commit``/``abort`` is the decision, logged before either ledger is told, so after
a crash the log says what every instruction must become. ``failed`` instructions are open
fails, retried on the following days; ``fails`` keeps one row per failed attempt (aging).
"""

import datetime as dt
import sqlite3
from dataclasses import dataclass

__all__ = ["PHASES", "CoordinatorLog", "Instruction"]

PHASES = ("open", "preparing", "commit", "abort", "settled", "failed", "closed_out",
          "defaulted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instructions (
    id TEXT PRIMARY KEY, member TEXT NOT NULL, symbol TEXT NOT NULL, qty INTEGER NOT NULL,
    cash INTEGER NOT NULL, due TEXT NOT NULL, phase TEXT NOT NULL, attempt INTEGER NOT NULL,
    reason TEXT, settled_on TEXT, last_try TEXT);
CREATE TABLE IF NOT EXISTS fails (
    instruction TEXT NOT NULL, date TEXT NOT NULL, attempt INTEGER NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (instruction, attempt));
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY, date TEXT NOT NULL, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
    key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cycles (
    date TEXT PRIMARY KEY, summary TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One DVP instruction against the CCP: the member receives ``qty`` shares of ``symbol``
    and ``cash`` (1/10000 $); negative: it delivers / pays."""
    id: str
    member: str
    symbol: str
    qty: int
    cash: int
    due: str
    phase: str = "open"
    attempt: int = 0
    reason: str | None = None

    def leg_id(self, leg, attempt=None):
        return f"dvp:{self.id}:{self.attempt if attempt is None else attempt}:{leg}"


class CoordinatorLog:
    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self):
        self.db.close()

    def _tx(self, sql, rows):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(sql, rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def register(self, instructions):
        """Add instructions not yet known (their ids fix them: registering twice is a no-op)."""
        self._tx("INSERT OR IGNORE INTO instructions (id, member, symbol, qty, cash, due, "
                 "phase, attempt) VALUES (?, ?, ?, ?, ?, ?, 'open', 0)",
                 [(i.id, i.member, i.symbol, i.qty, i.cash, i.due) for i in instructions])

    def instructions(self, phases=None):
        q = "SELECT id, member, symbol, qty, cash, due, phase, attempt, reason FROM instructions"
        args = ()
        if phases is not None:
            q += f" WHERE phase IN ({','.join('?' * len(phases))})"
            args = tuple(phases)
        return [Instruction(*r) for r in self.db.execute(q + " ORDER BY id", args)]

    def cycle_instructions(self, date):
        """Everything the cycle of ``date`` deals with, done or not: what was not yet settled
        or closed out when it began (so a restarted cycle cuts the same batches)."""
        return [Instruction(*r) for r in self.db.execute(
            "SELECT id, member, symbol, qty, cash, due, phase, attempt, reason FROM "
            "instructions WHERE phase NOT IN ('settled', 'closed_out', 'defaulted') "
            "OR settled_on = ? "
            "ORDER BY id", (date,))]

    def due_today(self, date):
        """Ids still to attempt on ``date``: open, or failed on an earlier date."""
        return {r[0] for r in self.db.execute(
            "SELECT id FROM instructions WHERE phase = 'open' OR (phase = 'failed' AND "
            "last_try < ?)", (date,))}

    def begin(self, batch):
        """Attempt ``batch`` once more: phase ``preparing``, attempt + 1."""
        self._tx("UPDATE instructions SET phase = 'preparing', attempt = attempt + 1 "
                 "WHERE id = ?", [(i.id,) for i in batch])

    def decide(self, decisions):
        """Log ``(instruction id, "commit" | "abort", reason)`` for each instruction."""
        self._tx("UPDATE instructions SET phase = ?, reason = ? WHERE id = ?",
                 [(d, r, i) for i, d, r in decisions])

    def finish(self, settled, failed, date):
        """The decided instructions are done: ``settled`` ids, ``failed`` (id, attempt,
        kind)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("UPDATE instructions SET phase = 'settled', settled_on = ?, "
                                "last_try = ? WHERE id = ?", [(date, date, i) for i in settled])
            self.db.executemany("UPDATE instructions SET phase = 'failed', last_try = ? "
                                "WHERE id = ?", [(date, i) for i, _, _ in failed])
            self.db.executemany("INSERT OR IGNORE INTO fails VALUES (?, ?, ?, ?)",
                                [(i, date, a, k) for i, a, k in failed])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def mark(self, instruction_id, phase, detail=None):
        """End a failed instruction's life outside DVP (``closed_out``, ``defaulted``)."""
        self._tx("UPDATE instructions SET phase = ?, reason = COALESCE(?, reason) WHERE id = ?",
                 [(phase, detail, instruction_id)])

    def record_buy_in(self, instruction_id, key, record_json, left):
        """A buy-in's result under ``key`` and its effect, in one transaction: the
        instruction ``closed_out`` (``left`` None), or shrunk to ``left`` = (qty, cash)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT INTO notes VALUES (?, ?)", (key, record_json))
            if left is None:
                self.db.execute("UPDATE instructions SET phase = 'closed_out', reason = "
                                "'bought_in' WHERE id = ?", (instruction_id,))
            else:
                self.db.execute("UPDATE instructions SET qty = ?, cash = ? WHERE id = ?",
                                (*left, instruction_id))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def note(self, key, value):
        """Keep ``value`` (text) under ``key``, once."""
        self._tx("INSERT OR IGNORE INTO notes VALUES (?, ?)", [(key, value)])

    def notes(self, prefix):
        return list(self.db.execute("SELECT key, value FROM notes WHERE key LIKE ? ORDER BY key",
                                    (prefix + "%",)))

    def reopen(self, ids):
        """A crash interrupted these before a decision: back to ``open`` (their legs voided)."""
        self._tx("UPDATE instructions SET phase = 'open' WHERE id = ?", [(i,) for i in ids])

    def fails(self):
        """[(instruction, date, attempt, kind)] in order."""
        return list(self.db.execute("SELECT * FROM fails ORDER BY instruction, attempt"))

    def settled_date(self, instruction_id):
        """The date an instruction settled, or None."""
        row = self.db.execute("SELECT settled_on FROM instructions WHERE id = ? AND phase = "
                              "'settled'", (instruction_id,)).fetchone()
        return None if row is None else dt.date.fromisoformat(row[0])

    def applied(self, action_id):
        """The summary (JSON text) of a corporate action already applied, or None."""
        row = self.db.execute("SELECT summary FROM actions WHERE id = ?", (action_id,)).fetchone()
        return None if row is None else row[0]

    def apply_action(self, action_id, date, summary_json, quantities=()):
        """Record a corporate action as applied, with the open instructions' new quantities
        ``(id, qty)``, in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("UPDATE instructions SET qty = ? WHERE id = ?",
                                [(q, i) for i, q in quantities])
            self.db.execute("INSERT INTO actions VALUES (?, ?, ?)",
                            (action_id, date, summary_json))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def actions(self):
        return list(self.db.execute("SELECT id, date, summary FROM actions ORDER BY id"))

    def cycle(self, date):
        row = self.db.execute("SELECT summary FROM cycles WHERE date = ?", (date,)).fetchone()
        return None if row is None else row[0]

    def last_cycle(self):
        """The date (ISO) of the latest settlement cycle run to its end, or None."""
        return self.db.execute("SELECT max(date) FROM cycles").fetchone()[0]

    def close_cycle(self, date, summary_json):
        self._tx("INSERT INTO cycles VALUES (?, ?)", [(date, summary_json)])

    def settled_on(self, date):
        return [Instruction(*r) for r in self.db.execute(
            "SELECT id, member, symbol, qty, cash, due, phase, attempt, reason FROM "
            "instructions WHERE settled_on = ? ORDER BY id", (date,))]
