"""Where a ledger lives: SQLAlchemy on a SQLite file (default) or PostgreSQL (by URL).

The same tables and statements on both. On PostgreSQL each ledger is its own schema
(``<namespace>_<ledger>``, e.g. ``tw_cash``), so the two ledgers never share a table; on
SQLite each is its own file. A writer takes the ledger's lock first: ``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL.
"""

import json
import os
import zlib

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

__all__ = [
    "LedgerStoreError",
    "Store",
    "accounts",
    "clock",
    "metadata",
    "normalize_url",
    "open_store",
    "transfers",
]

metadata = MetaData()

accounts = Table(
    "accounts", metadata,
    Column("id", String(64), primary_key=True),
    Column("credit_limit", BigInteger, nullable=True),      # NULL: no limit
    Column("debits_pending", BigInteger, nullable=False, default=0),
    Column("debits_posted", BigInteger, nullable=False, default=0),
    Column("credits_pending", BigInteger, nullable=False, default=0),
    Column("credits_posted", BigInteger, nullable=False, default=0),
    sqlite_with_rowid=False,        # one b-tree keyed by id, not a rowid table plus its index
)

transfers = Table(
    "transfers", metadata,
    Column("id", String(128), primary_key=True),
    Column("debit", String(64), nullable=False),
    Column("credit", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("flags", Integer, nullable=False),
    Column("pending_id", String(128), nullable=True),
    Column("timeout", BigInteger, nullable=False),
    Column("code", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),               # ledger time, ns, unique, rising
    Column("expires", BigInteger, nullable=True),           # pending: ts + timeout
    Column("state", SmallInteger, nullable=True),           # pending: PendingState
    sqlite_with_rowid=False,
)

# The latest transfer timestamp, one row (id 1): a batch reads and writes it once, where an
# index on ``ts`` would cost an insert per transfer. Empty in a ledger written before it
# existed: the first batch starts it from max(ts).
clock = Table(
    "ledger_clock", metadata,
    Column("id", Integer, primary_key=True),
    Column("last_ts", BigInteger, nullable=False),
)


TRANSFER_COLUMNS = tuple(c.name for c in transfers.columns)


class LedgerStoreError(RuntimeError):
    """The ledger's database cannot be reached or used."""


def normalize_url(url):
    """``postgresql://`` means psycopg 3 here (SQLAlchemy's default driver is psycopg2)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """One ledger's engine, its tables' schema and its write lock."""

    def __init__(self, engine, schema, lock_key):
        self.engine, self.schema, self.lock_key = engine, schema, lock_key
        self.postgres = engine.dialect.name == "postgresql"
        self.options = {"schema_translate_map": {None: schema}} if schema else {}
        self.sql = self._statements()

    def _statements(self):
        """The batch writes as driver SQL (the hot path skips SQLAlchemy's parameter work)."""
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        prefix = f'"{self.schema}".' if self.schema else ""
        # a list of ids as one bound parameter: the statement text never changes with its size
        ids = f"= ANY({mark})" if self.postgres else f"IN (SELECT value FROM json_each({mark}))"
        return {
            "insert_transfer": f"INSERT INTO {prefix}transfers ({', '.join(TRANSFER_COLUMNS)}) "
                               f"VALUES ({', '.join([mark] * len(TRANSFER_COLUMNS))})",
            "copy_transfers": f"COPY {prefix}transfers ({', '.join(TRANSFER_COLUMNS)}) "
                              "FROM STDIN",
            "set_state": f"UPDATE {prefix}transfers SET state = {mark} WHERE id {ids}",
            "set_balance": f"UPDATE {prefix}accounts SET debits_pending = {mark}, "
                           f"debits_posted = {mark}, credits_pending = {mark}, "
                           f"credits_posted = {mark} WHERE id = {mark}",
            "load_transfers": f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM {prefix}transfers "
                              f"WHERE id {ids}",
            "load_accounts": f"SELECT id, debits_pending, debits_posted, credits_pending, "
                             f"credits_posted, credit_limit FROM {prefix}accounts WHERE id {ids}",
            "max_ts": f"SELECT max(ts) FROM {prefix}transfers",
            "last_ts": f"SELECT last_ts FROM {prefix}ledger_clock WHERE id = 1",
            "set_last_ts": f"INSERT INTO {prefix}ledger_clock (id, last_ts) VALUES (1, {mark}) "
                           "ON CONFLICT (id) DO UPDATE SET last_ts = excluded.last_ts",
        }

    def insert_transfers(self, cursor, rows):
        """Insert transfer rows (lists in the table's column order) on the DBAPI ``cursor``:
        PostgreSQL's COPY (a third of the time of one INSERT per row), else executemany. A
        stored id raises the driver's IntegrityError either way."""
        if self.postgres:
            with cursor.copy(self.sql["copy_transfers"]) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(self.sql["insert_transfer"], rows)

    def id_list(self, ids):
        """The one parameter of an ``id`` list: a PostgreSQL array, a JSON array on SQLite."""
        return ids if self.postgres else json.dumps(ids)

    def connect(self):
        return self.engine.connect().execution_options(**self.options)

    def begin_write(self, conn):
        """Begin a transaction holding the ledger's write lock."""
        tx = conn.begin()
        if self.postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.lock_key})
        return tx

    def drop(self):
        """Remove the ledger's tables (tests and benchmarks)."""
        with self.connect() as conn, conn.begin():
            if self.postgres:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            else:
                metadata.drop_all(conn)

    def dispose(self):
        self.engine.dispose()


def _sqlite_engine(path):
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None     # SQLAlchemy issues BEGIN itself
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_store(name, directory=None, url=None, namespace="tw"):
    """The store of ledger ``name`` (``cash``, ``securities``), its tables created.

    Parameters
    ----------
    directory : str
        SQLite: the file is ``<directory>/<name>.db`` (when no ``url``).
    url : str
        A PostgreSQL URL (``postgresql://`` or ``postgresql+psycopg://``): schema
        ``<namespace>_<name>``; or a SQLite URL ``sqlite:///DIR`` naming the directory.

    Raises
    ------
    LedgerStoreError
        Unreachable server, bad URL, unwritable file: nothing has been written.
    """
    try:
        if url and not url.startswith("sqlite"):
            parsed = make_url(normalize_url(url))
            if parsed.get_backend_name() != "postgresql":
                raise LedgerStoreError(f"--db {url}: only postgresql:// and sqlite:/// URLs")
            engine = create_engine(parsed, pool_pre_ping=True)
            schema = f"{namespace}_{name}"
            store = Store(engine, schema, zlib.crc32(schema.encode()))
            with engine.connect() as conn, conn.begin():
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        else:
            if url:
                directory = make_url(url).database or "."
            os.makedirs(directory, exist_ok=True)
            store = Store(_sqlite_engine(os.path.join(directory, f"{name}.db")), None, 0)
        with store.connect() as conn, store.begin_write(conn):
            metadata.create_all(conn)
        return store
    except LedgerStoreError:
        raise
    except (OperationalError, ArgumentError, SQLAlchemyError, OSError) as exc:
        where = url or directory
        raise LedgerStoreError(f"ledger {name}: cannot open {where}: "
                               f"{str(exc).splitlines()[0]}") from exc
