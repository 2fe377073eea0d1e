"""Canonical JSON: the bytes that are hashed and signed (keys sorted, no whitespace, UTF-8)."""

import json

__all__ = ["canonical_json"]


def canonical_json(obj):
    """``obj`` as canonical JSON bytes.

    Keys are sorted, separators carry no whitespace, non-ASCII characters are written as
    UTF-8 (not ``\\u`` escapes), and only JSON types are accepted (no NaN).
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
