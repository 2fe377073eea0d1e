"""Opening balances: what each member holds at the settlement bank and the depository.

They live in the venue config beside the accounts (JSON or TOML, amounts in $)::

    [members.F01]
    cash = 2500000.00               # settlement-bank cash
    margin = 100000.00              # margin posted with the CCP (a cash-ledger account)
    guarantee_fund = 50000.00       # the member's guarantee-fund contribution
    shares = { ACME = 20000 }       # depository positions

    [ccp]
    capital = 1000000.00            # the CCP's own capital ("skin in the game")
    credit_line = 50000000.00       # intraday credit of the CCP's settlement account

Every member that trades must have an entry; a member without one is an error, not zero.
"""

import json
import tomllib
from dataclasses import dataclass, field

from tickwire.core.money import PRICE_SCALE, format_price, parse_amount

__all__ = [
    "DEFAULT_CCP",
    "CcpTerms",
    "OpeningBalance",
    "OpeningError",
    "default_opening",
    "opening_dict",
    "parse_balance_spec",
    "parse_opening",
    "read_opening",
    "read_venue_data",
]


class OpeningError(ValueError):
    """Missing or malformed opening balances."""


@dataclass(frozen=True)
class OpeningBalance:
    """A member's opening balances (cash amounts in 1/10000 $, shares per symbol)."""
    cash: int
    margin: int = 0
    guarantee_fund: int = 0
    shares: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CcpTerms:
    """The CCP's own capital and its settlement account's intraday credit (1/10000 $)."""
    capital: int = 1_000_000 * PRICE_SCALE
    credit_line: int = 100_000_000 * PRICE_SCALE


DEFAULT_CCP = CcpTerms()


def _amount(where, value):
    # Exactly as written: a JSON number is read through its decimal text, never as binary.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OpeningError(f"{where}: {value!r} is not an amount in $")
    try:
        amount = parse_amount(str(value))
    except ValueError as exc:
        raise OpeningError(f"{where}: {exc}") from None
    if amount < 0:
        raise OpeningError(f"{where}: negative opening balance {value}")
    return amount


def _shares(where, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OpeningError(f"{where}: {value!r} is not a share count")
    return value


def parse_opening(data):
    """(member → OpeningBalance, CcpTerms) from a parsed config dict."""
    members = {}
    for firm, spec in (data.get("members") or {}).items():
        if not isinstance(spec, dict) or "cash" not in spec:
            raise OpeningError(f"members.{firm}: needs at least cash")
        members[firm] = OpeningBalance(
            _amount(f"members.{firm}.cash", spec["cash"]),
            _amount(f"members.{firm}.margin", spec.get("margin", 0)),
            _amount(f"members.{firm}.guarantee_fund", spec.get("guarantee_fund", 0)),
            {symbol: _shares(f"members.{firm}.shares.{symbol}", qty)
             for symbol, qty in (spec.get("shares") or {}).items()})
    ccp = data.get("ccp") or {}
    terms = CcpTerms(_amount("ccp.capital", ccp.get("capital", format_price(DEFAULT_CCP.capital))),
                     _amount("ccp.credit_line",
                             ccp.get("credit_line", format_price(DEFAULT_CCP.credit_line))))
    return members, terms


def read_venue_data(path):
    """The venue config file as a dict (TOML if ``.toml``, else JSON)."""
    with open(path, "rb") as f:
        return tomllib.load(f) if str(path).endswith(".toml") else json.load(f)


def read_opening(path):
    """:func:`parse_opening` of a config file."""
    return parse_opening(read_venue_data(path))


def opening_dict(balance):
    """The config form of an :class:`OpeningBalance` (amounts as $ strings)."""
    return {"cash": format_price(balance.cash),
            "margin": format_price(balance.margin),
            "guarantee_fund": format_price(balance.guarantee_fund),
            "shares": dict(balance.shares)}


def default_opening(firms, symbols, cash=2_000_000 * PRICE_SCALE, shares=20_000, short=1):
    """Opening balances for simulated firms: ``cash`` and ``shares`` of every symbol each,
    except that the last ``short`` firms start with a tenth of the shares of the first symbol
    and a tenth of the cash, so a busy day leaves some of them failing to deliver or to pay."""
    firms, symbols = list(firms), list(symbols)
    out = {}
    for n, firm in enumerate(firms):
        poor = n >= len(firms) - short
        held = {s: shares // 10 if poor and i == 0 else shares for i, s in enumerate(symbols)}
        out[firm] = OpeningBalance(cash // 10 if poor else cash, cash // 50, cash // 100, held)
    return out


def parse_balance_spec(spec):
    """``FIRM:CASH[:SYM=QTY,...]`` (cash in $) → (firm, config dict of its balances)."""
    firm, _, rest = spec.partition(":")
    cash, _, shares = rest.partition(":")
    if not firm or not cash:
        raise OpeningError(f"--balance {spec!r} is not FIRM:CASH[:SYMBOL=SHARES,...]")
    held = {}
    for item in filter(None, shares.split(",")):
        symbol, _, qty = item.partition("=")
        if not symbol or not qty.isdigit():
            raise OpeningError(f"--balance {spec!r}: {item!r} is not SYMBOL=SHARES")
        held[symbol] = int(qty)
    data = {"cash": cash, "shares": held}
    parse_opening({"members": {firm: data}})         # checks the amounts
    return firm, data
