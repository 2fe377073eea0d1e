"""A trading day's post-trade in one call: clear the journal, then settle on T+1.

What the main job runs after the close (``tickwire run`` → ``build/run/clearing/``), and what
it prints. A day that follows the days already in the directory (``tickwire run
--trade-date`` on successive business days) joins them: the earlier days' open fails are
retried, aged and closed out in its cycle. Any other day (the same day run again, an earlier
one) starts a new clearing directory, and the log says so.
"""

import datetime as dt
import logging
import shutil

from tickwire.clearing.clear import clear
from tickwire.clearing.files import DayOrderError
from tickwire.clearing.settle import settle

log = logging.getLogger(__name__)

__all__ = ["clear_and_settle", "describe"]


def clear_and_settle(wal_path, config_path, out_dir, trade_date=None, db=None, progress=True):
    """Clear into a fresh ``out_dir`` and settle its settlement date; return
    ``{"netting": netting.json, "settlement": settlement.json}``."""
    try:
        netting = clear(wal_path, config_path, out_dir, trade_date)
    except DayOrderError as exc:
        log.warning("%s; starting a new clearing directory %s", exc, out_dir)
        shutil.rmtree(out_dir)
        netting = clear(wal_path, config_path, out_dir, trade_date)
    settlement = settle(out_dir, dt.date.fromisoformat(netting["settlement_date"]), db, progress=progress)
    return {"netting": netting, "settlement": settlement}


def describe(result):
    """Lines for the main job's report."""
    n, s = result["netting"], result["settlement"]
    fails = {}
    for member in s["members"].values():
        for f in member["fails"]:
            fails[f["kind"]] = fails.get(f["kind"], 0) + 1
    kinds = f" ({', '.join(f'{k} {v}' for k, v in sorted(fails.items()))})" if fails else ""
    netting = (f"clearing {n['trade_date']}: {n['trades']:,} trades; netting "
               f"{n['gross']['movements']:,} gross movements → {n['net']['movements']:,} net, "
               f"cash ${n['gross']['cash']} → ${n['net']['cash']}, efficiency "
               f"{100 * n['efficiency']:.2f}%")
    settled = (f"settlement {s['date']} ({n['cycle']}): {s['totals']['settled']:,} instructions "
               f"settled, {s['totals']['failed']:,} failed{kinds}")
    lines = [netting, settled]
    carried = sum(f["age"] > 0 for m in s["members"].values() for f in m["fails"])
    if carried or s.get("buy_ins_due") or s.get("defaults"):
        lines.append(f"fails carried from earlier days: {carried}; due for buy-in: "
                     f"{len(s.get('buy_ins_due', []))}; defaults: {len(s.get('defaults', {}))}")
    return lines
