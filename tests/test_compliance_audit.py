"""The audit trail end to end: the main job writes it, ``tickwire audit`` exports, verifies,
proves and corrects it, and every kind of tampering is named."""

import dataclasses
import datetime
import hashlib
import hmac
import json
import shutil

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from tickwire.cli.main import main
from tickwire.compliance.audit.day import write_audit_dir
from tickwire.compliance.audit.keys import load_or_create_signing_key, write_public_key
from tickwire.compliance.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from tickwire.compliance.audit.canonical import canonical_json
from tickwire.compliance.audit.record import AuditRecord, event_id_for, parse_iso_utc, uuid7_text
from tickwire.compliance.audit.trail import record_leaf_bytes
from tickwire.compliance.audit.vault import PiiVault, client_hash
from uuid6 import UUID

from compliance_util import DATE, run_config, run_dir  # noqa: F401  (a fixture)


def _lines(path):
    return path.read_text().splitlines()


def _records(path):
    return [json.loads(line) for line in _lines(path) if '"kind":"record"' in line]


def _verify(capsys, *args):
    code = main(["audit", "verify", *map(str, args)])
    return code, capsys.readouterr().out


def test_main_job_writes_and_verifies_the_trail(run_dir, capsys):
    report = json.loads((run_dir / "run.json").read_text())
    audit = report["compliance"]["audit"]
    assert audit["verified"] and audit["records"] > 1000 and audit["tree_heads"] >= 2
    assert audit["trade_date"] == DATE
    code, out = _verify(capsys, run_dir / "audit")
    assert code == 0 and "intact" in out and audit["root"] in out
    lines = _lines(run_dir / "audit" / "trail.jsonl")
    last = json.loads(lines[-1])
    assert last["kind"] == "tree_head" and last["size"] == audit["records"]


def test_records_follow_the_schema(run_dir):
    records = _records(run_dir / "audit" / "trail.jsonl")
    assert [r["index"] for r in records] == list(range(len(records)))
    types = {r["event_type"] for r in records}
    assert {"ORDER_RECEIVED", "RISK_ACCEPTED", "ORDER_SEQUENCED", "ORDER_ACCEPTED",
            "ORDER_EXECUTED", "ORDER_CANCELLED", "CANCEL_RECEIVED", "TRAIL_CLOSED"} <= types
    assert len({r["event_id"] for r in records}) == len(records)
    vault = PiiVault(str(run_dir / "audit" / "vault.sqlite"))
    day = datetime.date.fromisoformat(DATE)
    hashes = {vault.hash_for(f"c{i:02d}", day): f"F{i:02d}" for i in range(3)}
    for r in records[:-1]:
        uid = UUID(r["event_id"])
        assert uid.version == 7
        assert uid.time == parse_iso_utc(r["timestamp_processed"]) // 1000
        assert r["timestamp_received"].endswith("Z")
        assert len(r["timestamp_received"]) == len("2026-12-07T09:30:00.000000Z")
        settlement = r["event_type"] in ("ORDER_SETTLED", "SETTLEMENT_FAILED")
        assert r["timestamp_received"].startswith(DATE) != settlement      # settled on T+1
        assert r["system_metadata"]["clock_source"].startswith(
            "clearing" if settlement else "sequencer")
        assert r["system_metadata"]["request_trace_id"].startswith("wal-")
        if r["client_id_hash"] is not None:
            assert hashes[r["client_id_hash"]] == r["firm"]
    received = next(r for r in records if r["event_type"] == "ORDER_RECEIVED")
    assert received["side"] in ("BUY", "SELL") and isinstance(received["quantity"], int)
    assert received["price"].count(".") == 1 and received["order_type"] == "LIMIT"
    # client_id_hash is sha256(client id + that day's salt)
    key = vault.key("c00")
    salt = hmac.new(key, DATE.encode(), hashlib.sha256).hexdigest()
    assert client_hash("c00", key, day) == hashlib.sha256(("c00" + salt).encode()).hexdigest()


