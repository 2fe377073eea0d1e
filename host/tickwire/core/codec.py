"""The one binary form of the typed requests (:mod:`tickwire.core.requests`).

A request is::

    U8   kind       the class's ``KIND``
    U8   version    the class's ``VERSION``
    ...  numbers    its integer, enum, bool and optional-integer fields, in declaration order,
                    big-endian: ``int`` I64; ``int | None`` U64 (0: None, else value + 1);
                    ``bool`` and enums (Side, Tif, Reason) U8
    ...  texts      its ``str`` fields in declaration order: U16 length + UTF-8
                    (``str | None``: length 0xFFFF is None)
    ...  tuples     ``Attrs``: U8 count, then per pair a U8-length UTF-8 name, U8 type
                    (0: I64, 1: U16-length UTF-8 text) and the value;
                    ``Indexes``: U32 count, then I64 each

The layout of each kind follows from its dataclass fields, so adding a field to a request
means a new ``VERSION`` and, for the old one, a decoder kept here (none yet: every kind is at
version 1).
"""

import dataclasses
import functools
import struct
import types
from operator import attrgetter

from tickwire.core.reasons import Reason
from tickwire.core.requests import REQUEST_TYPES, Attrs, Indexes
from tickwire.protocol.link import Side, Tif

__all__ = ["encode_request", "decode_request", "CodecError"]


class CodecError(ValueError):
    """Bytes that are not a request (unknown kind or version, cut short, bad field)."""


_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_NONE_TEXT = 0xFFFF
_ENUMS = {Side: {int(m): m for m in Side}, Tif: {int(m): m for m in Tif},
          Reason: {int(m): m for m in Reason}}


def _optional(value):
    return 0 if value is None else value + 1


def _from_optional(value):
    return None if value == 0 else value - 1


class _Spec:
    """How one request class is laid out (from its fields' annotations)."""

    def __init__(self, cls):
        self.cls = cls
        numbers, to_wire, from_wire, fmt = [], [], [], ">BB"
        self.texts, self.optional_texts, self.tuples = [], set(), []
        for f in dataclasses.fields(cls):
            kind = f.type
            if kind is int:
                fmt += "q"
                to_wire.append(None)
                from_wire.append(None)
            elif kind == int | None:
                fmt += "Q"
                to_wire.append(_optional)
                from_wire.append(_from_optional)
            elif kind is bool:
                fmt += "B"
                to_wire.append(int)
                from_wire.append(bool)
            elif kind in _ENUMS:
                fmt += "B"
                to_wire.append(int)
                from_wire.append(_ENUMS[kind].__getitem__)
            elif kind is str or kind == str | None:
                self.texts.append(f.name)
                if isinstance(kind, types.UnionType):
                    self.optional_texts.add(f.name)
                continue
            elif kind in (Attrs, Indexes):
                self.tuples.append((f.name, kind))
                continue
            else:
                raise TypeError(f"{cls.__name__}.{f.name}: no binary form for {kind!r}")
            numbers.append(f.name)
        self.head = struct.Struct(fmt)
        self.numbers = numbers
        self.get_numbers = attrgetter(*numbers) if len(numbers) > 1 else (
            lambda r, g=attrgetter(numbers[0]): (g(r),))
        self.to_wire = to_wire if any(to_wire) else None
        self.from_wire = from_wire


_SPECS = {cls: _Spec(cls) for cls in REQUEST_TYPES}
_BY_KIND = {cls.KIND: spec for cls, spec in _SPECS.items()}


def _text(value):
    if value is None:
        return b"\xff\xff"
    data = value.encode()
    return _U16.pack(len(data)) + data


