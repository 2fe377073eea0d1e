"""Trade capture: the journal replayed, one :class:`~tickwire.clearing.records.Trade` per match.

The journal (the sequencer's write-ahead log) holds requests and engine commands, not trades:
the trades are what the engine made of them. :func:`trades_from_journal` replays a copy of the
journal through :meth:`Sequencer.recover` into a fresh reference-model engine (recovery checks
every rebuilt command against the logged one byte for byte) and collects the two ``executed``
reports of each match (the resting order's, liquidity ``A``, and the aggressor's, ``R``). So
the trades are rebuilt identically from the same journal, once per match, and this module is
the only place that knows how the journal is read.

The session's trade date is recorded in the journal at the open: the ``O`` system request's
``trade_date`` (ISO ``YYYY-MM-DD``). A caller's ``trade_date`` overrides it.
"""

import datetime as dt
import logging
import os
import shutil
import tempfile

from tickwire.clearing.records import Trade
from tickwire.core.requests import SystemEvent
from tickwire.engine.model import ModelEngine
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.wal import WriteAheadLog, read_header
from tickwire.sequencer.sequencer import RecoveryError, Sequencer

__all__ = ["CaptureError", "capture_session", "journal_trade_date", "trades_from_journal"]

log = logging.getLogger(__name__)


class CaptureError(ValueError):
    """The journal cannot be turned into trades (missing, foreign, or not this config's)."""


class _ExecutionTap(RiskManager):
    """The risk manager the replay feeds every report to; keeps the ``executed`` ones."""

    def __init__(self, config):
        super().__init__(config)
        self.executions = []        # (account, Report)

    def on_report(self, account, report):
        if report.type == "executed":
            self.executions.append((account, report))
        super().on_report(account, report)


def journal_trade_date(records):
    """The trade date the journal's opening ``O`` system request carries, or None."""
    for record in records:
        request = record.request
        if request.__class__ is SystemEvent and request.code == "O":
            date = request.trade_date
            return dt.date.fromisoformat(date) if date else None
    return None


def _replay(wal_path, config):
    """(records, executions) of a private copy of the journal (the original is never opened
    for writing: opening a log truncates a torn tail)."""
    if not os.path.isfile(wal_path):
        raise CaptureError(f"{wal_path}: no such journal")
    with open(wal_path, "rb") as f:
        try:
            read_header(f)
        except ValueError:
            raise CaptureError(f"{wal_path}: not a tickwire journal") from None
    with tempfile.TemporaryDirectory(prefix="tickwire-capture-") as tmp:
        copy = os.path.join(tmp, "journal.wal")
        shutil.copyfile(wal_path, copy)
        wal = WriteAheadLog(copy, fsync="none")
        try:
            records = list(wal.replay_records())
            _check_accounts(wal_path, records, config)
            tap = _ExecutionTap(config)
            sequencer = Sequencer(ModelEngine(), wal, config, tap)
            try:
                sequencer.recover()
            except RecoveryError as exc:
                raise CaptureError(f"{wal_path}: does not replay with this config: {exc}") \
                    from exc
        finally:
            wal.close_sync()
    return records, tap.executions


def _check_accounts(wal_path, records, config):
    accounts = {getattr(r.request, "account", None) for r in records}
    unknown = sorted(a for a in accounts if a and a not in config.accounts)
    if unknown:
        raise CaptureError(f"{wal_path}: accounts {', '.join(unknown)} are not in the config "
                           "(a journal of another venue?)")


def trades_from_journal(wal_path, config, trade_date=None):
    """The session's trades, in match-number order (:func:`capture_session` without the date)."""
    return capture_session(wal_path, config, trade_date)[1]


def capture_session(wal_path, config, trade_date=None):
    """(trade date, the session's trades in match-number order).

    Parameters
    ----------
    wal_path : str
        The sequencer's journal.
    config : Config
        The venue config the journal was written under (accounts → member firms).
    trade_date : datetime.date, optional
        Overrides the date recorded at the open.

    Raises
    ------
    CaptureError
        Missing or foreign journal, unknown accounts, no trade date, or a match without both
        of its sides.
    """
    records, executions = _replay(wal_path, config)
    date = trade_date or journal_trade_date(records)
    if date is None:
        raise CaptureError(f"{wal_path}: the journal records no trade date at the open; "
                           "give --trade-date YYYY-MM-DD")
    sides = {}
    for account, report in executions:
        sides.setdefault(report.match, {})[report.side] = (account, report)
    trades = []
    for match in sorted(sides):
        legs = sides[match]
        if set(legs) != {"B", "S"}:
            raise CaptureError(f"{wal_path}: match {match} has no {'B' if 'S' in legs else 'S'}"
                               " side")
        (buy_acct, buy), (sell_acct, sell) = legs["B"], legs["S"]
        if (buy.qty, buy.price, buy.symbol) != (sell.qty, sell.price, sell.symbol):
            raise CaptureError(f"{wal_path}: match {match}: the two sides disagree")
        trades.append(Trade(match, buy.symbol, buy.qty, buy.price, buy.firm, sell.firm,
                            buy_acct, sell_acct, date, buy.timestamp))
    log.info("captured %d trades from %d journal records (trade date %s)", len(trades),
             len(records), date)
    return date, trades
