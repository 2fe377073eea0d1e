"""One small main-job run shared by the compliance tests (the job writes build/run/audit/)."""

import pytest

from tickwire.accounts.config import make_config, parse_config
from tickwire.cli.main import main

DATE = "2026-12-07"
CLIENTS = 3


def run_config():
    """The accounts the main job gives its firms (the audit replays the WAL with them)."""
    return parse_config(make_config(
        {f"c{i:02d}": {"firm": f"F{i:02d}", "password": "x", "max_order_qty": 100_000,
                       "stp": ("newest", "oldest", "both")[i % 3], "collar_pct": 25.0}
         for i in range(CLIENTS)}, n=2**4))


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["-q", "run", "--orders", "600", "--clients", str(CLIENTS), "--seed", "4",
                 "--symbols", "2", "--out", str(out), "--trade-date", DATE,
                 "--no-progress"]) == 0
    return out
