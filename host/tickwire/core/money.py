"""Money as integers: prices and cash in 1/10000 $ (ITCH's Price(4)), rates in basis points,
never floats.

Decimal strings are for people and for formats that carry them (command files, JSON, CSV).
Config files give dollars and percentages as decimal numbers (a TOML/JSON float as written);
they are parsed exactly (through :class:`decimal.Decimal`) and refused if they do not fit the
integer unit.
"""

from decimal import Decimal, InvalidOperation

__all__ = ["PRICE_SCALE", "PRICE_MAX", "parse_price", "format_price", "format_dollars",
           "parse_amount", "parse_scaled", "parse_dollars", "parse_pct_as_bp",
           "format_bp_as_pct"]

#: 1/10000 $ per dollar.
PRICE_SCALE = 10_000
#: The largest price a command file or order may carry: $200,000 (ITCH Price(4) fits 32 bits).
PRICE_MAX = 200_000 * PRICE_SCALE


def parse_price(text):
    """``'100.25'`` → ``1002500``: a positive price of at most 4 decimals, at most $200,000.

    Raises
    ------
    ValueError
        Saying what is wrong with ``text``.
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"price {text!r} is not a decimal number") from None
    scaled = value * PRICE_SCALE
    if scaled != scaled.to_integral_value() or not 0 < scaled <= PRICE_MAX:
        raise ValueError(f"price {text!r} must be positive, at most 200000 and have at most "
                         "4 decimals")
    return int(scaled)


def format_price(amount):
    """``1892500`` → ``'189.2500'``; negative amounts (cash owed) keep their sign."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), PRICE_SCALE)
    return f"{sign}{whole}.{frac:04d}"


def format_dollars(amount):
    """``1825000`` → ``'182.50'``: as Alpaca's API writes money, at least two decimals and at
    most four; negative amounts keep their sign."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), PRICE_SCALE)
    return f"{sign}{whole}.{f'{frac:04d}'.rstrip('0').ljust(2, '0')}"


def parse_amount(text):
    """``'-123.45'`` → ``-1234500``: a signed dollar amount of at most 4 decimals (cash, not a
    price: no upper limit, zero and negatives allowed).

    Raises
    ------
    ValueError
        Unless ``text`` is such an amount.
    """
    s = str(text).strip()
    sign = -1 if s.startswith("-") else 1
    whole, _, frac = s.lstrip("+-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 4:
        raise ValueError(f"{text!r} is not a dollar amount with at most 4 decimal places")
    return sign * (int(whole) * PRICE_SCALE + int(frac.ljust(4, "0") or 0))


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
    """Dollars (a config value) → 1/10000 $."""
    return parse_scaled(value, PRICE_SCALE, what)


def parse_pct_as_bp(value, what="percentage"):
    """A percentage → basis points."""
    return parse_scaled(value, 100, what)


def format_bp_as_pct(bp):
    """Basis points → a percentage as written in files (``500`` → ``"5"``, ``250`` → ``"2.5"``)."""
    text = str(Decimal(bp) / 100)
    return text.rstrip("0").rstrip(".") if "." in text else text
