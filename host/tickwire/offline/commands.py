"""The command file: a CSV of client requests that ``tickwire replay`` plays into an exchange.

Columns (header row required; unknown columns are an error, missing ones are empty):

============  ==============================================================================
action        ``new``, ``cancel``, ``replace``, ``symbol``, ``halt``, ``resume``, ``system``
time          ns since midnight, or ``HH:MM:SS[.fffffffff]``; empty: previous row + 1 µs
              (the first row: 09:30:00)
firm          the member firm (1–4 characters); also its self-trade prevention group
token         the firm's order token (1–14 characters), unique per firm for the session
symbol        stock symbol (1–8 characters)
side          ``B`` or ``S``
qty           shares (``new``); round lot (``symbol``)
price         decimal $, at most 4 places; empty on ``new`` for a market order;
              the reference price on ``symbol``
tif           ``day`` (default), ``gtc``, ``ioc``, ``fok``
min_qty       minimum quantity to execute on entry (``new``); default 0
stp           self-trade prevention: ``newest`` (default), ``oldest``, ``both``
new_token     ``replace``: the replacement's token
new_qty       ``replace``: its shares; ``cancel``: shares to leave (empty or 0: cancel all)
new_price     ``replace``: its price
tick          ``symbol``: tick size in $ (default 0.01)
lot           ``symbol``: alias of qty
breaker_pct   ``symbol``: circuit breaker in % of the reference (default 5, 0 = off)
code          ``system``: ITCH system event code (O S Q M E C)
============  ==============================================================================

A symbol used by a ``new`` row before any ``symbol`` row is declared with the defaults, its
reference being the first order's price. Every row is checked before anything is played:
a malformed row stops the replay with its line number and nothing is written.
"""

import csv
from dataclasses import dataclass

from tickwire.core.money import format_bp_as_pct, format_price, parse_pct_as_bp, parse_price
from tickwire.protocol.link import Side, Stp, Tif

__all__ = ["Row", "CommandFileError", "COLUMNS", "read_command_file", "write_command_file",
           "parse_time", "apply_row", "OPEN_TIME"]

OPEN_TIME = 9 * 3600 * 10**9 + 30 * 60 * 10**9
DEFAULT_STEP = 1000
COLUMNS = ("action", "time", "firm", "token", "symbol", "side", "qty", "price", "tif",
           "min_qty", "stp", "new_token", "new_qty", "new_price", "tick", "lot", "breaker_pct",
           "code")
ACTIONS = ("new", "cancel", "replace", "symbol", "halt", "resume", "system")
_TIF = {"day": Tif.DAY, "gtc": Tif.GTC, "ioc": Tif.IOC, "fok": Tif.FOK}
_STP = {"newest": Stp.CANCEL_NEWEST, "oldest": Stp.CANCEL_OLDEST, "both": Stp.CANCEL_BOTH}
_SIDE = {"B": Side.BUY, "S": Side.SELL}


class CommandFileError(ValueError):
    """A malformed command file; the message names the file and line."""


@dataclass
class Row:
    """One parsed request. Prices are in 1/10000 $ (``None`` when empty)."""
    action: str
    time: int
    line: int = 0
    firm: str = ""
    token: str = ""
    symbol: str = ""
    side: Side = Side.BUY
    qty: int = 0
    price: int | None = None
    tif: Tif = Tif.DAY
    min_qty: int = 0
    stp: Stp = Stp.CANCEL_NEWEST
    new_token: str = ""
    new_qty: int = 0
    new_price: int | None = None
    tick: int | None = None
    breaker_bp: int | None = None         # the breaker_pct column, in basis points
    code: str = ""


def parse_time(text):
    """ns since midnight from an integer or ``HH:MM:SS[.fffffffff]``."""
    if ":" not in text:
        return int(text)
    hms, _, frac = text.partition(".")
    h, m, s = (int(x) for x in hms.split(":"))
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60) or len(frac) > 9:
        raise ValueError(f"time {text!r} is not HH:MM:SS[.fffffffff]")
    return ((h * 60 + m) * 60 + s) * 10**9 + int(frac.ljust(9, "0") or 0)


def _int(text, name):
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a whole number") from None
    if value < 0 or value >= 2**32:
        raise ValueError(f"{name} {value} is out of range")
    return value