def test_rebuilt_identically_from_the_journal(run_dir, tmp_path):
    config = run_config()
    again = tmp_path / "audit"
    again.mkdir()
    shutil.copy(run_dir / "audit" / "vault.sqlite", again / "vault.sqlite")
    write_audit_dir(str(again), str(run_dir / "session.wal"), config,
                    datetime.date.fromisoformat(DATE), str(run_dir / "keys"),
                    clearing_dir=str(run_dir / "clearing"))
    assert (again / "trail.jsonl").read_bytes() == \
        (run_dir / "audit" / "trail.jsonl").read_bytes()


def test_export_is_the_trail_and_needs_an_outside_key(run_dir, tmp_path, capsys):
    out = tmp_path / "trail.jsonl"
    assert main(["audit", "export", str(run_dir / "audit"), "-o", str(out)]) == 0
    assert out.read_bytes() == (run_dir / "audit" / "trail.jsonl").read_bytes()
    assert main(["audit", "verify", str(out)]) == 2
    assert "--public-key" in capsys.readouterr().err
    code, _ = _verify(capsys, out, "--public-key", run_dir / "audit" / "public.pem")
    assert code == 0


def _tampered(run_dir, tmp_path, change):
    lines = _lines(run_dir / "audit" / "trail.jsonl")
    lines = change(lines)
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _edit(lines, number, **fields):
    obj = json.loads(lines[number])
    obj.update(fields)
    lines[number] = json.dumps(obj, separators=(",", ":"))
    return lines


def _reseal(lines, number, **fields):
    """An edit that also recomputes the event_id (a careful forger)."""
    obj = json.loads(lines[number])
    obj.update(fields)
    body = {k: v for k, v in obj.items() if k not in ("kind", "index", "event_id")}
    obj["event_id"] = event_id_for(body, obj["timestamp_processed"])
    lines[number] = json.dumps(obj, separators=(",", ":"))
    return lines


def _drop_head(lines):
    first = next(i for i, line in enumerate(lines) if '"kind":"tree_head"' in line)
    return lines[:first] + lines[first + 1:]


