"""Dollar amounts as text (``"182.50"``) to and from integers in 1/10000 $."""

from decimal import Decimal, InvalidOperation

__all__ = ["SCALE", "format_dollars", "parse_dollars"]

SCALE = 10000
"""Integer units per dollar (prices and cash are kept in 1/10000 $)."""


def parse_dollars(value):
    """A decimal string or number of dollars as an int of 1/10000 $.

    Raises
    ------
    ValueError
        If it is not a decimal number or has more than 4 decimal places.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a decimal number of dollars")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number of dollars") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number of dollars")
    scaled = number * SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more than 4 decimal places")
    return int(scaled)


def format_dollars(units):
    """1/10000 $ as a decimal string with at least two places: 1825000 → ``"182.50"``."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), SCALE)
    digits = f"{frac:04d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"
