"""The broker's audit trail (``tickwire run --broker``): routing decisions and settlements reach
it, its clients are the PII vault's, and the compliance commands work on it."""

import json
import os

import pytest
from tickwire.broker.audit import append_settlements
from tickwire.cli.main import main


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    out = tmp_path_factory.mktemp("broker-day")
    assert main(["-q", "run", "--broker", "--retail-orders", "60", "--retail-clients", "3",
                 "--seed", "5", "--out", str(out), "--no-progress"]) == 0
    return out / "broker"


def _records(audit):
    return [json.loads(line) for line in (audit / "trail.jsonl").read_text().splitlines()
            if '"kind":"record"' in line]


def _day(records):
    return next(r["details"]["trade_date"] for r in records
                if r["event_type"] == "TRAIL_CLOSED")


def test_routing_decisions_and_settlements_are_in_the_trail(market):
    records = _records(market / "audit")
    routed = [r for r in records if r["event_type"] == "ORDER_ROUTED"]
    decisions = [r["routing_decision"] for r in routed]
    assert all(r["routing_decision"] is None for r in records if r["event_type"] != "ORDER_ROUTED")
    assert decisions and all(d["reason"] and "alternatives_considered" in d for d in decisions)
    assert any(d["selected_venue"] and d["slices"] for d in decisions)
    executions = {r["event_id"]: r for r in records if r["event_type"] == "ORDER_EXECUTED"}
    settled = [r for r in records if r["event_type"] in ("ORDER_SETTLED",
                                                         "SETTLEMENT_FAILED")]
    assert executions and len(settled) == len(executions)
    for s in settled:
        fill = executions[s["details"]["execution_event_id"]]
        execution = fill["details"]["execution"]
        assert (s["order_id"], s["client_id_hash"], s["side"], s["quantity"], s["price"]) == \
            (fill["order_id"], fill["client_id_hash"], fill["side"], execution["qty"],
             execution["price"])
        assert s["details"]["venue"] == execution["venue"]
        assert s["details"]["execution_id"] == execution["match_number"]
        date = s["details"]["settlement_date"]
        assert s["timestamp_processed"] == f"{date}T00:00:00.000000Z"
        assert s["details"]["instruction"] in (None, f"{date}:BRK:{s['symbol']}")
    summary = json.loads((market.parent / "broker.json").read_text())["audit"]
    assert summary["records"] == len(records)
    assert sum(summary["settlement_records"].values()) == len(settled)


def test_the_trail_verifies_and_its_signing_key_is_not_beside_it(market, capsys):
    assert main(["audit", "verify", str(market / "audit")]) == 0
    assert "intact" in capsys.readouterr().out
    assert not [f for f in os.listdir(market / "audit") if "signing" in f or f.endswith(".key")]
    assert (market / "keys" / "audit-signing.pem").exists()


def test_regulator_query_erasure_and_break_glass(market, tmp_path, capsys):
    audit = market / "audit"
    day = _day(_records(audit))
    query = ["audit", "query", str(audit), "--client", "r001", "--from", day, "--to", day]
    assert main(query) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {r["event_type"] for r in found}
    assert {"ORDER_RECEIVED", "ORDER_ROUTED"} <= kinds
    assert kinds & {"ORDER_SETTLED", "SETTLEMENT_FAILED"} or "ORDER_EXECUTED" not in kinds
    assert len({r["client_id_hash"] for r in found}) == 1
    assert main(["audit", "forget", str(audit), "--client", "r001"]) == 0
    capsys.readouterr()
    assert main(query) == 1
    assert "erased" in capsys.readouterr().err
    assert main(["audit", "verify", str(audit)]) == 0
    capsys.readouterr()
    assert main([*query, "--regulator-key", str(market / "keys" / "regulator.pem")]) == 0
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert again == found


def test_settling_again_appends_nothing(market):
    before = (market / "audit" / "trail.jsonl").read_bytes()
    venues = {v: str(market / v / "clearing") for v in ("XNAS", "XNYS", "BATS")}
    assert append_settlements(str(market / "audit"), venues) == {"ORDER_SETTLED": 0,
                                                                  "SETTLEMENT_FAILED": 0}
    assert (market / "audit" / "trail.jsonl").read_bytes() == before


def test_orders_the_broker_refused_are_in_the_trail(market):
    records = _records(market / "audit")
    refused = [r for r in records if r["event_type"] == "ORDER_REJECTED"
               and r["order_id"] is None]
    report = json.loads((market.parent / "broker.json").read_text())["refused"]
    counted = {k: v for k, v in report.items() if k != "rate_limited"}
    assert counted, "the day refuses some orders (buying power)"
    assert {k: sum(1 for r in refused if r["details"]["reason"] == k) for k in counted} == \
        counted
    for r in refused:
        assert r["client_id_hash"] and r["symbol"] and r["quantity"] > 0
        assert r["details"]["client_order_id"] and r["details"]["message"]


def test_cat_export_of_the_broker_trail(market, tmp_path, capsys):
    out = tmp_path / "cat.jsonl"
    assert main(["audit", "cat", str(market / "audit"), "-o", str(out)]) == 0
    capsys.readouterr()
    events = [json.loads(line) for line in out.read_text().splitlines()]
    records = _records(market / "audit")
    routes = [e for e in events if e["eventType"] == "MEOR"]
    fills = [e for e in events if e["eventType"] == "MEOF"]
    assert len(routes) == sum(1 for r in records if r["event_type"] == "ORDER_ROUTED")
    assert len(fills) == sum(1 for r in records if r["event_type"] == "ORDER_EXECUTED") > 0
    assert all(e["executingVenue"] in ("XNAS", "XNYS", "BATS") and e["fulfillmentID"]
               for e in fills)
    assert any(e["destination"] for e in routes)
    assert {e["eventType"] for e in events} >= {"MENO", "MEOR", "MEOF"}


def test_each_venue_of_the_day_has_its_own_verified_trail(market, capsys):
    """The venues' trails and the broker's agree: each broker fill at a venue is one of that
    venue's executions of the broker's firm, with the same match number."""
    report = json.loads((market.parent / "broker.json").read_text())["venue_compliance"]
    broker_fills = [r["details"]["execution"] for r in _records(market / "audit")
                    if r["event_type"] == "ORDER_EXECUTED"]
    for venue in ("XNAS", "XNYS", "BATS"):
        assert report[venue]["audit"]["verified"]
        assert main(["audit", "verify", str(market / venue / "audit")]) == 0
        capsys.readouterr()
        assert (market / venue / "alerts.jsonl").exists()
        executed = [r for r in _records(market / venue / "audit")
                    if r["event_type"] == "ORDER_EXECUTED" and r["firm"] == "BRK"]
        assert sorted(r["details"]["execution_id"] for r in executed) == sorted(
            f["match_number"] for f in broker_fills if f["venue"] == venue)
