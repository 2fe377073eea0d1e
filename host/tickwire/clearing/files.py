"""The clearing run's files (a contract: other tools read them).

``trades.csv``       match, symbol, qty, price, buyer, seller, trade_date
``obligations.csv``  member, symbol, net_qty, net_cash (``$CASH``: the member's total)
``netting.json``     gross and net shares, cash and movements, efficiency, dates
``clearing.json``    what settlement needs besides: trade and settlement dates, cycle, the
                     members' opening balances and the CCP's terms (from the venue config)

The directory holds the latest trade day's files at its top, and every day cleared into it
under ``days/<trade date>/`` (the same four files): settlement reads the days whose
settlement date has come, so obligations and fails carry across trading days.

Prices and cash are decimal strings in $ with 4 places. Files are written to a temporary name
and renamed, so a reader never sees half of one.
"""

import csv
import datetime as dt
import io
import json
import os
from typing import NamedTuple

from tickwire.clearing.corporate import actions_dict, parse_actions
from tickwire.clearing.netting import NetPosition, efficiencies
from tickwire.clearing.opening import CcpTerms, OpeningBalance
from tickwire.clearing.records import Trade
from tickwire.core.money import format_price, parse_amount

__all__ = [
    "OBLIGATION_COLUMNS",
    "TRADE_COLUMNS",
    "ClearingFilesError",
    "ClearingInfo",
    "DayOrderError",
    "cleared_days",
    "read_clearing",
    "read_obligations",
    "read_trades",
    "write_atomic",
    "write_clearing",
]

TRADE_COLUMNS = ("match", "symbol", "qty", "price", "buyer", "seller", "trade_date")
OBLIGATION_COLUMNS = ("member", "symbol", "net_qty", "net_cash")


class ClearingFilesError(ValueError):
    """A clearing directory that is missing files or holds malformed ones."""


class DayOrderError(ClearingFilesError):
    """A trading day that cannot join the days already in a clearing directory."""


def write_atomic(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _csv(columns, rows):
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return out.getvalue()


def netting_summary(netting, trade_date, settle_date, cycle):
    """The ``netting.json`` dict."""
    e = efficiencies(netting)
    return {"trade_date": trade_date.isoformat(), "settlement_date": settle_date.isoformat(),
            "cycle": f"T+{cycle}", "trades": netting.trades,
            "gross": {"shares": netting.gross_shares, "cash": format_price(netting.gross_cash),
                      "movements": netting.gross_movements},
            "net": {"shares": netting.net_shares, "cash": format_price(netting.net_cash),
                    "movements": netting.net_movements},
            "efficiency": round(netting.efficiency, 6),
            "reduction": {k: round(v, 6) for k, v in e.items()}}


def day_dir(out_dir, trade_date):
    """Where the files of ``trade_date`` are kept in a clearing directory."""
    return os.path.join(out_dir, "days", trade_date.isoformat())


def write_clearing(out_dir, trades, netting, trade_date, settle_date, cycle, opening, ccp,
                   actions=()):
    """Write the four files of one clearing run into ``out_dir`` and its ``days/`` entry (the
    day's copy first: a crash between the two leaves the day readable)."""
    summary = netting_summary(netting, trade_date, settle_date, cycle)
    members = sorted({p.member for p in netting.positions})
    files = {"trades.csv": _csv(TRADE_COLUMNS, (
        (t.match, t.symbol, t.qty, format_price(t.price), t.buyer, t.seller,
         t.trade_date.isoformat()) for t in trades)),
        "obligations.csv": _csv(OBLIGATION_COLUMNS, (
            (p.member, p.symbol, p.qty, format_price(p.cash)) for p in netting.positions)),
        "netting.json": json.dumps(summary, indent=2) + "\n",
        "clearing.json": _clearing_json(trade_date, settle_date, cycle, opening, ccp, actions,
                                        members)}
    for where in (day_dir(out_dir, trade_date), out_dir):
        os.makedirs(where, exist_ok=True)
        for name, text in files.items():
            write_atomic(os.path.join(where, name), text)
    return summary


def _clearing_json(trade_date, settle_date, cycle, opening, ccp, actions, members):
    return json.dumps({
        "trade_date": trade_date.isoformat(), "settlement_date": settle_date.isoformat(),
        "cycle": cycle,
        "opening": {m: {"cash": opening[m].cash, "margin": opening[m].margin,
                        "guarantee_fund": opening[m].guarantee_fund,
                        "shares": opening[m].shares} for m in members if m in opening},
        "ccp": {"capital": ccp.capital, "credit_line": ccp.credit_line},
        "corporate_actions": actions_dict(actions)}, indent=2) + "\n"


def _need(path):
    if not os.path.isfile(path):
        raise ClearingFilesError(f"{path}: missing (run tickwire clear first)")
    return path


def read_obligations(out_dir):
    """The NetPosition rows of ``obligations.csv``."""
    path = _need(os.path.join(out_dir, "obligations.csv"))
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != OBLIGATION_COLUMNS:
            raise ClearingFilesError(f"{path}: columns {reader.fieldnames} are not "
                                     f"{', '.join(OBLIGATION_COLUMNS)}")
        try:
            return [NetPosition(r["member"], r["symbol"], int(r["net_qty"]),
                                parse_amount(r["net_cash"])) for r in reader]
        except ValueError as exc:
            raise ClearingFilesError(f"{path}: line {reader.line_num}: {exc}") from exc


class ClearingInfo(NamedTuple):
    """``clearing.json``: what settlement needs besides the obligations."""
    trade_date: dt.date
    settlement_date: dt.date
    cycle: int
    opening: dict               # member -> OpeningBalance
    ccp: CcpTerms
    actions: list               # Split, CashDividend


def read_clearing(out_dir):
    """The :class:`ClearingInfo` of a clearing directory."""
    path = _need(os.path.join(out_dir, "clearing.json"))
    with open(path) as f:
        d = json.load(f)
    opening = {m: OpeningBalance(v["cash"], v["margin"], v["guarantee_fund"], v["shares"])
               for m, v in d["opening"].items()}
    return ClearingInfo(dt.date.fromisoformat(d["trade_date"]),
                        dt.date.fromisoformat(d["settlement_date"]), d["cycle"], opening,
                        CcpTerms(d["ccp"]["capital"], d["ccp"]["credit_line"]),
                        parse_actions(d.get("corporate_actions")))


def cleared_days(out_dir):
    """[(directory, :class:`ClearingInfo`)] of every day cleared into ``out_dir``, oldest
    first (a directory written before ``days/`` existed: its one day)."""
    days = os.path.join(out_dir, "days")
    names = sorted(os.listdir(days)) if os.path.isdir(days) else []
    where = [os.path.join(days, n) for n in names
             if os.path.isfile(os.path.join(days, n, "clearing.json"))]
    if not where:
        where = [out_dir]
    return [(w, read_clearing(w)) for w in where]


def read_trades(out_dir):
    """The :class:`Trade` s of ``trades.csv`` (accounts are not in the file: empty)."""
    path = _need(os.path.join(out_dir, "trades.csv"))
    with open(path, newline="") as f:
        return [Trade(int(r["match"]), r["symbol"], int(r["qty"]), parse_amount(r["price"]),
                      r["buyer"], r["seller"], "", "", dt.date.fromisoformat(r["trade_date"]), 0)
                for r in csv.DictReader(f)]
