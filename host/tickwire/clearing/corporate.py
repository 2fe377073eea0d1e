"""Corporate actions between trade and settlement: stock splits and cash dividends.

They come from the venue config (copied into ``clearing.json`` by ``tickwire clear``)::

    "corporate_actions": [
      {"type": "split", "symbol": "ACME", "ex_date": "2026-12-07", "ratio": "2:1"},
      {"type": "dividend", "symbol": "BOLT", "ex_date": "2026-12-08",
       "record_date": "2026-12-08", "amount": "0.25"}]

Rules (one function each):

* **Split** (``new:old``): an obligation still open on its ex-date becomes ``qty × new / old``
  shares at ``price × old / new``, its cash unchanged (:func:`split_obligation`); holdings at the
  depository grow by the same ratio on the ex-date (:func:`split_issue`).
* **Cash dividend**: the holder of record on the record date is paid. A trade made before the
  ex-date but settling after the record date leaves the seller on record for shares the buyer
  bought with the dividend: the seller owes the buyer ``amount × qty``, a cash claim
  (:func:`dividend_claims`). Under T+1 the ex-date is the record date, so only a trade whose
  settlement slips past the record date (a fail, or T+2) straddles it.
"""

import datetime as dt
from dataclasses import dataclass

from tickwire.core.money import parse_amount

__all__ = [
    "CashDividend",
    "Claim",
    "CorporateActionError",
    "Split",
    "actions_dict",
    "dividend_claims",
    "parse_actions",
    "split_issue",
    "split_obligation",
]


class CorporateActionError(ValueError):
    """A malformed corporate action, or a split that would leave a fraction of a share."""


@dataclass(frozen=True)
class Split:
    symbol: str
    ex_date: dt.date
    new: int
    old: int

    @property
    def id(self):
        return f"split:{self.symbol}:{self.ex_date}"


@dataclass(frozen=True)
class CashDividend:
    symbol: str
    ex_date: dt.date
    record_date: dt.date
    amount: int                 # 1/10000 $ per share

    @property
    def id(self):
        return f"dividend:{self.symbol}:{self.record_date}"


@dataclass(frozen=True)
class Claim:
    """``payer`` owes ``payee`` ``cash`` (1/10000 $) for a trade's dividend."""
    action: str
    match: int
    payer: str
    payee: str
    cash: int


def _date(spec, key, n):
    try:
        return dt.date.fromisoformat(spec[key])
    except (KeyError, TypeError, ValueError):
        raise CorporateActionError(f"corporate_actions[{n}]: {key} must be YYYY-MM-DD") from None


def parse_actions(items):
    """Split and CashDividend records from the config's list."""
    out = []
    for n, spec in enumerate(items or ()):
        kind, symbol = spec.get("type"), spec.get("symbol")
        if not symbol:
            raise CorporateActionError(f"corporate_actions[{n}]: no symbol")
        if kind == "split":
            new, _, old = str(spec.get("ratio", "")).partition(":")
            if not (new.isdigit() and old.isdigit() and int(new) > 0 and int(old) > 0):
                raise CorporateActionError(f"corporate_actions[{n}]: ratio must be NEW:OLD")
            out.append(Split(symbol, _date(spec, "ex_date", n), int(new), int(old)))
        elif kind == "dividend":
            try:
                amount = parse_amount(spec.get("amount", ""))
            except ValueError as exc:
                raise CorporateActionError(f"corporate_actions[{n}]: {exc}") from None
            out.append(CashDividend(symbol, _date(spec, "ex_date", n),
                                    _date(spec, "record_date", n), amount))
        else:
            raise CorporateActionError(f"corporate_actions[{n}]: type {kind!r} is not split "
                                       "or dividend")
    return out


def actions_dict(actions):
    """The config/``clearing.json`` form of the records."""
    out = []
    for a in actions:
        if isinstance(a, Split):
            out.append({"type": "split", "symbol": a.symbol, "ex_date": a.ex_date.isoformat(),
                        "ratio": f"{a.new}:{a.old}"})
        else:
            out.append({"type": "dividend", "symbol": a.symbol,
                        "ex_date": a.ex_date.isoformat(),
                        "record_date": a.record_date.isoformat(),
                        "amount": f"{a.amount / 10_000:.4f}"})
    return out


def split_obligation(split, qty, trade_date, date):
    """The shares of an obligation of ``trade_date`` still open on ``date``: adjusted when
    the split's ex-date falls after the trade and on or before ``date``."""
    if not (trade_date < split.ex_date <= date):
        return qty
    shares, rest = divmod(qty * split.new, split.old)
    if rest:
        raise CorporateActionError(f"{split.id}: {qty} shares do not split {split.new}:"
                                   f"{split.old} into whole shares")
    return shares


def split_issue(split, held):
    """The shares a holding of ``held`` gains at the split (issued by the issuer)."""
    return split_obligation(split, held, split.ex_date - dt.timedelta(days=1),
                            split.ex_date) - held


def dividend_claims(dividend, trades, settled_on):
    """Claims of the trades in ``dividend.symbol`` made before its ex-date that settle after
    its record date. ``settled_on``: match → the date its obligation settles (or is due)."""
    return [Claim(dividend.id, t.match, t.seller, t.buyer, dividend.amount * t.qty)
            for t in trades if t.symbol == dividend.symbol and t.trade_date < dividend.ex_date
            and settled_on[t.match] > dividend.record_date]
