"""The regulator's query over the hot and warm tiers, GDPR erasure by key deletion, the
regulator's escrow, and the CAT-style export."""

import datetime
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from compliance_util import DATE, run_config, run_dir  # noqa: F401  (a fixture)
from tickwire.cli.main import main
from tickwire.compliance.audit.day import write_audit_dir
from tickwire.compliance.audit.tiers import WARM_ROW_GROUP
from tickwire.compliance.audit.vault import PiiVault, make_regulator_key

DAYS = ["2026-08-03", "2026-11-30", "2026-12-07"]


def _fill(audit, run_dir, *hot_url):
    """Three days in one audit directory (the same journal under three dates)."""
    audit.mkdir()
    shutil.copy(run_dir / "audit" / "vault.sqlite", audit / "vault.sqlite")
    for day in DAYS:
        write_audit_dir(str(audit), str(run_dir / "session.wal"), run_config(),
                        datetime.date.fromisoformat(day), str(run_dir / "keys"))
        assert main(["audit", "ingest", str(audit), "--hot-days", "1000", *hot_url]) == 0
    return audit


@pytest.fixture(scope="module")
def store(run_dir, tmp_path_factory):  # noqa: F811
    return _fill(tmp_path_factory.mktemp("store") / "audit", run_dir)


def _query(capsys, audit, *extra, client="c01", start=DAYS[0], end=DAYS[-1]):
    code = main(["audit", "query", str(audit), "--client", client, "--from", start,
                 "--to", end, *extra])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err


def _query_tiers(capsys, audit, *hot_url):
    code, hot, err = _query(capsys, audit, *hot_url)
    assert code == 0 and "hot tier" in err and "0 Parquet partition(s)" in err
    assert {r["trade_date"] for r in hot} == set(DAYS)
    assert {r["firm"] for r in hot} == {"F01"}
    assert main(["audit", "age", str(audit), "--today", "2026-12-08", "--hot-days", "5",
                 *hot_url]) == 0
    capsys.readouterr()
    code, mixed, err = _query(capsys, audit, *hot_url)
    assert code == 0 and "2 Parquet partition(s)" in err and "date=2026-08-03" in err
    assert mixed == hot
    assert sorted(os.listdir(audit / "warm")) == ["date=2026-08-03", "date=2026-11-30"]
    return hot


def test_same_records_from_either_tier(store, capsys):
    hot = _query_tiers(capsys, store)
    records = [json.loads(line) for line in (store / "trail.jsonl").read_text().splitlines()
               if '"kind":"record"' in line]
    mine = [r for r in records if r["firm"] == "F01" and r["client_id_hash"]]
    assert len(hot) == 3 * len(mine)
    # one day only, and a range outside every day
    code, one, _ = _query(capsys, store, start=DAYS[1], end=DAYS[1])
    assert code == 0 and {r["trade_date"] for r in one} == {DAYS[1]}
    code, none, _ = _query(capsys, store, start="2020-01-01", end="2020-01-03")
    assert code == 0 and none == []


def test_the_hot_query_goes_through_the_client_index(store):
    """The planner has statistics after a load: a client's day is read through
    audit_client_time, not through every row of the day (the primary key)."""
    engine = create_engine(f"sqlite:///{store / 'hot.sqlite'}")
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT trade_date, idx, record FROM audit_records "
            "WHERE client_id_hash = 'ab' AND trade_date = '2026-12-07'").fetchall()
    engine.dispose()
    assert "audit_client_time" in plan[0][-1], plan


def test_postgresql_hot_tier(run_dir, tmp_path, capsys, pg_url):  # noqa: F811
    url = pg_url
    with create_engine(url).begin() as conn:
        conn.execute(text("drop table if exists audit_records"))
    audit = _fill(tmp_path / "audit", run_dir, "--hot-url", url)
    capsys.readouterr()
    _query_tiers(capsys, audit, "--hot-url", url)


def test_unknown_client_and_bad_dates(store, capsys):
    code, rows, err = _query(capsys, store, client="nobody")
    assert code == 0 and rows == [] and "not in the vault" in err
    assert main(["audit", "query", str(store), "--client", "c01", "--from", DAYS[1], "--to",
                 DAYS[0]]) == 2
    assert "before --from" in capsys.readouterr().err
    assert main(["audit", "query", str(store / "nope"), "--client", "c01", "--from", DAYS[0],
                 "--to", DAYS[0]]) == 2


