"""The regulator's store: a hot tier (SQL) and a warm tier (Parquet by date), one query.

Hot: table ``audit_records`` in SQLite (default ``sqlite:///AUDIT_DIR/hot.sqlite``) or
PostgreSQL (``postgresql+psycopg://...``), through SQLAlchemy 2, indexed by
``(client_id_hash, ts_us)``. Warm: ``AUDIT_DIR/warm/date=YYYY-MM-DD/records.parquet``
(pyarrow, sorted by ``client_id_hash`` in small row groups), read with DuckDB. Both hold the
same columns: ``trade_date``, ``idx`` (the record's index in that day's trail), ``ts_us``
(``timestamp_processed``, µs since the epoch), ``client_id_hash``, ``event_type``, ``record``
(the record's canonical JSON, as hashed into the tree).

:func:`age_out` moves whole days older than the hot window from hot to warm (the Parquet file
is complete before the rows leave the hot tier). :func:`query_client` hashes the client with
each day's salt, says what it will scan (:func:`plan`), and returns the same records from
either tier, in (date, index) order.
"""

import datetime
import json
import os
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
)

from tickwire.compliance.audit.canonical import canonical_json
from tickwire.compliance.audit.record import parse_iso_utc

__all__ = ["WARM_DIR", "WARM_ROW_GROUP", "AuditStore", "QueryPlan", "days_between", "hot_url"]

