"""The CCP's buy-in of a fail to deliver past its close-out date: a real IOC buy through the
venue's OUCH gateway as the CCP's own account; the failing member charged the cost."""

import asyncio
import contextlib
import json
import threading

from clearing_util import config_dict
from test_clearing_settle import BALANCES, _clear
from tickwire.accounts.config import make_config, parse_config
from tickwire.clearing.settle import open_ledgers
from tickwire.cli.main import main
from tickwire.gateways.ouch.client import OuchClient
from tickwire.ops.serve import Venue


class _VenueThread(threading.Thread):
    """A venue serving on 127.0.0.1 from its own event loop."""

    def __init__(self, config, wal):
        super().__init__(daemon=True)
        self.config, self.wal = config, wal
        self.ready, self.stop = threading.Event(), threading.Event()

    def run(self):
        async def serve():
            venue = self.venue = Venue(self.config, self.wal, feed=False,
                                       trade_date="2026-12-08")
            await venue.start()
            self.port = venue.gateway.port
            self.ready.set()
            while not self.stop.is_set():
                await asyncio.sleep(0.02)
            await venue.stop()
        asyncio.run(serve())


async def _rest_offer(port, shares, price):
    accepted = asyncio.Event()
    client = OuchClient(lambda n, record, raw: raw[:1] == b"A" and accepted.set())
    await client.connect("127.0.0.1", port, "seller", "pw")
    client.enter("offer1", "S", shares, "ACME", price)
    await asyncio.wait_for(accepted.wait(), 5)
    await client.logout()


@contextlib.contextmanager
def offering_venue(wal, shares, price=505000):
    """A venue (accounts ``seller`` of F09 and ``ccp`` of the CCP, password ``ccp-pw``) where
    ``shares`` ACME rest offered at ``price`` (1/10000 $; $50.50); yields its thread."""
    venue_config = make_config({"seller": {"firm": "F09", "password": "pw"},
                                "ccp": {"firm": "CCP", "password": "ccp-pw"}},
                               symbols=config_dict()["symbols"], n=2**10)
    venue = _VenueThread(parse_config(venue_config), str(wal))
    venue.start()
    assert venue.ready.wait(10)
    try:
        asyncio.run(_rest_offer(venue.port, shares, price))
        yield venue
    finally:
        venue.stop.set()
        venue.join(10)


def buy_in_args(venue):
    return ["--buy-in", f"127.0.0.1:{venue.port}", "--ccp-login", "ccp:ccp-pw"]


def test_buy_in_through_the_gateway_closes_out_the_fail(tmp_path, capsys):
    poor = dict(BALANCES, shares={"ACME": 100, "BOLT": 10_000})
    out = _clear(tmp_path / "day", members={"F01": BALANCES, "F02": poor, "F03": BALANCES})
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    with offering_venue(tmp_path / "t1.wal", 200) as venue:         # 200 ACME at $50.50
        assert main(["-q", "settle", str(out), "--date", "2026-12-08",
                     *buy_in_args(venue)]) == 0
    result = json.loads((out / "settlement.json").read_text())
    buy = result["buy_ins"]["2026-12-07:F02:ACME"]
    # F02 failed to deliver 300 ACME sold for $15,010; the limit is 10 % above $50.0333
    assert buy["limit"] == 550400 and buy["outcome"] == "canceled"    # IOC rest canceled
    assert (buy["bought"], buy["cost"]) == (200, 200 * 505000)
    assert buy["proceeds"] == 15_010 * 10_000 * 200 // 300
    # the rest (100 shares) is still failed and due for buy-in
    assert result["buy_ins_due"][0]["shares"] == 100
    cash, _ = open_ledgers(str(out))
    before = (1_000_000 + 4000) * 10_000           # opening + the BOLT sale that settled
    assert cash.balance("F02").posted == before + buy["proceeds"] - buy["cost"]
    # a second cycle of the same day buys nothing again
    assert main(["-q", "settle", str(out), "--date", "2026-12-08"]) == 2
    # what is left (100 shares) F02 can deliver: the next cycle settles it
    assert main(["-q", "settle", str(out), "--date", "2026-12-09"]) == 0
    day3 = json.loads((out / "settlement.json").read_text())
    assert day3["buy_ins_due"] == [] and "F02" not in {
        m for m, v in day3["members"].items() if v["fails"]}
    assert main(["-q", "settle", str(out), "--date", "2026-12-10", "--buy-in", "127.0.0.1"]) == 2
    assert "need HOST:PORT and USER:PASSWORD" in capsys.readouterr().err
