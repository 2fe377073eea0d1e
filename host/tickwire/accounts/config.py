"""Accounts, firms, risk limits and symbols of the order-entry gateway, from a config file.

The file is TOML (``.toml``) or JSON (anything else) with the same structure::

    session = "TW00000001"          # SoupBinTCP session name (optional)
    trade_date = "2026-12-07"       # the session's trade date (optional; default: today, UTC)

    [symbols]                       # declared at the open: name = reference price in $
    AAPL = 150.25

    [risk]                          # exchange-wide
    restricted = ["XYZ"]            # restricted list: orders refused (reason RESTRICTED)

    [firms.F01]                     # firm-level limits (any Limits field)
    credit_limit = 50000000         # $ (exact to 1/10000 $)
    collar_pct = 2.5                # % (exact to a basis point)

    [feed]                          # market data (tickwire.marketdata.settings.FeedSettings)
    group = "239.255.70.1"
    port = 26400

    [accounts.alice]                # one login (username ≤ 6 characters)
    firm = "F01"                    # OUCH firm, ≤ 4 characters; firms are also STP groups
    password = "scrypt$16384$8$1$<salt hex>$<key hex>"
    max_order_qty = 10000           # account-level limits (any Limits field)
    stp = "newest"                  # self-trade prevention: newest, oldest or both

Dollar amounts (``credit_limit``, ``max_order_notional``) and percentages (``collar_pct``) are
parsed exactly into integers (1/10000 $, basis points); a value finer than that is refused.
Passwords are stored only as salted scrypt hashes (:func:`hash_password`); ``tickwire``'s
helper :func:`make_config` writes a config from plain passwords.
"""

import datetime
import hashlib
import hmac
import json
import os
import tomllib
from dataclasses import dataclass, field, fields

from tickwire.core.money import parse_dollars, parse_pct_as_bp
from tickwire.protocol.link import Stp

__all__ = ["Limits", "Account", "Config", "load_config", "parse_config", "make_config",
           "write_config", "hash_password", "verify_password", "parse_trade_date"]

_STP = {"newest": Stp.CANCEL_NEWEST, "oldest": Stp.CANCEL_OLDEST, "both": Stp.CANCEL_BOTH}


@dataclass(frozen=True)
class Limits:
    """Pre-trade risk limits (SEC 15c3-5) of an account or a firm; ``None`` = no limit.

    Parameters
    ----------
    credit_limit : int
        Notional in 1/10000 $: open orders + executed (both sides) + the new order.
    max_position : int
        Shares per symbol: |position + open same-side shares + new shares|.
    max_order_qty : int
        Fat finger: shares of one order.
    max_order_notional : int
        Fat finger: notional of one order in 1/10000 $ (market orders at the reference).
    collar_bp : int
        Price collar in basis points: a limit price further than this from the reference (last
        trade, or the declared reference) is refused.
    max_orders_per_sec : float
        Order-rate throttle (enter and replace), a token bucket of that rate ...
    burst : int
        ... and this depth (default: one second's worth).
    restricted : tuple of str
        Symbols this account/firm may not trade.
    """
    credit_limit: int | None = None
    max_position: int | None = None
    max_order_qty: int | None = None
    max_order_notional: int | None = None
    collar_bp: int | None = None
    max_orders_per_sec: float | None = None
    burst: int | None = None
    restricted: tuple = ()

    @classmethod
    def from_dict(cls, d):
        """Limits from a config section: dollars (``credit_limit``, ``max_order_notional``)
        and ``collar_pct`` (%) as written there, parsed exactly; ValueError if not exact."""
        names = {f.name for f in fields(cls)} - {"collar_bp"}
        values = {k: v for k, v in d.items() if k in names}
        for name in ("credit_limit", "max_order_notional"):
            if values.get(name) is not None:
                values[name] = parse_dollars(values[name], name)
        if d.get("collar_pct") is not None:
            values["collar_bp"] = parse_pct_as_bp(d["collar_pct"], "collar_pct")
        if "restricted" in values:
            values["restricted"] = tuple(values["restricted"])
        return cls(**values)


@dataclass
class Account:
    """One login: username, firm, password hash, limits and STP mode."""
    username: str
    firm: str
    password: str           # "scrypt$n$r$p$salt$key"
    limits: Limits = Limits()
    stp: Stp = Stp.CANCEL_NEWEST


