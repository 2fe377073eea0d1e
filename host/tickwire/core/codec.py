"""The one binary form of the typed requests (:mod:`tickwire.core.requests`): MessagePack.

A request is a MessagePack array: its tag (``KIND * 256 + VERSION``), then its fields in
declaration order (``ts`` first): integers as MessagePack integers, ``None`` as nil, texts as
UTF-8 strings, enums (Side, Tif, Reason) as their integer values, ``attrs`` as an array of
``[name, value]`` pairs. msgspec encodes and decodes it (in C) and checks every field's type on
the way in, so a record that is not one of these requests is refused, not guessed at.

A new ``VERSION`` of a request is a new class with a new tag; the old class stays here for as
long as journals written with it must be read (none yet: every kind is at version 1).
"""

from typing import Union

import msgspec
from tickwire.core.requests import REQUEST_TYPES

__all__ = ["encode_request", "decode_request", "CodecError"]


class CodecError(ValueError):
    """Bytes that are not a request, or a request that cannot be encoded."""


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Union[REQUEST_TYPES])
_TYPES = frozenset(REQUEST_TYPES)


def encode_request(request, check=False):
    """A typed request → its bytes; raises CodecError if it is not one, or if a field cannot
    be encoded at all (an integer beyond 64 bits, an object MessagePack has no form for).

    ``check``: also decode the bytes once, which checks every field's type (a float where an
    integer belongs encodes, but would not read back). The journal's order path leaves it off
    (it doubled the codec's cost per order): the requests it journals are built by the
    gateways from decoded wire fields, and tests check that each kind a gateway builds reads
    back (``tests/test_journal.py``).
    """
    if request.__class__ not in _TYPES:
        raise CodecError(f"{request!r} is not a request")
    try:
        data = _ENCODER.encode(request)
        if check:
            _DECODER.decode(data)
    except (TypeError, OverflowError, ValueError, msgspec.DecodeError) as exc:
        raise CodecError(f"{request.__class__.__name__} cannot be encoded: {exc}") from None
    return data


def decode_request(buf, offset=0):
    """Bytes (from ``offset`` to the end) → the typed request; raises CodecError."""
    try:
        return _DECODER.decode(memoryview(buf)[offset:])
    except msgspec.DecodeError as exc:
        raise CodecError(f"not a request: {exc}") from None
