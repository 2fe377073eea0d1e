"""Event coverage of the audit trail: gateway receive times and what a refusal names."""

import asyncio
import datetime
import json

import pytest
from tickwire.accounts.config import parse_config
from tickwire.cli.main import main
from tickwire.clearing.files import ClearingFilesError
from tickwire.compliance.audit.day import write_audit_dir
from tickwire.compliance.audit.record import AuditRecord, parse_iso_utc
from tickwire.compliance.audit.settlement import settlement_records
from tickwire.compliance.audit.source import read_entries
from tickwire.core.requests import NewOrder, Reject
from venue_util import config_dict, login, make_venue

from compliance_util import DATE, run_dir  # noqa: F401  (a fixture)

P = 10000
DAY = datetime.date(2026, 12, 7)


def _gateway_day(tmp_path):
    """A short day through the OUCH gateway: one accepted order, one over bob's 5,000-share
    limit (a risk refusal), one with an unknown side (a gateway refusal)."""
    async def main():
        venue = await make_venue(tmp_path).start()
        alice, a = await login(venue, "alice")
        bob, b = await login(venue, "bob")
        alice.enter("A1", "B", 100, "AAPL", 100 * P)
        bob.enter("B1", "S", 6000, "AAPL", 101 * P)
        alice.enter("A9", "Q", 7, "MSFT", 50 * P)
        await a.count(3)
        await b.count(2)
        await alice.logout()
        await bob.logout()
        await venue.stop()
    asyncio.run(asyncio.wait_for(main(), 20))
    audit = tmp_path / "audit"
    write_audit_dir(str(audit), str(tmp_path / "v.wal"), parse_config(config_dict()), DAY,
                    str(tmp_path / "keys"))
    records = [json.loads(line) for line in (audit / "trail.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "record"]


def test_gateway_receive_time_is_journaled_and_in_the_trail(tmp_path):
    records = _gateway_day(tmp_path)
    entries = read_entries(str(tmp_path / "v.wal"))
    orders = [e.request for e in entries if e.request.__class__ in (NewOrder, Reject)]
    assert orders and all(o.received is not None and o.received <= o.ts for o in orders)
    by_order = {}
    for r in records:
        if r["order_id"]:
            by_order.setdefault(r["order_id"], []).append(r)
    a1 = by_order["F01/A1"]
    ns = next(o.received for o in orders if o.token == "A1")
    for r in a1:            # every record the request caused carries its receive time
        assert parse_iso_utc(r["timestamp_received"]) == ns // 1000 + parse_iso_utc(
            f"{DAY}T00:00:00.000000Z")
        assert r["timestamp_received"] <= r["timestamp_processed"]
    assert {r["event_type"] for r in a1} >= {"ORDER_RECEIVED", "RISK_ACCEPTED",
                                              "ORDER_SEQUENCED", "ORDER_ACCEPTED"}


def test_a_risk_refusal_names_symbol_side_quantity_and_price(tmp_path):
    records = _gateway_day(tmp_path)
    refused = [r for r in records if r["order_id"] == "F02/B1"]
    assert [r["event_type"] for r in refused] == ["ORDER_RECEIVED", "RISK_REJECTED",
                                                  "ORDER_REJECTED"]
    for r in refused:
        assert (r["symbol"], r["side"], r["quantity"], r["price"]) == \
            ("AAPL", "SELL", 6000, "101.00")
    assert refused[1]["details"]["reason"] == "MAX_QTY"


def test_a_gateway_refusal_names_what_it_could_read(tmp_path):
    records = _gateway_day(tmp_path)
    refused = [r for r in records if r["order_id"] == "F01/A9"]
    assert [r["event_type"] for r in refused][:2] == ["ORDER_RECEIVED", "RISK_REJECTED"]
    assert refused[1]["details"]["reason"] == "BAD_SIDE"
    assert (refused[1]["symbol"], refused[1]["side"], refused[1]["quantity"]) == \
        ("MSFT", None, 7)


def test_each_execution_settles_or_fails_in_the_trail(run_dir):
    records = [json.loads(line) for line in
               (run_dir / "audit" / "trail.jsonl").read_text().splitlines()]
    records = [r for r in records if r["kind"] == "record"]
    executions = [r for r in records if r["event_type"] == "ORDER_EXECUTED"]
    settled = [r for r in records if r["event_type"] in ("ORDER_SETTLED", "SETTLEMENT_FAILED")]
    assert executions and len(settled) == len(executions)
    assert {s["event_type"] for s in settled} == {"ORDER_SETTLED", "SETTLEMENT_FAILED"}
    summary = json.loads((run_dir / "clearing" / "settlement.json").read_text())
    fails = {f["instruction"] for m in summary["members"].values() for f in m["fails"]}
    date = summary["date"]
    for execution, s in zip(executions, settled):
        assert (s["order_id"], s["client_id_hash"], s["symbol"], s["side"], s["quantity"]) == \
            (execution["order_id"], execution["client_id_hash"], execution["symbol"],
             execution["side"], execution["quantity"])
        assert s["details"]["execution_id"] == execution["details"]["execution_id"]
        assert s["timestamp_processed"] == f"{date}T00:00:00.000000Z"
        key = f"{date}:{s['firm']}:{s['symbol']}"
        assert (s["event_type"] == "SETTLEMENT_FAILED") == (key in fails)
    assert records[-1]["event_type"] == "TRAIL_CLOSED"
    counted = json.loads((run_dir / "run.json").read_text())["compliance"]["audit"]
    assert counted["settlement_records"] == {
        kind: sum(1 for s in settled if s["event_type"] == kind)
        for kind in ("ORDER_SETTLED", "SETTLEMENT_FAILED")}
    # the regulator's query over the trade date finds a client's settlements with the rest
    out = run_dir / "q.jsonl"
    assert main(["audit", "query", str(run_dir / "audit"), "--client", "c00", "--from", DATE,
                 "--to", DATE, "-o", str(out)]) == 0
    found = [json.loads(line)["event_type"] for line in out.read_text().splitlines()]
    assert {"ORDER_EXECUTED"} <= set(found) and set(found) & {"ORDER_SETTLED",
                                                              "SETTLEMENT_FAILED"}


def test_no_settlement_records_before_the_cycle_ran(run_dir, tmp_path, caplog):
    clearing = tmp_path / "clearing"
    assert main(["clear", str(run_dir / "session.wal"), "--config",
                 str(run_dir / "venue.json"), "--out", str(clearing)]) == 0
    records = [AuditRecord("ORDER_EXECUTED", "2026-12-07T10:00:00.000000Z",
                           "2026-12-07T10:00:00.000000Z", order_id="F00/x", firm="F00",
                           symbol="AAPL", details={"execution_id": 1})]
    assert settlement_records(records, str(clearing)) == []
    assert "has not run" in caplog.text
    with pytest.raises(ClearingFilesError):
        settlement_records(records, str(tmp_path / "nowhere"))