def test_erasure_shreds_the_link_and_the_escrow_recovers_it(run_dir, tmp_path, capsys):  # noqa: F811
    audit = tmp_path / "audit"
    shutil.copytree(run_dir / "audit", audit)
    code, before, _ = _query(capsys, audit, start=DATE, end=DATE)
    assert code == 0 and before
    vault = PiiVault(str(audit / "vault.sqlite"))
    key = vault.key("c01")
    vault.close()
    assert main(["audit", "forget", str(audit), "--client", "c01"]) == 0
    capsys.readouterr()
    # the records stay and still verify ...
    assert main(["audit", "verify", str(audit)]) == 0
    assert "intact" in capsys.readouterr().out
    assert (audit / "trail.jsonl").read_bytes() == (run_dir / "audit" / "trail.jsonl").read_bytes()
    # ... but nothing links them to the client any more
    code, rows, err = _query(capsys, audit, start=DATE, end=DATE)
    assert code == 1 and rows == [] and "erased" in err
    raw = (audit / "vault.sqlite").read_bytes()
    assert key not in raw and b"c01" not in raw
    assert main(["audit", "forget", str(audit), "--client", "c01"]) == 2
    # break glass: the regulator's key opens the escrow and finds the same records
    code, rows, err = _query(capsys, audit, "--regulator-key",
                             str(run_dir / "keys" / "regulator.pem"), start=DATE, end=DATE)
    assert code == 0 and "break glass" in err and rows == before
    # and no other key does
    shutil.copy(run_dir / "audit" / "public.pem", tmp_path / "not-x25519.pem")
    code, rows, err = _query(capsys, audit, "--regulator-key", str(tmp_path / "not-x25519.pem"),
                             start=DATE, end=DATE)
    assert code == 2 and "not a PEM regulator private key" in err
    make_regulator_key(str(tmp_path / "other.pem"), str(tmp_path / "other.pub.pem"))
    code, rows, err = _query(capsys, audit, "--regulator-key", str(tmp_path / "other.pem"),
                             start=DATE, end=DATE)
    assert code == 2 and "does not open" in err


def test_cat_export(run_dir, tmp_path, capsys):  # noqa: F811
    events = [json.loads(line) for line in
              (run_dir / "audit" / "cat.jsonl").read_text().splitlines()]
    kinds = {e["eventType"] for e in events}
    assert {"MENO", "MEOA", "MEOT", "MEOC"} <= kinds
    assert {e["actionType"] for e in events} == {"NEW"}
    trade = next(e for e in events if e["eventType"] == "MEOT")
    assert trade["tradeID"] is not None and trade["side"] in ("B", "SL")
    audit = tmp_path / "audit"
    shutil.copytree(run_dir / "audit", audit)
    new = next(json.loads(line) for line in (audit / "trail.jsonl").read_text().splitlines()
               if '"ORDER_RECEIVED"' in line)
    assert main(["audit", "correct", str(audit), "--event-id", new["event_id"], "--set",
                 "quantity=700", "--reason", "wrong size", "--signing-key",
                 str(run_dir / "keys" / "audit-signing.pem")]) == 0
    assert main(["audit", "cat", str(audit), "-o", str(tmp_path / "cat.jsonl")]) == 0
    cor = [json.loads(line) for line in (tmp_path / "cat.jsonl").read_text().splitlines()
           if '"COR"' in line]
    assert len(cor) == 1 and cor[0]["quantity"] == 700 and cor[0]["eventType"] == "MENO"
    assert cor[0]["correctedFirmROEID"] == new["event_id"]


@pytest.mark.parametrize("command", [
    ["age", "--today", "2026-12-08"], ["ingest"],
    ["query", "--client", "c01", "--from", DATE, "--to", DATE]])
def test_an_unreachable_hot_tier_or_no_audit_directory(store, tmp_path, capsys, command):
    verb, *rest = command
    assert main(["audit", verb, str(tmp_path / "nowhere"), *rest]) == 2
    assert "not an audit directory" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
    assert main(["audit", verb, str(store), *rest, "--hot-url",
                 "postgresql+psycopg://tw:tw@127.0.0.1:1/tw"]) == 2
    assert "cannot open the hot tier (127.0.0.1:1/tw)" in capsys.readouterr().err


def test_warm_days_are_sorted_by_client_in_small_row_groups(store, capsys):
    """What lets the query read only a client's row groups of a warm day."""
    assert main(["audit", "age", str(store), "--today", "2026-12-08", "--hot-days", "5"]) == 0
    capsys.readouterr()
    path = store / "warm" / "date=2026-08-03" / "records.parquet"
    meta = pq.ParquetFile(path).metadata
    assert all(meta.row_group(i).num_rows <= WARM_ROW_GROUP for i in range(meta.num_row_groups))
    hashes = [h for h in pq.read_table(path).column("client_id_hash").to_pylist() if h]
    assert hashes and hashes == sorted(hashes)


def test_a_tampered_trail_is_not_ingested(run_dir, tmp_path, capsys):  # noqa: F811
    audit = tmp_path / "audit"
    shutil.copytree(run_dir / "audit", audit)
    (audit / "hot.sqlite").unlink()
    lines = (audit / "trail.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"quantity":', '"quantity":1')
    (audit / "trail.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["audit", "ingest", str(audit)]) == 1
    assert "does not verify, nothing loaded: EDITED" in capsys.readouterr().err
    code, rows, _ = _query(capsys, audit, start=DATE, end=DATE)
    assert code == 0 and rows == []