WARM_DIR = "warm"
WARM_ROW_GROUP = 16_384
"""Rows per Parquet row group of a warm day, written in ``client_id_hash`` order: a client's
rows fall in one or two row groups, and the query reads only those (their min/max statistics
exclude the rest): ~4 ms per day of 500,000 records instead of reading the whole day."""
_META = MetaData()
RECORDS = Table(
    "audit_records", _META,
    Column("trade_date", Date, primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("client_id_hash", String(64)),
    Column("event_type", String(32), nullable=False),
    Column("record", Text, nullable=False),
    Index("audit_client_time", "client_id_hash", "ts_us"),
)
_SCHEMA = pa.schema([("trade_date", pa.date32()), ("idx", pa.int32()), ("ts_us", pa.int64()),
                     ("client_id_hash", pa.string()), ("event_type", pa.string()),
                     ("record", pa.string())])


def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite hot tier: write-ahead logging, synced at checkpoints, and a 256 MB page cache
    (a day's random-order index inserts on a 10 M-row table otherwise wait on the disk). A
    power cut can lose the last loads, never corrupt the file: the trail, not the hot tier,
    is the record (``tickwire audit ingest`` reloads a day)."""
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def hot_url(audit_dir):
    """The default hot tier of an audit directory (SQLite)."""
    return f"sqlite:///{os.path.abspath(os.path.join(audit_dir, 'hot.sqlite'))}"


def days_between(first, last):
    """Every date from ``first`` to ``last`` inclusive."""
    return [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class QueryPlan:
    """What a query will scan, said before it runs."""
    days: list
    hot_url: str
    hot_days: list
    hot_rows: int
    warm_files: list
    warm_bytes: int

    def describe(self):
        safe = self.hot_url.split("@")[-1] if "@" in self.hot_url else self.hot_url
        return (f"scan plan: {len(self.days)} daily client hashes; hot tier {safe}: "
                f"{self.hot_rows:,} rows on {len(self.hot_days)} day(s) in range, searched "
                f"through index audit_client_time; warm tier: {len(self.warm_files)} Parquet "
                f"partition(s), {self.warm_bytes:,} bytes"
                + (f" ({', '.join(os.path.basename(os.path.dirname(f)) for f in self.warm_files)})"
                   if self.warm_files else ""))


class AuditStore:
    """The hot and warm tiers of one audit directory.

    Parameters
    ----------
    audit_dir : str
    url : str, optional
        SQLAlchemy URL of the hot tier (default: SQLite in the audit directory).
    """

    def __init__(self, audit_dir, url=None):
        self.audit_dir = audit_dir
        self.url = url or hot_url(audit_dir)
        self.engine = create_engine(self.url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _META.create_all(self.engine)
        self.warm_dir = os.path.join(audit_dir, WARM_DIR)

    def close(self):
        self.engine.dispose()

    # -- loading ---------------------------------------------------------------------------

    @staticmethod
    def rows(trade_date, records):
        """Tier rows of a day's record objects (``index`` and record fields)."""
        out = []
        for obj in records:
            body = {k: v for k, v in obj.items() if k not in ("kind", "index")}
            out.append({"trade_date": trade_date, "idx": obj["index"],
                        "ts_us": parse_iso_utc(body["timestamp_processed"]),
                        "client_id_hash": body.get("client_id_hash"),
                        "event_type": body["event_type"],
                        "record": canonical_json(body).decode()})
        return out

    def load_day(self, trade_date, records):
        """Put a day's records into the hot tier (replacing that day's rows); return the count."""
        return self.load_rows(trade_date, self.rows(trade_date, records))

    def load_rows(self, trade_date, rows, batch=20_000):
        """Put a day's tier rows (:meth:`rows`) into the hot tier, replacing that day's."""
        with self.engine.begin() as conn:
            conn.execute(delete(RECORDS).where(RECORDS.c.trade_date == trade_date))
            for start in range(0, len(rows), batch):
                conn.execute(RECORDS.insert(), rows[start:start + batch])
            self._analyze(conn)
        return len(rows)

    def _analyze(self, conn):
        """Refresh the planner's statistics: without them SQLite answers "this client on that
        day" through the primary key (every row of the day) instead of ``audit_client_time``
        (the client's rows): seconds instead of milliseconds on a 10 M-record store. SQLite
        samples (``analysis_limit``), PostgreSQL's ANALYZE always does."""
        if self.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql(f"ANALYZE {RECORDS.name}")

    def hot_days(self):
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(
                select(RECORDS.c.trade_date).distinct().order_by(RECORDS.c.trade_date))]

    def warm_file(self, day):
        return os.path.join(self.warm_dir, f"date={day.isoformat()}", "records.parquet")

    def warm_days(self):
        if not os.path.isdir(self.warm_dir):
            return []
        return sorted(datetime.date.fromisoformat(name[5:]) for name in os.listdir(self.warm_dir)
                      if name.startswith("date=") and os.path.exists(
                          os.path.join(self.warm_dir, name, "records.parquet")))

    def age_out(self, today, hot_days=90):
        """Move every day older than ``hot_days`` before ``today`` to the warm tier; return the
        days moved."""
        cutoff = today - datetime.timedelta(days=hot_days)
        moved = []
        for day in self.hot_days():
            if day >= cutoff:
                continue
            with self.engine.connect() as conn:
                rows = conn.execute(select(*RECORDS.c).where(RECORDS.c.trade_date == day)
                                    .order_by(RECORDS.c.idx)).all()
            columns = dict(zip(_SCHEMA.names, zip(*rows))) if rows else \
                {name: () for name in _SCHEMA.names}
            table = pa.table({n: pa.array(v, type=_SCHEMA.field(n).type)
                              for n, v in columns.items()}, schema=_SCHEMA)
            del rows, columns
            path = self.warm_file(day)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            table = table.sort_by([("client_id_hash", "ascending"), ("idx", "ascending")])
            pq.write_table(table, path + ".partial", row_group_size=WARM_ROW_GROUP)
            os.replace(path + ".partial", path)
            with self.engine.begin() as conn:
                conn.execute(delete(RECORDS).where(RECORDS.c.trade_date == day))
                self._analyze(conn)
            moved.append(day)
        return moved

    # -- the regulator's query ---------------------------------------------------------------

    def plan(self, days):
        in_range = set(days)
        hot = [d for d in self.hot_days() if d in in_range]
        with self.engine.connect() as conn:
            hot_rows = conn.execute(select(func.count()).select_from(RECORDS).where(
                RECORDS.c.trade_date.in_(hot))).scalar() if hot else 0
        files = [self.warm_file(d) for d in self.warm_days() if d in in_range]
        return QueryPlan(list(days), self.url, hot, hot_rows, files,
                         sum(os.path.getsize(f) for f in files))

    def query(self, plan, hashes):
        """Records whose ``client_id_hash`` is that day's hash, from both tiers.

        ``hashes`` maps each day to the client's hash that day (days without one are skipped).
        Returns [(trade_date, index, tier, record object)] in (date, index) order.
        """
        wanted = [(d, h) for d, h in hashes.items() if h is not None]
        out = []
        hot_days = set(plan.hot_days)
        hot_pairs = [(d, h) for d, h in wanted if d in hot_days]
        if hot_pairs:
            with self.engine.connect() as conn:
                for day, h in hot_pairs:        # a day's trail may hold later settlements
                    for r in conn.execute(
                            select(RECORDS.c.trade_date, RECORDS.c.idx, RECORDS.c.record)
                            .where(RECORDS.c.client_id_hash == h,
                                   RECORDS.c.trade_date == day)):
                        out.append((r[0], r[1], "hot", json.loads(r[2])))
        files = set(plan.warm_files)
        warm_pairs = [(d, h) for d, h in wanted
                      if d not in hot_days and self.warm_file(d) in files]
        if warm_pairs:
            con = duckdb.connect()
            try:
                for day, h in warm_pairs:      # one equality per file: row groups skipped
                    out += [(d, i, "warm", json.loads(rec)) for d, i, rec in con.execute(
                        "select trade_date, idx, record from read_parquet(?) "
                        "where client_id_hash = ?", [self.warm_file(day), h]).fetchall()]
            finally:
                con.close()
        out.sort(key=lambda t: (t[0], t[1]))
        return out
