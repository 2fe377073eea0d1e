"""The PostgreSQL test server, shared by every test that needs one (ledgers, audit hot tier).

``TICKWIRE_TEST_PG`` names it (``.ci/run`` starts Debian's server and sets it). Without it, or
with it unreachable, the PostgreSQL cases skip saying why; under CI (``CI=true``) a missing
server fails them (``CI=true`` or ``.ci/run``'s ``TICKWIRE_CI``), because CI must run them. The ``pg_url`` fixture in ``conftest.py`` wraps
:func:`require_pg`.
"""

import functools
import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["ENV", "require_pg"]

ENV = "TICKWIRE_TEST_PG"
_HINT = (f"set {ENV}=postgresql+psycopg://tw:tw@127.0.0.1:5432/tw with a server running "
         "(pg_ctlcluster 15 main start; .ci/run does it)")


@functools.cache
def _problem(url):
    """Why the server at ``url`` cannot be used, or None (asked once per test run)."""
    if not url:
        return f"{ENV} is not set"
    try:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        return f"no PostgreSQL at {ENV} ({str(exc).splitlines()[0]})"
    return None


def require_pg():
    """The server's URL; else skip the test (fail it under ``CI=true``)."""
    url = os.environ.get(ENV)
    why = _problem(url)
    if why is None:
        return url
    if os.environ.get("CI") == "true" or os.environ.get("TICKWIRE_CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {why}")
    pytest.skip(f"PostgreSQL tests skipped: {why}; {_HINT}")
