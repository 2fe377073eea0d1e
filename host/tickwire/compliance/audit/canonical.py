"""Canonical JSON: the bytes that are hashed and signed (keys sorted, no whitespace, UTF-8).

The definition is the standard library's ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8; orjson with sorted keys writes
the same bytes for the JSON values a record holds (strings, integers within 64 bits, booleans,
null, lists, objects; the tests check it) about ten times faster, which the audit trail's
append rate needs.
"""

import orjson

__all__ = ["canonical_json", "loads"]

_OPTIONS = orjson.OPT_SORT_KEYS
loads = orjson.loads


def canonical_json(obj):
    """``obj`` as canonical JSON bytes (raises TypeError on a value JSON cannot carry exactly,
    e.g. a float NaN or an integer beyond 64 bits)."""
    return orjson.dumps(obj, option=_OPTIONS)
