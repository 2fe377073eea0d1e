"""Corporate actions between trade and settlement: one test per rule."""

import datetime as dt
import json

import pytest
from clearing_util import DAY, config_dict, write_journal
from tickwire.accounts.config import parse_config
from tickwire.cli.main import main
from tickwire.clearing.books import position
from tickwire.clearing.corporate import (CashDividend, CorporateActionError, Split,
                                         dividend_claims, parse_actions, split_obligation)
from tickwire.clearing.records import Trade
from tickwire.clearing.settle import open_ledgers

D = dt.date


def _cleared(tmp_path, actions, *extra):
    data = config_dict()
    data["corporate_actions"] = actions
    (tmp_path / "venue.json").write_text(json.dumps(data))
    wal = write_journal(tmp_path / "session.wal", parse_config(data), DAY)
    out = tmp_path / "clearing"
    assert main(["-q", "clear", wal, "--config", str(tmp_path / "venue.json"), "--out",
                 str(out), *extra]) == 0
    return out


def test_split_rule_adjusts_quantity_and_price_of_open_obligations():
    split = Split("ACME", D(2026, 12, 7), 2, 1)
    assert split_obligation(split, 300, D(2026, 12, 4), D(2026, 12, 7)) == 600
    assert split_obligation(split, 300, D(2026, 12, 7), D(2026, 12, 8)) == 300   # traded ex
    assert split_obligation(split, 300, D(2026, 12, 4), D(2026, 12, 4)) == 300   # not yet
    with pytest.raises(CorporateActionError, match="whole shares"):
        split_obligation(Split("ACME", D(2026, 12, 7), 3, 2), 101, D(2026, 12, 4),
                         D(2026, 12, 7))


def test_split_between_trade_and_settlement_through_settle(tmp_path):
    out = _cleared(tmp_path, [{"type": "split", "symbol": "ACME", "ex_date": "2026-12-07",
                               "ratio": "2:1"}])
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    result = json.loads((out / "settlement.json").read_text())
    split = result["corporate_actions"]["split:ACME:2026-12-07"]
    assert split["instructions"]["2026-12-07:F01:ACME"] == 400     # bought a net 200
    assert result["totals"] == {"settled": 5, "failed": 0, "bought_in": 0}
    cash, securities = open_ledgers(str(out))
    shares = {k: b.posted for k, b in securities.balances().items()}
    assert shares[position("F01", "ACME")] == 2 * 10_000 + 400
    assert shares[position("F02", "ACME")] == 2 * 10_000 - 600
    assert shares[position("CCP", "ACME")] == 0
    # the cash is what the trades said: the price per share halved
    assert cash.balance("F02").posted == (1_000_000 + 19_010) * 10_000


def test_dividend_rule_claims_only_trades_straddling_the_record_date():
    div = CashDividend("BOLT", D(2026, 12, 4), D(2026, 12, 4), 2500)
    before = Trade(1, "BOLT", 200, 200000, "F03", "F02", "", "", D(2026, 12, 3), 0)
    on_ex = Trade(2, "BOLT", 100, 200000, "F01", "F02", "", "", D(2026, 12, 4), 0)
    claims = dividend_claims(div, [before, on_ex], {1: D(2026, 12, 7), 2: D(2026, 12, 7)})
    assert [(c.match, c.payer, c.payee, c.cash) for c in claims] == [(1, "F02", "F03", 500000)]
    assert dividend_claims(div, [before], {1: D(2026, 12, 4)}) == []       # settled in time


def test_dividend_through_settle_pays_holders_of_record_and_the_claim(tmp_path):
    # T+2 from 2026-12-03: the BOLT trade settles on 12-07, after the record date 12-04
    out = _cleared(tmp_path, [{"type": "dividend", "symbol": "BOLT", "ex_date": "2026-12-04",
                               "record_date": "2026-12-04", "amount": "0.25"}],
                   "--trade-date", "2026-12-03", "--cycle", "2")
    assert main(["-q", "settle", str(out), "--date", "2026-12-07"]) == 0
    result = json.loads((out / "settlement.json").read_text())
    div = result["corporate_actions"]["dividend:BOLT:2026-12-04"]
    assert div == {"paid_to": 3, "refused": [], "claims": 1, "unpaid_claims": []}
    cash, _ = open_ledgers(str(out))
    dividend = 10_000 * 2500                     # 10,000 BOLT each on the record date
    claim = 200 * 2500
    assert cash.balance("F03").posted == (1_000_000 - 5005 - 4000) * 10_000 + dividend + claim
    assert cash.balance("F02").posted == (1_000_000 + 19_010) * 10_000 + dividend - claim


def test_bad_corporate_actions_are_refused():
    with pytest.raises(CorporateActionError, match="ratio"):
        parse_actions([{"type": "split", "symbol": "A", "ex_date": "2026-12-07",
                        "ratio": "2"}])
    with pytest.raises(CorporateActionError, match="record_date"):
        parse_actions([{"type": "dividend", "symbol": "A", "ex_date": "2026-12-07",
                        "amount": "1"}])
