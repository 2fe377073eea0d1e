"""``tickwire surveil`` and ``tickwire bestex``: market-abuse alerts and the Rule 605-style
execution quality report of a day, from a run directory or a command file.

A run directory (the main job's ``--out``) gives its journal (``session.wal``) and accounts
(``venue.json``): the day's reports are rebuilt from the journal. A command file is replayed
through the reference model. Either way the reports go through
:func:`tickwire.compliance.surveillance.detectors.surveil`; ``--owners`` names the firms'
beneficial owners (wash trades).
"""

import json
import os
import sys
import tempfile

from tickwire.accounts.config import load_config
from tickwire.compliance.audit.source import journal_reports, read_entries
from tickwire.compliance.reports.bestex import (
    ORDER_COLUMNS,
    execution_quality,
    order_rows,
    plot_report,
    report_rows,
    write_report,
)
from tickwire.compliance.surveillance.detectors import ALERT_TYPES, surveil
from tickwire.compliance.surveillance.files import OwnersFileError, read_owners, write_alerts
from tickwire.offline.commands import CommandFileError
from tickwire.offline.replay import replay

__all__ = ["add_surveil_arguments", "surveil_main", "add_bestex_arguments", "bestex_main",
           "command_file_reports"]


def command_file_reports(path):
    """The reports of a command file replayed through the reference model."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "reports.jsonl")
        replay(path, reports_path=out)
        with open(out) as f:
            return [json.loads(line) for line in f]


def _run_dir_reports(run_dir):
    wal, config = os.path.join(run_dir, "session.wal"), os.path.join(run_dir, "venue.json")
    for path in (wal, config):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run_dir}: not a run directory (no {os.path.basename(path)})")
    return journal_reports(read_entries(wal), load_config(config))


def _reports(args, command):
    """The day's reports from RUN_DIR or --commands; None after printing why not."""
    if (args.run_dir is None) == (args.commands is None):
        print(f"tickwire {command}: give a RUN_DIR or --commands FILE.csv (one of them)",
              file=sys.stderr)
        return None
    try:
        return (command_file_reports(args.commands) if args.commands
                else _run_dir_reports(args.run_dir))
    except (CommandFileError, FileNotFoundError, ValueError) as exc:
        print(f"tickwire {command}: {exc}", file=sys.stderr)
        return None


def surveil_main(args):
    """``tickwire surveil`` entry."""
    try:
        owners = read_owners(args.owners) if args.owners else {}
    except OwnersFileError as exc:
        print(f"tickwire surveil: {exc}", file=sys.stderr)
        return 2
    reports = _reports(args, "surveil")
    if reports is None:
        return 2
    alerts = surveil(reports, owners)
    write_alerts(args.output, alerts)
    counts = ", ".join(f"{k} {sum(1 for a in alerts if a.type == k)}" for k in ALERT_TYPES)
    print(f"{len(reports):,} reports surveilled: {counts}; wrote {args.output}")
    return 0


def bestex_main(args):
    """``tickwire bestex`` entry."""
    reports = _reports(args, "bestex")
    if reports is None:
        return 2
    quality = execution_quality(reports)
    rows = report_rows(quality)
    write_report(args.output, rows)
    if args.orders:
        write_report(args.orders, order_rows(quality), ORDER_COLUMNS)
    if args.plot:
        plot_report(args.plot, rows)
    print(f"{len(rows)} rows (symbol x size bucket x order category); wrote {args.output}"
          + "".join(f", {p}" for p in (args.orders, args.plot) if p)
          + (f" ({len(quality):,} orders)" if args.orders else ""))
    return 0


def _add_source(parser):
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                        help="a run directory (the main job's --out: session.wal, venue.json)")
    parser.add_argument("--commands", metavar="FILE.csv",
                        help="a command file, replayed through the reference model")


def add_bestex_arguments(parser):
    _add_source(parser)
    parser.add_argument("-o", "--output", required=True, metavar="REPORT.csv",
                        help="the Rule 605-style report (CSV)")
    parser.add_argument("--plot", metavar="REPORT.png",
                        help="also plot effective spread and fill rate per bucket")
    parser.add_argument("--orders", metavar="ORDERS.csv",
                        help="also write one row per order: its quote at arrival, fill rate, "
                        "average price, price improvement, effective spread, time to fill")
    return parser


def add_surveil_arguments(parser):
    _add_source(parser)
    parser.add_argument("--owners", metavar="OWNERS.csv",
                        help="the firms' beneficial owners (CSV: firm, owner)")
    parser.add_argument("-o", "--output", required=True, metavar="ALERTS.jsonl",
                        help="one alert per line: type, firm, symbol, time, orders, score")
    return parser
