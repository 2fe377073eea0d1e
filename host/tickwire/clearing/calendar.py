"""The settlement calendar: NYSE (XNYS) business days from ``exchange-calendars``.

Settlement is T+1 (US equities since May 2024), T+2 as an option: the trade date plus that
many XNYS sessions, so weekends and exchange holidays are skipped from the package's calendar,
never from a list kept here.
"""

import datetime as dt
import functools

import exchange_calendars
import pandas as pd

__all__ = [
    "CYCLES",
    "CalendarError",
    "business_days_between",
    "is_business_day",
    "next_business_day",
    "settlement_date",
]

CYCLES = (1, 2)


class CalendarError(ValueError):
    """A date outside the calendar's range or not a business day where one is needed."""


@functools.cache
def _xnys():
    return exchange_calendars.get_calendar("XNYS")


def _check_range(day):
    cal = _xnys()
    if not (cal.first_session.date() <= day <= cal.last_session.date()):
        raise CalendarError(f"{day} is outside the XNYS calendar "
                            f"({cal.first_session.date()} to {cal.last_session.date()})")


def is_business_day(day: dt.date) -> bool:
    """Whether ``day`` is an XNYS session (a day the exchange trades and settles)."""
    _check_range(day)
    return _xnys().is_session(pd.Timestamp(day))


def _require_session(day, what):
    if not is_business_day(day):
        raise CalendarError(f"{what} {day} ({day:%A}) is not an NYSE business day")


def settlement_date(trade_date: dt.date, cycle: int = 1) -> dt.date:
    """T+``cycle``: the ``cycle``-th XNYS session after ``trade_date`` (itself a session)."""
    if cycle not in CYCLES:
        raise CalendarError(f"settlement cycle T+{cycle} is not one of T+1, T+2")
    _require_session(trade_date, "trade date")
    return _xnys().session_offset(pd.Timestamp(trade_date), cycle).date()


def next_business_day(day: dt.date) -> dt.date:
    """The first XNYS session after ``day`` (a session or not)."""
    _check_range(day)
    return _xnys().date_to_session(pd.Timestamp(day) + pd.Timedelta(days=1), "next").date()


def business_days_between(start: dt.date, end: dt.date) -> int:
    """Sessions in ``(start, end]``: how many business days ``end`` is after ``start``."""
    _check_range(start)
    _check_range(end)
    if end <= start:
        return 0
    return len(_xnys().sessions_in_range(pd.Timestamp(start) + pd.Timedelta(days=1),
                                         pd.Timestamp(end)))


def trading_day(day: dt.date) -> dt.date:
    """``day`` if it is a session, else the next session (the trade date of a session run on
    a weekend or holiday)."""
    return day if is_business_day(day) else next_business_day(day)
