"""Money as integers: amounts and prices in 1/10000 $, rates in basis points.

Config files and command files give dollars and percentages as decimal numbers; they are
parsed here exactly (through :class:`decimal.Decimal`, never a binary float) and refused if
they do not fit the integer unit.
"""

from decimal import Decimal, InvalidOperation

__all__ = ["PRICE_SCALE", "parse_scaled", "parse_dollars", "parse_pct_as_bp", "format_dollars",
           "format_bp_as_pct"]

#: 1/10000 $ per dollar.
PRICE_SCALE = 10_000


def parse_scaled(value, scale, what="value"):
    """``value`` (int, decimal string, or a float as written in a TOML/JSON file) × ``scale``
    as an exact integer; ValueError if it is not a number or has a finer fraction."""
    if isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not a number")
    try:
        exact = Decimal(str(value)) * scale
    except InvalidOperation:
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not exact.is_finite() or exact != exact.to_integral_value():
        raise ValueError(f"{what} {value!r} is finer than 1/{scale}")
    return int(exact)


def parse_dollars(value, what="amount"):
    """Dollars → 1/10000 $."""
    return parse_scaled(value, PRICE_SCALE, what)


def parse_pct_as_bp(value, what="percentage"):
    """A percentage → basis points."""
    return parse_scaled(value, 100, what)


def format_dollars(amount):
    """1/10000 $ → ``"$1,234.5000"`` (exact)."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), PRICE_SCALE)
    return f"{sign}${whole:,}.{frac:04d}"


def format_bp_as_pct(bp):
    """Basis points → a percentage as written in files (``500`` → ``"5"``, ``250`` → ``"2.5"``)."""
    text = str(Decimal(bp) / 100)
    return text.rstrip("0").rstrip(".") if "." in text else text
