"""Times as clients read them."""

from datetime import UTC, datetime

__all__ = ["iso_time"]


def iso_time(ns):
    """ns since the epoch as RFC 3339 UTC with microseconds (``None`` stays ``None``)."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds") \
        .replace("+00:00", "Z")
