"""A trading day's post-trade in one call: clear the journal, then settle on T+1.

What the main job runs after the close (``tickwire run`` → ``build/run/clearing/``), and what
it prints.
"""

import datetime as dt
import os
import shutil

from tickwire.clearing.clear import clear
from tickwire.clearing.settle import settle

__all__ = ["clear_and_settle", "describe"]


def clear_and_settle(wal_path, config_path, out_dir, trade_date=None, db=None, progress=True):
    """Clear into a fresh ``out_dir`` and settle its settlement date; return
    ``{"netting": netting.json, "settlement": settlement.json}``."""
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)              # a new day: new ledgers and coordinator log
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
    return [netting, settled]
