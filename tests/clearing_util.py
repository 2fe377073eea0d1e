"""Shared helpers of the clearing tests: a venue config with opening balances and a journal
written by the real sequencer from a list of orders."""

import json

from tickwire.accounts.config import make_config, parse_config
from tickwire.core.requests import DeclareSymbol, NewOrder, SystemEvent
from tickwire.engine.model import ModelEngine
from tickwire.gateways.ouch.streams import entry_attrs
from tickwire.protocol.link import Side, Tif
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.wal import WriteAheadLog
from tickwire.sequencer.sequencer import Sequencer

ACCOUNTS = {"alice": "F01", "bob": "F02", "carol": "F03", "dave": "F01"}
SYMBOLS = {"ACME": 50.0, "BOLT": 20.0}


def config_dict(members=None, ccp=None):
    data = make_config({u: {"firm": f, "password": "pw"} for u, f in ACCOUNTS.items()},
                       symbols=SYMBOLS, n=2**10)
    data["members"] = members if members is not None else {
        f: {"cash": 1_000_000.0, "margin": 50_000.0, "guarantee_fund": 20_000.0,
            "shares": {"ACME": 10_000, "BOLT": 10_000}} for f in ("F01", "F02", "F03")}
    if ccp is not None:
        data["ccp"] = ccp
    return data


def write_config(path, **kw):
    data = config_dict(**kw)
    path.write_text(json.dumps(data))
    return str(path), parse_config(data)


def order(acct, token, symbol, side, qty, price):
    """A ``new`` request (price in $; its timestamp is the sequencer's, at submission)."""
    return dict(account=acct, token=token, symbol=symbol,
                side=Side.BUY if side == "B" else Side.SELL, qty=qty, price=round(price * 10000),
                tif=Tif.DAY, attrs=entry_attrs(side, 99998, "Y", "A", "N", 0, "N"))


def write_journal(path, config, requests, date="2026-12-04"):
    """Open the day (the ``O`` request carrying ``date`` unless None), play the requests,
    close the day; return the journal's path."""
    wal = WriteAheadLog(str(path), "none")
    t = [34_200 * 10**9]

    def clock():
        t[0] += 1000
        return t[0]

    seq = Sequencer(ModelEngine(), wal, config, RiskManager(config), clock=clock)
    seq.submit_nowait(SystemEvent(ts=seq.now(), code="O", trade_date=date))
    for name, price in config.symbols.items():
        seq.submit_nowait(DeclareSymbol(ts=seq.now(), symbol=name, price=price))
    seq.submit_nowait(SystemEvent(ts=seq.now(), code="S"))
    seq.submit_nowait(SystemEvent(ts=seq.now(), code="Q"))
    for fields in requests:
        seq.submit_nowait(NewOrder(ts=seq.now(), **fields))
    seq.close_day()
    wal.close_sync()
    return str(path)


# F01 buys 300 ACME from F02 (two matches), sells 100 ACME to F03; F03 buys 200 BOLT from F02.
DAY = [
    order("bob", "s1", "ACME", "S", 200, 50.00),
    order("alice", "b1", "ACME", "B", 200, 50.00),       # match 1: F01 <- F02 200 @ 50.00
    order("bob", "s2", "ACME", "S", 100, 50.10),
    order("dave", "b2", "ACME", "B", 100, 50.10),        # match 2: F01 <- F02 100 @ 50.10
    order("carol", "b3", "ACME", "B", 100, 50.05),
    order("alice", "s3", "ACME", "S", 100, 50.05),       # match 3: F03 <- F01 100 @ 50.05
    order("carol", "b4", "BOLT", "B", 200, 20.00),
    order("bob", "s4", "BOLT", "S", 200, 19.99),         # match 4: F03 <- F02 200 @ 20.00
]
