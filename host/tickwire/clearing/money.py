"""Integer money: amounts in 1/10000 $ as decimal strings with 4 places, and back."""

__all__ = ["SCALE", "format_amount", "parse_amount"]

SCALE = 10_000


def format_amount(amount):
    """``1234500`` → ``"123.4500"``; negative amounts keep their sign (``"-0.0100"``)."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), SCALE)
    return f"{sign}{whole}.{frac:04d}"


def parse_amount(text):
    """``"123.45"`` → ``1234500``; at most 4 decimal places; raises ValueError otherwise."""
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    whole, _, frac = s.lstrip("+-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 4:
        raise ValueError(f"{text!r} is not a dollar amount with at most 4 decimal places")
    return sign * (int(whole) * SCALE + int(frac.ljust(4, "0") or 0))
