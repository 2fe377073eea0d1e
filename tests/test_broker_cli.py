"""``tickwire market`` as a user runs it: a process that prints its address and a demo login,
serves HTTPS with its own certificate, and stops on SIGINT."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tickwire.cli.main import main


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tickwire_market_serves_the_api_and_a_curl_style_order(tmp_path):
    port = _free_port()
    tickwire = str(Path(sys.executable).parent / "tickwire")
    proc = subprocess.Popen(
        [tickwire, "market", "--venues", "3", "--port", str(port), "--user", "ann:ann-pw",
         "--cash", "25000", "--out", str(tmp_path / "m")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"tickwire market ended: {lines}"
            lines.append(line.strip())
            if line.startswith("running"):
                break
        text = "\n".join(lines)
        assert f"broker API: https://127.0.0.1:{port}" in text
        demo = next(line for line in lines if line.startswith("demo login: "))
        user, password = demo.removeprefix("demo login: ").split(" / ")
        cert = next(line for line in lines if line.startswith("certificate: ")).split()[1]
        tls = ssl.create_default_context(cafile=cert)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=tls) as api:
            for who, pw, cash in ((user, password, "25000.00"), ("ann", "ann-pw", "25000.00")):
                r = api.post("/v2/auth/login", json={"username": who, "password": pw})
                h = {"Authorization": f"Bearer {r.json()['token']}"}
                assert api.get("/v2/account", headers=h).json()["cash"] == cash
            r = api.post("/v2/orders", headers=h, json={
                "symbol": "AAPL", "qty": "100", "side": "buy", "type": "market",
                "time_in_force": "day"})
            assert r.status_code == 200, r.text
            for _ in range(100):
                order = api.get(f"/v2/orders/{r.json()['id']}", headers=h).json()
                if order["status"] == "filled":
                    break
                time.sleep(0.05)
            assert order["status"] == "filled"
            assert api.get("/openapi.json").json()["info"]["title"] == "tickwire broker API"
            # the back office blocks ann from another process: the running API refuses her
            assert main(["--quiet", "broker", "account", "block", "ann", "--dir",
                         str(tmp_path / "m")]) == 0
            r = api.post("/v2/orders", headers=h, json={
                "symbol": "AAPL", "qty": "1", "side": "buy", "type": "market"})
            assert (r.status_code, r.json()["reason"]) == (403, "account_blocked")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "trade-throughs: 0" in out
    assert os.path.exists(tmp_path / "m" / "routing.jsonl")
    assert main(["audit", "verify", str(tmp_path / "m" / "audit")]) == 0, \
        "the broker's audit trail verifies with the compliance tools"


def test_tickwire_market_refuses_bad_options(capsys):
    assert main(["market", "--user", "nopassword"]) == 2
    assert "USER:PASSWORD" in capsys.readouterr().out
    assert main(["market", "--rate-limit", "0"]) == 2
    assert main(["market", "--cash", "12.345678"]) == 2
    assert "not a dollar amount" in capsys.readouterr().out
    assert main(["market", "--symbol", "AAPL=1.234567"]) == 2
    assert "at most 4 decimals" in capsys.readouterr().out


def test_tickwire_run_broker_reports_routing_quality(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--broker", "--retail-orders", "60", "--retail-clients", "4",
                 "--seed", "3",
                 "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "trade-throughs: 0" in text and "at or better than the NBBO" in text
    report = json.loads((out / "broker.json").read_text())
    assert report["orders_sent"] == 60
    assert report["accepted"] + sum(report["refused"].values()) - \
        report["refused"].get("rate_limited", 0) == 60
    assert not [s for s in report["statuses"] if s in ("new", "partially_filled")], \
        "every order is settled at the close"
    quality = report["routing_quality"]
    assert quality["trade_throughs"] == 0 and quality["volume"] > 0
    assert 0 < quality["share_at_nbbo"] <= 1
    assert sum(v["shares_executed"] for v in report["rule606"]["venues"].values()) == \
        quality["volume"]
    assert len(report["rule606"]["venues"]) == 3
    assert report["clearing"]["reconciled"] and report["clearing"]["problems"] == {}
    assert set(report["clearing"]["venues"]) == {"XNAS", "XNYS", "BATS"}
    assert "the broker's positions reconcile with clearing's" in text
    events = report["stream_events"]
    assert report["replaces"].get("replaced", 0) == events.get("pending_replace", 0) == \
        events.get("replaced", 0) + events.get("order_replace_rejected", 0), \
        "each replace the API took ended replaced or rejected on the stream"
    routed = [json.loads(line) for line in (out / "broker" / "routing.jsonl").open()]
    decisions = [r for r in routed if r["type"] == "routing_decision"]
    assert decisions and all({"selected_venue", "reason", "alternatives_considered",
                              "prices_at_decision"} <= set(d) for d in decisions)
