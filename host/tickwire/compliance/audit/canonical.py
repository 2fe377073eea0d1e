"""Canonical JSON: the bytes that are hashed and signed (keys sorted, no whitespace, UTF-8).

The definition is the standard library's ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8. msgspec's JSON encoder with
sorted keys writes the same bytes for the JSON values a record holds (strings, integers,
booleans, null, lists, objects; the tests check it) several times faster (2.7 µs against
orjson's 6.4 µs and the standard library's ~20 µs for a record's fields on this machine),
which the audit trail's append rate needs. Records hold no floats (money and quantities are
integers; the record builders never put one in): encoders disagree on how to write some
floats, so a trail with one could not be checked by anyone else's code.
"""

import msgspec
import orjson

__all__ = ["canonical_json", "loads"]

loads = orjson.loads
_encode = msgspec.json.Encoder(order="sorted").encode


def canonical_json(obj):
    """``obj`` as canonical JSON bytes (raises TypeError on a value JSON has no form for)."""
    return _encode(obj)

