"""Ledger stores for the tests: a SQLite directory, and PostgreSQL when the server is there.

``TICKWIRE_TEST_PG`` names the PostgreSQL server (``.ci/run`` starts one and sets it). Without
it, or with it unreachable, the PostgreSQL cases skip saying why, except under CI (``CI``
set), where a missing server fails them.
"""

import os
import uuid

import pytest
from tickwire.clearing.ledger.store import LedgerStoreError, open_store

PG_URL = os.environ.get("TICKWIRE_TEST_PG")
BACKENDS = ["sqlite", "postgresql"]


def _unavailable(why):
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required under CI: {why}")
    pytest.skip(f"PostgreSQL tests skipped: {why} (set TICKWIRE_TEST_PG="
                "postgresql+psycopg://tw:tw@127.0.0.1:5432/tw with a server running)")


def pg_url():
    """The test server's URL, or skip/fail as the module docstring says."""
    if not PG_URL:
        _unavailable("TICKWIRE_TEST_PG is not set")
    try:
        open_store("probe", url=PG_URL, namespace="twprobe").drop()
    except LedgerStoreError as exc:
        _unavailable(str(exc))
    return PG_URL


def namespace():
    """A fresh schema namespace, so tests never see each other's ledgers."""
    return "t" + uuid.uuid4().hex[:12]


def store_for(backend, tmp_path, name, ns):
    if backend == "sqlite":
        return open_store(name, directory=str(tmp_path))
    return open_store(name, url=pg_url(), namespace=ns)
