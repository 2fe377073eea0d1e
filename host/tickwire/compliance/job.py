"""The main job's compliance step: the day's audit directory, verified, and its summary."""

import os

from tickwire.compliance.audit.cat import write_cat
from tickwire.compliance.audit.day import write_audit_dir
from tickwire.compliance.audit.keys import load_public_key
from tickwire.compliance.audit.settlement import SETTLEMENT_EVENTS
from tickwire.compliance.audit.source import journal_date, journal_reports, read_entries
from tickwire.compliance.audit.tiers import AuditStore
from tickwire.compliance.audit.trail import PUBLIC_KEY_FILE, read_records, read_trail_lines
from tickwire.compliance.audit.verify import verify_trail
from tickwire.compliance.reports.bestex import (
    ORDER_COLUMNS,
    execution_quality,
    order_rows,
    plot_report,
    report_rows,
    write_report,
)
from tickwire.compliance.surveillance.detectors import ALERT_TYPES, surveil
from tickwire.compliance.surveillance.files import write_alerts

__all__ = ["format_compliance", "run_compliance"]


def run_compliance(run_dir, wal_path, config, trade_date=None, hot_days=90, plot=True):
    """Write ``RUN_DIR/audit/`` from the WAL (dated with the journal's trade date unless
    ``trade_date`` is given), verify it, load it into the hot tier (days older
    than ``hot_days`` move to the warm tier), write the CAT-style export ``audit/cat.jsonl``,
    run surveillance on the day's reports into ``RUN_DIR/alerts.jsonl`` and write the
    best-execution report ``RUN_DIR/bestex.csv``, its per-order rows ``bestex_orders.csv``
    (and ``bestex.png`` if ``plot``); return the
    summary dict. With ``RUN_DIR/clearing/`` (the day cleared and settled), the trail holds the
    settlement of each execution too.

    Raises
    ------
    RuntimeError
        If the trail just written does not verify.
    """
    trade_date = trade_date or journal_date(wal_path)
    audit_dir = os.path.join(run_dir, "audit")
    clearing_dir = os.path.join(run_dir, "clearing")
    written = write_audit_dir(audit_dir, wal_path, config, trade_date,
                              os.path.join(run_dir, "keys"),
                              clearing_dir=clearing_dir if os.path.isdir(clearing_dir) else None)
    result = verify_trail(read_trail_lines(written["trail"]),
                          load_public_key(os.path.join(audit_dir, PUBLIC_KEY_FILE)))
    if not result.ok:
        raise RuntimeError(f"the audit trail just written does not verify: {result.message}")
    records = read_records(audit_dir)
    store = AuditStore(audit_dir)
    try:
        hot = store.load_day(trade_date, records)
        moved = store.age_out(trade_date, hot_days)
    finally:
        store.close()
    cat = write_cat(os.path.join(audit_dir, "cat.jsonl"), records, trade_date.isoformat())
    reports = journal_reports(read_entries(wal_path), config)
    alerts = surveil(reports)
    write_alerts(os.path.join(run_dir, "alerts.jsonl"), alerts)
    quality = execution_quality(reports)
    rows = report_rows(quality)
    write_report(os.path.join(run_dir, "bestex.csv"), rows)
    write_report(os.path.join(run_dir, "bestex_orders.csv"), order_rows(quality),
                 ORDER_COLUMNS)
    if plot:
        plot_report(os.path.join(run_dir, "bestex.png"), rows)
    counts = {kind: sum(1 for a in alerts if a.type == kind) for kind in ALERT_TYPES}
    settlement = {kind: sum(1 for r in records if r["event_type"] == kind)
                  for kind in SETTLEMENT_EVENTS}
    return {"best_execution": {"rows": len(rows),
                               "file": os.path.join(run_dir, "bestex.csv")},
            "surveillance": {"alerts": counts,
                             "file": os.path.join(run_dir, "alerts.jsonl")},
            "audit": {"dir": audit_dir, "trade_date": trade_date.isoformat(),
                      "records": result.records, "tree_heads": result.heads,
                      "root": result.root, "verified": True, "hot_records": hot,
                      "moved_to_warm": [d.isoformat() for d in moved], "cat_events": cat,
                      "settlement_records": settlement}}


def format_compliance(summary):
    """The readable lines of the job's report."""
    a = summary["audit"]
    counts = summary["surveillance"]["alerts"]
    settled = a["settlement_records"]
    return [f"audit: {a['records']:,} records, {a['tree_heads']} signed tree heads, verified "
            f"(root {a['root'][:16]}…) in {a['dir']}; settlement: "
            f"{settled['ORDER_SETTLED']:,} executions settled, "
            f"{settled['SETTLEMENT_FAILED']:,} failed",
            "surveillance alerts: " + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f" ({summary['surveillance']['file']})",
            f"best execution: {summary['best_execution']['rows']} Rule 605-style rows in "
            f"{summary['best_execution']['file']}"]