@dataclass
class Config:
    """Everything the gateway reads from its config file."""
    accounts: dict = field(default_factory=dict)        # username -> Account
    firms: dict = field(default_factory=dict)           # firm -> Limits
    restricted: frozenset = frozenset()
    symbols: dict = field(default_factory=dict)         # name -> reference price, 1/10000 $
    session: str = "TW00000001"
    trade_date: str | None = None                       # ISO YYYY-MM-DD
    feed: dict = field(default_factory=dict)            # the [feed] table, as written


def parse_trade_date(value):
    """An ISO ``YYYY-MM-DD`` date (a string, or a TOML date) → its ISO string; ValueError."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    try:
        return datetime.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"trade date {value!r} is not YYYY-MM-DD") from None


def hash_password(password, salt=None, n=2**14, r=8, p=1):
    """A salted scrypt hash of ``password`` as ``"scrypt$n$r$p$salt_hex$key_hex"``."""
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${key.hex()}"


def verify_password(password, stored):
    """Whether ``password`` matches a :func:`hash_password` string (constant-time compare)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(key) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), key)


def parse_config(data):
    """A :class:`Config` from the parsed dict of a config file; raises ValueError if invalid."""
    cfg = Config(session=str(data.get("session", Config.session)))
    if len(cfg.session) > 10:
        raise ValueError(f"session name {cfg.session!r} is longer than 10 characters")
    if data.get("trade_date") is not None:
        cfg.trade_date = parse_trade_date(data["trade_date"])
    feed = data.get("feed", {})
    if not isinstance(feed, dict):
        raise ValueError("feed must be a table of settings")
    cfg.feed = dict(feed)
    risk = data.get("risk", {})
    cfg.restricted = frozenset(risk.get("restricted", ()))
    for name, price in data.get("symbols", {}).items():
        if not (1 <= len(name) <= 8) or not name.isascii() or not name.strip() == name:
            raise ValueError(f"symbol {name!r} must be 1 to 8 ASCII characters (ITCH Stock)")
        cfg.symbols[name] = parse_dollars(price, f"symbol {name} price")
    for firm, limits in data.get("firms", {}).items():
        cfg.firms[firm] = Limits.from_dict(limits)
    for username, acc in data.get("accounts", {}).items():
        if not (1 <= len(username) <= 6) or not username.isascii():
            raise ValueError(f"username {username!r} must be 1 to 6 ASCII characters")
        firm = acc.get("firm", "")
        if not (1 <= len(firm) <= 4) or not firm.isascii():
            raise ValueError(f"account {username}: firm {firm!r} must be 1 to 4 characters")
        if not str(acc.get("password", "")).startswith("scrypt$"):
            raise ValueError(f"account {username}: password must be a scrypt hash")
        stp = acc.get("stp", "newest")
        if stp not in _STP:
            raise ValueError(f"account {username}: stp {stp!r} is not newest, oldest or both")
        cfg.accounts[username] = Account(username, firm, acc["password"],
                                         Limits.from_dict(acc), _STP[stp])
    return cfg


def load_config(path):
    """Read a TOML (``.toml``) or JSON config file."""
    with open(path, "rb") as f:
        data = tomllib.load(f) if path.endswith(".toml") else json.load(f)
    return parse_config(data)


def make_config(accounts, symbols=None, firms=None, restricted=(), session="TW00000001",
                n=2**14):
    """A config dict (as :func:`load_config` reads) from plain passwords.

    Parameters
    ----------
    accounts : dict
        username -> {"firm": ..., "password": plain text, limits...}
    symbols : dict
        name -> reference price in $.
    n : int
        scrypt cost (tests use a small one).
    """
    out = {"session": session, "symbols": dict(symbols or {}), "risk": {
        "restricted": list(restricted)}, "firms": {k: dict(v) for k, v in (firms or {}).items()},
        "accounts": {}}
    for username, acc in accounts.items():
        acc = dict(acc)
        password = acc["password"]
        if not password.isascii() or not 1 <= len(password) <= 10:
            raise ValueError(f"account {username}: the password must be 1 to 10 ASCII "
                             "characters (the SoupBinTCP login field)")
        acc["password"] = hash_password(password, n=n)
        out["accounts"][username] = acc
    return out


def write_config(path, data):
    """Write a config dict as JSON."""
    with open(path, "w") as f:
        json.dump(data, f, indent=2)

