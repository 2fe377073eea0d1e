"""The compliance benchmarks run (small sizes; their figures are measured, not asserted), and
the regulator-query store is cached and built over several runs."""

import os

from tickwire.bench.compliance import audit_figures, query_figures


def test_the_query_store_is_built_over_runs_then_queried(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKWIRE_BENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("TICKWIRE_BENCH_QUERY_RECORDS", "4000")
    monkeypatch.setenv("TICKWIRE_BENCH_BUILD_SECONDS", "0")
    [only] = query_figures()
    assert "store incomplete: 1 of 20 days built" in only.note
    [store] = os.listdir(tmp_path)
    assert store.startswith("audit-store-v3-4000-records-20-days-")
    monkeypatch.setenv("TICKWIRE_BENCH_BUILD_SECONDS", "600")
    figures = {f.name: f for f in query_figures()}
    assert os.listdir(tmp_path) == [store]
    found = {name: int(f.note.split()[0]) for name, f in figures.items()
             if name.startswith("regulator query")}
    assert found["regulator query hot+warm"] == found["regulator query hot only"] + \
        found["regulator query warm only"] > 0
    assert len(os.listdir(tmp_path / store / "warm")) == 10
    again = {f.name: f for f in query_figures()}            # reused, not rebuilt
    assert again["audit store load"].value == figures["audit store load"].value


def test_the_audit_bench_appends_verifies_and_proves(monkeypatch):
    monkeypatch.setenv("TICKWIRE_BENCH_AUDIT_RECORDS", "3000")
    figures = {f.name: f for f in audit_figures()}
    assert figures["audit appends/s (tree + signed head every 1024)"].value > 0
    assert figures["audit inclusion proof size"].value == 32 * 12      # 3,001 leaves
    assert "tree of 3,001" in figures["audit inclusion proof size"].note
