"""The buy-in's crash window: ``tickwire settle --buy-in`` SIGKILLed at each kill point from
recording the order's token to recording its result (before the order is sent, with it in
flight, after its fills, after the member's charge), then run again: the venue holds exactly
one buy-in order, its fills are recorded and charged exactly once."""

import json
import os
import signal
import subprocess
import sys

import pytest
from test_clearing_buyin import buy_in_args, offering_venue
from test_clearing_settle import BALANCES, _clear
from tickwire.clearing.closeout import FAILPOINTS
from tickwire.clearing.settle import open_ledgers
from tickwire.cli.main import main

INSTRUCTION = "2026-12-07:F02:ACME"       # F02 fails to deliver 300 ACME sold for $15,010


def _settle(out, venue, failpoint=""):
    env = dict(os.environ, TICKWIRE_FAILPOINTS=failpoint)
    return subprocess.run([sys.executable, "-m", "tickwire.cli.main", "-q", "settle", str(out),
                           "--date", "2026-12-08", *buy_in_args(venue)], check=False, env=env,
                          timeout=120, capture_output=True, text=True).returncode


@pytest.mark.parametrize("point, offered", [(p, 1000) for p in FAILPOINTS] +
                         [("buyin_charged", 200)])
def test_sigkill_in_the_buy_in_window_recovers_exactly(point, offered, tmp_path):
    poor = dict(BALANCES, shares={"ACME": 100, "BOLT": 10_000})
    out = _clear(tmp_path / "day", members={"F01": BALANCES, "F02": poor, "F03": BALANCES})
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    with offering_venue(tmp_path / "venue.wal", offered) as venue:     # at $50.50
        assert _settle(out, venue, point) == -signal.SIGKILL
        assert not (out / "settlement.json").read_text().count('"2026-12-08"')
        assert _settle(out, venue) == 0
        stream = venue.venue.gateway.streams.streams["ccp"]
    buy = json.loads((out / "settlement.json").read_text())["buy_ins"][INSTRUCTION]
    token = buy["token"].encode()
    # one order at the venue: one Accepted, and no duplicate-token reject of a second one
    assert sum(m[:1] == b"A" and token in m for m in stream) == 1
    assert not any(m[:1] == b"J" and token in m for m in stream)
    bought = min(offered, 300)
    assert (buy["bought"], buy["cost"]) == (bought, bought * 505000)
    assert buy["recovered"] == (point != "buyin_noted")
    assert buy["proceeds"] == 15_010 * 10_000 * bought // 300
    cash, securities = open_ledgers(str(out))
    try:
        assert cash.audit() == {} and securities.audit() == {}
        # charged once: opening + the BOLT sale that settled + proceeds − cost
        assert cash.balance("F02").posted == \
            (1_000_000 + 4000) * 10_000 + buy["proceeds"] - buy["cost"]
    finally:
        cash.store.dispose()
        securities.store.dispose()
    result = json.loads((out / "settlement.json").read_text())
    due = [d["shares"] for d in result["buy_ins_due"]]
    assert due == ([] if bought == 300 else [300 - bought])
