"""Ledger stores for the tests: a SQLite directory, and PostgreSQL when the server is there
(:mod:`pg_util` skips or fails the PostgreSQL cases without one)."""

import uuid

from pg_util import require_pg
from tickwire.clearing.ledger.store import open_store

BACKENDS = ["sqlite", "postgresql"]


def namespace():
    """A fresh schema namespace, so tests never see each other's ledgers."""
    return "t" + uuid.uuid4().hex[:12]


def store_for(backend, tmp_path, name, ns):
    if backend == "sqlite":
        return open_store(name, directory=str(tmp_path))
    return open_store(name, url=require_pg(), namespace=ns)