@functools.lru_cache(maxsize=4096)
def _attrs_bytes(attrs):
    """Gateways send the same attributes over and over: each distinct tuple is encoded once."""
    out = [bytes((len(attrs),))]
    for name, value in attrs:
        key = name.encode()
        out.append(bytes((len(key),)) + key)
        if value.__class__ is int:
            out.append(b"\x00" + _I64.pack(value))
        elif value.__class__ is str:
            out.append(b"\x01" + _text(value))
        else:
            raise CodecError(f"attribute {name!r}: {value!r} is not an int or a str")
    return b"".join(out)


def encode_request(request):
    """A typed request → its bytes (module docstring); raises CodecError if a field does not
    fit (a negative quantity, a text above 65534 bytes...)."""
    spec = _SPECS.get(request.__class__)
    if spec is None:
        raise CodecError(f"{request!r} is not a request")
    numbers = spec.get_numbers(request)
    if spec.to_wire is not None:
        numbers = [v if conv is None else conv(v) for conv, v in zip(spec.to_wire, numbers)]
    try:
        parts = [spec.head.pack(spec.cls.KIND, spec.cls.VERSION, *numbers)]
        for name in spec.texts:
            value = getattr(request, name)
            if value is None and name not in spec.optional_texts:
                raise CodecError(f"{spec.cls.__name__}.{name} is None")
            parts.append(_text(value))
        for name, kind in spec.tuples:
            value = getattr(request, name)
            if kind is Attrs:
                parts.append(_attrs_bytes(value))
            else:
                parts.append(_U32.pack(len(value)) + b"".join(_I64.pack(i) for i in value))
    except (struct.error, TypeError, AttributeError, UnicodeEncodeError) as exc:
        raise CodecError(f"{spec.cls.__name__} cannot be encoded: {exc}") from None
    return b"".join(parts)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos

    def take(self, n):
        end = self.pos + n
        if end > len(self.buf):
            raise CodecError("request cut short")
        data = self.buf[self.pos:end]
        self.pos = end
        return data

    def u8(self):
        return self.take(1)[0]

    def text(self, width=2):
        n = int.from_bytes(self.take(width), "big")
        if width == 2 and n == _NONE_TEXT:
            return None
        return bytes(self.take(n)).decode()


def decode_request(buf, offset=0):
    """Bytes (from ``offset`` to the end) → the typed request; raises CodecError."""
    if len(buf) < offset + 2:
        raise CodecError("request cut short")
    kind, version = buf[offset], buf[offset + 1]
    spec = _BY_KIND.get(kind)
    if spec is None:
        raise CodecError(f"unknown request kind {kind}")
    if version != spec.cls.VERSION:
        raise CodecError(f"{spec.cls.__name__} version {version} is not known")
    try:
        head = spec.head.unpack_from(buf, offset)
        values = {name: value if conv is None else conv(value)
                  for name, conv, value in zip(spec.numbers, spec.from_wire, head[2:])}
        reader = _Reader(buf, offset + spec.head.size)
        for name in spec.texts:
            value = reader.text()
            if value is None and name not in spec.optional_texts:
                raise CodecError(f"{spec.cls.__name__}.{name} is None")
            values[name] = value
        for name, kind in spec.tuples:
            if kind is Attrs:
                pairs = []
                for _ in range(reader.u8()):
                    key = reader.text(1)
                    tag = reader.u8()
                    if tag == 0:
                        pairs.append((key, _I64.unpack(reader.take(8))[0]))
                    elif tag == 1:
                        pairs.append((key, reader.text()))
                    else:
                        raise CodecError(f"attribute {key!r}: unknown type {tag}")
                values[name] = tuple(pairs)
            else:
                count = _U32.unpack(reader.take(4))[0]
                values[name] = tuple(_I64.unpack(reader.take(8))[0] for _ in range(count))
    except (struct.error, KeyError, UnicodeDecodeError) as exc:
        raise CodecError(f"{spec.cls.__name__}: bad field ({exc!r})") from None
    if reader.pos != len(buf):
        raise CodecError(f"{spec.cls.__name__}: {len(buf) - reader.pos} trailing bytes")
    return spec.cls(**values)
