"""``tickwire clear``: journal → trades → novation → netting → the clearing files."""

import datetime as dt
import logging
import os

from tickwire.accounts.config import load_config
from tickwire.clearing.calendar import settlement_date
from tickwire.clearing.capture import capture_session
from tickwire.clearing.coordinator_log import CoordinatorLog
from tickwire.clearing.corporate import parse_actions
from tickwire.clearing.files import DayOrderError, cleared_days, write_clearing
from tickwire.clearing.netting import net
from tickwire.clearing.novation import novate
from tickwire.clearing.opening import parse_opening, read_venue_data

__all__ = ["check_new_day", "clear", "last_cycle"]

log = logging.getLogger(__name__)


def last_cycle(out_dir):
    """The date of the latest settlement cycle run in ``out_dir``, or None."""
    path = os.path.join(out_dir, "ccp.db")
    if not os.path.isfile(path):
        return None
    log = CoordinatorLog(path)
    try:
        last = log.last_cycle()
    finally:
        log.close()
    return None if last is None else dt.date.fromisoformat(last)


def check_new_day(out_dir, trade_date, settle):
    """Refuse a day that does not follow the days already in ``out_dir``: days are cleared
    in order, each settles on a date of its own, after the last cycle run there. Clearing
    the latest day again is allowed until its settlement cycle has run."""
    if os.path.isfile(os.path.join(out_dir, "clearing.json")):
        for _, info in cleared_days(out_dir):
            if info.trade_date > trade_date:
                raise DayOrderError(
                    f"{out_dir} holds trade date {info.trade_date}, after {trade_date}: "
                    "trading days are cleared in order (use another --out)")
            if info.trade_date != trade_date and info.settlement_date == settle:
                raise DayOrderError(
                    f"the trades of {info.trade_date} in {out_dir} settle on {settle} too: "
                    "one trade day per settlement date (keep one --cycle)")
    last = last_cycle(out_dir)
    if last is not None and settle <= last:
        raise DayOrderError(
            f"the settlement cycle of {last} has run in {out_dir}; the trades of {trade_date} "
            f"settle on {settle}, not after it: nothing could settle them (use another --out)")


def clear(wal_path, config_path, out_dir, trade_date=None, cycle=1):
    """Clear one session's journal into ``out_dir``; return the ``netting.json`` dict.

    ``out_dir`` may hold earlier trading days (cleared and settled there): the new day joins
    them, so their open fails carry into its settlement cycles.

    Raises
    ------
    CaptureError, CalendarError, OpeningError, ClearingFilesError (DayOrderError)
        With a message that says what is wrong; nothing is written.
    """
    config = load_config(config_path)
    data = read_venue_data(config_path)
    opening, ccp = parse_opening(data)
    actions = parse_actions(data.get("corporate_actions"))
    date, trades = capture_session(wal_path, config, trade_date)
    settle = settlement_date(date, cycle)
    check_new_day(out_dir, date, settle)
    members = {a.firm for a in config.accounts.values()}
    netting = net(novate(trades), members)
    summary = write_clearing(out_dir, trades, netting, date, settle, cycle, opening, ccp,
                             actions)
    log.info("cleared %d trades of %s (settles %s, T+%d): %d net movements from %d gross, "
             "efficiency %.2f%%", len(trades), date, settle, cycle, netting.net_movements,
             netting.gross_movements, 100 * netting.efficiency)
    return summary