def _parse(rec, line, previous_time):
    action = rec["action"].strip().lower()
    if action not in ACTIONS:
        raise ValueError(f"action {rec['action']!r} is not one of {', '.join(ACTIONS)}")
    time = parse_time(rec["time"]) if rec["time"] else previous_time + DEFAULT_STEP
    if time < previous_time:
        raise ValueError("time goes backwards")
    if time >= 86400 * 10**9:
        raise ValueError("time is past midnight")
    row = Row(action, time, line)
    row.firm, row.token, row.symbol = rec["firm"], rec["token"], rec["symbol"]
    row.new_token, row.code = rec["new_token"], rec["code"]
    need = {"new": ("firm", "token", "symbol", "side", "qty"), "cancel": ("firm", "token"),
            "replace": ("firm", "token", "new_token", "new_qty", "new_price"),
            "symbol": ("symbol", "price"), "halt": ("symbol",), "resume": ("symbol",),
            "system": ("code",)}[action]
    for column in need:
        if not rec[column]:
            raise ValueError(f"{action} needs {column}")
    if len(row.firm) > 4 or len(row.token) > 14 or len(row.new_token) > 14:
        raise ValueError("firm is at most 4 characters, tokens at most 14")
    if row.symbol and not (len(row.symbol) <= 8 and row.symbol.isascii()
                           and " " not in row.symbol):
        raise ValueError(f"symbol {row.symbol!r} must be 1 to 8 ASCII characters")
    if rec["side"]:
        if rec["side"] not in _SIDE:
            raise ValueError(f"side {rec['side']!r} is not B or S")
        row.side = _SIDE[rec["side"]]
    if rec["tif"]:
        if rec["tif"].lower() not in _TIF:
            raise ValueError(f"tif {rec['tif']!r} is not day, gtc, ioc or fok")
        row.tif = _TIF[rec["tif"].lower()]
    if rec["stp"]:
        if rec["stp"].lower() not in _STP:
            raise ValueError(f"stp {rec['stp']!r} is not newest, oldest or both")
        row.stp = _STP[rec["stp"].lower()]
    qty = rec["qty"] or rec["lot"]
    row.qty = _int(qty, "qty") if qty else 0
    row.min_qty = _int(rec["min_qty"], "min_qty") if rec["min_qty"] else 0
    row.new_qty = _int(rec["new_qty"], "new_qty") if rec["new_qty"] else 0
    row.price = parse_price(rec["price"]) if rec["price"] else None
    row.new_price = parse_price(rec["new_price"]) if rec["new_price"] else None
    row.tick = parse_price(rec["tick"]) if rec["tick"] else None
    row.breaker_bp = (parse_pct_as_bp(rec["breaker_pct"], "breaker_pct")
                      if rec["breaker_pct"] else None)
    if action == "system" and (len(row.code) != 1 or row.code not in "OSQMEC"):
        raise ValueError(f"code {row.code!r} is not one of O S Q M E C")
    return row


def read_command_file(path):
    """Parse and check a whole command file; raise CommandFileError naming the bad line."""
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in COLUMNS]
        if "action" not in header:
            raise CommandFileError(f"{path}:1: the header has no 'action' column")
        if unknown:
            raise CommandFileError(f"{path}:1: unknown column(s): {', '.join(unknown)}")
        previous = OPEN_TIME - DEFAULT_STEP
        for rec in reader:
            line = reader.line_num
            if None in rec:
                raise CommandFileError(f"{path}:{line}: more fields than the header has")
            rec = {c: (rec.get(c) or "").strip() for c in COLUMNS}
            try:
                row = _parse(rec, line, previous)
            except ValueError as exc:
                raise CommandFileError(f"{path}:{line}: {exc}") from None
            previous = row.time
            rows.append(row)
    return rows


def write_command_file(path, rows):
    """Write rows as a command file (the inverse of read_command_file)."""
    tif = {v: k for k, v in _TIF.items()}
    stp = {v: k for k, v in _STP.items()}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for r in rows:
            price = "" if r.price is None else format_price(r.price)
            new_price = "" if r.new_price is None else format_price(r.new_price)
            is_new = r.action == "new"
            writer.writerow((
                r.action, r.time, r.firm, r.token, r.symbol,
                ("B" if r.side == Side.BUY else "S") if is_new else "",
                r.qty or "", price, tif[r.tif] if is_new else "",
                r.min_qty or "", stp[r.stp] if is_new and r.stp else "", r.new_token,
                r.new_qty or "", new_price, "" if r.tick is None else format_price(r.tick),
                "", "" if r.breaker_bp is None else format_bp_as_pct(r.breaker_bp), r.code))


def apply_row(exchange, row):
    """Play one row into an Exchange; returns its reports."""
    a, t = row.action, row.time
    if a == "new":
        return exchange.new_order(row.firm, row.token, row.symbol, row.side, row.qty, row.price,
                                  t, tif=row.tif, min_qty=row.min_qty, stp=row.stp)
    if a == "cancel":
        return exchange.cancel(row.firm, row.token, t, qty=row.new_qty)
    if a == "replace":
        return exchange.replace(row.firm, row.token, row.new_token, row.new_qty, row.new_price, t)
    if a == "symbol":
        return exchange.declare(row.symbol, row.price, t, tick=row.tick, lot=row.qty or None,
                                breaker_bp=row.breaker_bp)
    if a == "halt":
        return exchange.halt(row.symbol, t)
    if a == "resume":
        return exchange.resume(row.symbol, t)
    return exchange.system(row.code, t)


