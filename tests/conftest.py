"""Fixtures shared across test modules."""

import pytest
from pg_util import require_pg


@pytest.fixture
def pg_url():
    """The PostgreSQL test server's URL (skips, or fails under CI, without one)."""
    return require_pg()