TAMPERING = {
    "edited": (lambda ls: _edit(ls, 10, quantity=999_999), "EDITED: record 10 (line 11)"),
    "edited_resealed": (lambda ls: _reseal(ls, 10, quantity=999_999),
                        "EDITED: a record among 0 to 1023 was edited"),
    "deleted": (lambda ls: ls[:20] + ls[21:], "DELETED: record 20 deleted"),
    "inserted": (lambda ls: ls[:30] + [ls[12]] + ls[30:], "INSERTED: record inserted at line 31"),
    "reordered": (lambda ls: ls[:40] + [ls[41], ls[40]] + ls[42:],
                  "REORDERED: record 40 reordered"),
    "truncated": (lambda ls: ls[:-5], "TRUNCATED"),
    "cut_mid_line": (lambda ls: ls[:-1] + [ls[-1][:30]], "CORRUPTED: line"),
    "forged_head": (lambda ls: ls[:-1] + [json.dumps(dict(json.loads(ls[-1]), root="ab" * 32))],
                    "FORGED: tree head at line"),
    "missing_head": (_drop_head, "MISSING_HEAD: the tree head over the first 1024 records"),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_every_tamper_kind_is_named(run_dir, tmp_path, capsys, kind):
    change, expected = TAMPERING[kind]
    path = _tampered(run_dir, tmp_path, change)
    code, out = _verify(capsys, path, "--public-key", run_dir / "audit" / "public.pem")
    assert code == 1, out
    assert expected in out, out


def test_a_key_that_does_not_match_or_is_not_a_key(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    write_public_key(load_or_create_signing_key(str(other / "k.pem")), str(other / "pub.pem"))
    code, out = _verify(capsys, run_dir / "audit", "--public-key", other / "pub.pem")
    assert code == 1 and "WRONG_KEY" in out
    (other / "junk.pem").write_text("not a key")
    assert main(["audit", "verify", str(run_dir / "audit"), "--public-key",
                 str(other / "junk.pem")]) == 2
    assert "not a PEM public key" in capsys.readouterr().err


def test_proofs_from_the_cli_verify(run_dir, capsys):
    audit = run_dir / "audit"
    assert main(["audit", "prove", str(audit), "--index", "17"]) == 0
    proof = json.loads(capsys.readouterr().out)
    record = _records(audit / "trail.jsonl")[17]
    leaf = leaf_hash(record_leaf_bytes(record))
    assert proof["leaf_hash"] == leaf.hex()
    verify_inclusion(17, proof["tree_size"], leaf, [bytes.fromhex(p) for p in
                                                    proof["inclusion_path"]],
                     bytes.fromhex(proof["root"]))
    heads = [json.loads(line) for line in _lines(audit / "trail.jsonl")
             if '"kind":"tree_head"' in line]
    first, last = heads[0], heads[-1]
    assert main(["audit", "prove", str(audit), "--first", str(first["size"]), "--size",
                 str(last["size"])]) == 0
    proof = json.loads(capsys.readouterr().out)
    verify_consistency(first["size"], last["size"], bytes.fromhex(first["root"]),
                       bytes.fromhex(last["root"]),
                       [bytes.fromhex(p) for p in proof["consistency_path"]])
    assert main(["audit", "prove", str(audit), "--index", "99999999"]) == 2


def test_a_correction_is_appended_and_references_the_original(run_dir, tmp_path, capsys):
    audit = tmp_path / "audit"
    shutil.copytree(run_dir / "audit", audit)
    before = (audit / "trail.jsonl").read_bytes()
    original = _records(audit / "trail.jsonl")[5]
    key = run_dir / "keys" / "audit-signing.pem"
    assert main(["audit", "correct", str(audit), "--event-id", original["event_id"],
                 "--set", "quantity=300", "--reason", "booked wrong size",
                 "--signing-key", str(key)]) == 0
    after = (audit / "trail.jsonl").read_bytes()
    assert after.startswith(before)
    correction = _records(audit / "trail.jsonl")[-1]
    assert correction["event_type"] == "CORRECTION"
    assert correction["corrects"] == original["event_id"]
    assert correction["details"]["changes"] == {"quantity": 300}
    capsys.readouterr()
    code, out = _verify(capsys, audit)
    assert code == 0, out
    assert main(["audit", "correct", str(audit), "--event-id", "nope", "--set", "quantity=1",
                 "--reason", "x", "--signing-key", str(key)]) == 2
    assert main(["audit", "correct", str(audit), "--event-id", original["event_id"], "--set",
                 "client_id_hash=x", "--reason", "x", "--signing-key", str(key)]) == 2


def test_the_fast_sealing_is_the_defined_one():
    """sealed_canonical (what the trail writes) is the canonical JSON of sealed_json, whose
    event_id is uuid6's UUIDv7 of the time and digest (record module docstring)."""
    details = {"z": [1, {"b": None, "a": "é\n"}], "event_id": "", "a": True}
    record = AuditRecord("ORDER_EXECUTED", "2026-12-07T14:30:00.123456Z",
                         "2026-12-07T14:30:00.999999Z", order_id="F01/A1",
                         client_id_hash="ab" * 32, firm="F01", symbol="AAPL", side="BUY",
                         quantity=100, price="182.50", order_type="LIMIT", time_in_force="DAY",
                         details=details, system_metadata={"server_id": "s", "event_id": "x"})
    sealed = record.sealed_json()
    assert record.sealed_canonical() == canonical_json(sealed)
    assert set(record.body()) == {f.name for f in dataclasses.fields(AuditRecord)} - \
        {"event_id"}
    body = {k: v for k, v in sealed.items() if k != "event_id"}
    digest = hashlib.sha256(canonical_json(body)).digest()
    us = parse_iso_utc(record.timestamp_processed)
    value = ((us // 1000) << 80) | (((us % 1000) * 4096 // 1000) << 64) | \
        (int.from_bytes(digest[:8], "big") >> 2)
    assert sealed["event_id"] == str(UUID(int=value, version=7))
    for us, bits in ((0, 0), (2**48 * 1000 - 1, 2**64 - 1), (1_765_000_000_123_456, 12345)):
        value = (((us // 1000) & (2**48 - 1)) << 80) | (((us % 1000) * 4096 // 1000) << 64) \
            | (bits >> 2)
        assert uuid7_text(us, bits) == str(UUID(int=value, version=7))


def _documented_root(leaves):
    """MTH of RFC 9162 section 2.1.1, written from the README alone."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _documented_root(leaves[:k])
                          + _documented_root(leaves[k:])).digest()


def test_the_documented_recipe_verifies_the_trail_without_our_code(run_dir):
    """README "Verifying a trail without our code", followed with hashlib, json and
    cryptography only: every head covers exactly the records before it, its root is theirs
    and its signature verifies with AUDIT_DIR/public.pem; the last line covers everything."""
    key = load_pem_public_key((run_dir / "audit" / "public.pem").read_bytes())
    leaves, heads = [], 0
    lines = _lines(run_dir / "audit" / "trail.jsonl")
    for line in lines:
        obj = json.loads(line)
        if obj["kind"] == "record":
            assert obj["index"] == len(leaves)
            body = {k: v for k, v in obj.items() if k not in ("kind", "index")}
            canon = json.dumps(body, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8")
            leaves.append(hashlib.sha256(b"\x00" + canon).digest())
            continue
        assert obj["size"] == len(leaves)
        assert obj["root"] == _documented_root(leaves).hex()
        message = json.dumps({k: obj[k] for k in ("size", "root", "timestamp")},
                             sort_keys=True, separators=(",", ":")).encode("utf-8")
        key.verify(bytes.fromhex(obj["signature"]), message)     # raises if it does not
        heads += 1
    assert json.loads(lines[-1])["kind"] == "tree_head" and heads >= 2
    assert json.loads(lines[-2])["event_type"] == "TRAIL_CLOSED"


def test_a_correction_signed_with_another_key_is_refused(run_dir, tmp_path, capsys):
    audit = tmp_path / "audit"
    shutil.copytree(run_dir / "audit", audit)
    before = (audit / "trail.jsonl").read_bytes()
    original = _records(audit / "trail.jsonl")[5]
    load_or_create_signing_key(str(tmp_path / "other.pem"))
    assert main(["audit", "correct", str(audit), "--event-id", original["event_id"],
                 "--set", "quantity=300", "--reason", "x",
                 "--signing-key", str(tmp_path / "other.pem")]) == 2
    assert "does not match" in capsys.readouterr().err
    assert (audit / "trail.jsonl").read_bytes() == before


def test_verify_a_path_that_is_not_there(tmp_path, capsys):
    assert main(["audit", "verify", str(tmp_path / "nowhere")]) == 2
    assert "no such audit directory or trail file" in capsys.readouterr().err


def test_audit_build_rebuilds_the_trail_from_the_journal(run_dir, tmp_path, capsys):
    """tickwire audit build: what a tickwire serve session uses; with the main job's vault and
    keys the same journal gives the main job's trail byte for byte (the cross-check)."""
    again = tmp_path / "audit"
    again.mkdir()
    shutil.copy(run_dir / "audit" / "vault.sqlite", again / "vault.sqlite")
    assert main(["audit", "build", str(run_dir / "session.wal"), "--config",
                 str(run_dir / "venue.json"), "-o", str(again), "--keys",
                 str(run_dir / "keys"), "--clearing", str(run_dir / "clearing")]) == 0
    assert "verified" in capsys.readouterr().out
    assert (again / "trail.jsonl").read_bytes() == \
        (run_dir / "audit" / "trail.jsonl").read_bytes()
    assert main(["audit", "query", str(again), "--client", "c01", "--from", DATE, "--to",
                 DATE]) == 0                            # loaded into the hot tier too
    assert capsys.readouterr().out.count("\n") > 10
    assert main(["audit", "build", str(tmp_path / "no.wal"), "--config",
                 str(run_dir / "venue.json"), "-o", str(tmp_path / "x"), "--keys",
                 str(tmp_path / "k")]) == 2
    assert "no.wal" in capsys.readouterr().err
