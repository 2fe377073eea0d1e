"""``tickwire clear``: journal → trades → novation → netting → the clearing files."""

import logging

from tickwire.accounts.config import load_config
from tickwire.clearing.calendar import settlement_date
from tickwire.clearing.capture import capture_session
from tickwire.clearing.corporate import parse_actions
from tickwire.clearing.files import write_clearing
from tickwire.clearing.netting import net
from tickwire.clearing.novation import novate
from tickwire.clearing.opening import parse_opening, read_venue_data

__all__ = ["clear"]

log = logging.getLogger(__name__)


def clear(wal_path, config_path, out_dir, trade_date=None, cycle=1):
    """Clear one session's journal into ``out_dir``; return the ``netting.json`` dict.

    Raises
    ------
    CaptureError, CalendarError, OpeningError
        With a message that says what is wrong; nothing is written.
    """
    config = load_config(config_path)
    data = read_venue_data(config_path)
    opening, ccp = parse_opening(data)
    actions = parse_actions(data.get("corporate_actions"))
    date, trades = capture_session(wal_path, config, trade_date)
    settle = settlement_date(date, cycle)
    members = {a.firm for a in config.accounts.values()}
    netting = net(novate(trades), members)
    summary = write_clearing(out_dir, trades, netting, date, settle, cycle, opening, ccp,
                             actions)
    log.info("cleared %d trades of %s (settles %s, T+%d): %d net movements from %d gross, "
             "efficiency %.2f%%", len(trades), date, settle, cycle, netting.net_movements,
             netting.gross_movements, 100 * netting.efficiency)
    return summary
