"""Table-driven fixed-layout binary messages, shared by every tickwire wire format.

A format is a list of :class:`MessageSpec`, each a type code followed by :class:`Field` s laid
out back to back with no padding. Integers are big-endian. The gateware reads byte offsets from
:attr:`MessageSpec.offsets`; the host encodes and decodes through precompiled ``struct.Struct`` s.
"""

import enum
import struct
from collections import namedtuple
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "Kind", "Field", "MessageSpec", "MessageSet",
    "U16", "U32", "U48", "U64", "P4", "P8", "A", "C", "N",
]


class Kind(enum.Enum):
    """Wire type of a field.

    Members
    -------
    U16, U32, U48, U64
        Big-endian unsigned integers.
    P4, P8
        Prices with 4 or 8 implied decimals (U32 or U64), kept as raw integers.
    ALPHA
        ASCII, left-justified and padded on the right with spaces; decoded without them.
    CHAR
        One ASCII byte, decoded as a 1-character ``str``.
    NUMERIC
        Unsigned decimal in ASCII, right-justified and padded on the left with spaces.
    """

    U16 = "U16"
    U32 = "U32"
    U48 = "U48"
    U64 = "U64"
    P4 = "P4"
    P8 = "P8"
    ALPHA = "A"
    CHAR = "C"
    NUMERIC = "N"


_INT_FORMAT = {Kind.U16: "H", Kind.U32: "I", Kind.U64: "Q", Kind.P4: "I", Kind.P8: "Q"}
_FIXED_LENGTH = {Kind.U16: 2, Kind.U32: 4, Kind.U48: 6, Kind.U64: 8, Kind.P4: 4, Kind.P8: 8,
                 Kind.CHAR: 1}


class Field(NamedTuple):
    """One field of a message.

    Parameters
    ----------
    name : str
        Attribute name of the field in decoded records and keyword in ``encode``.
    kind : Kind
    length : int
        Bytes on the wire.
    default : optional
        Value used when ``encode`` is not given the field; ``None`` makes it required.
    """

    name: str
    kind: Kind
    length: int
    default: Any = None


def _fixed(kind):
    return lambda name, default=None: Field(name, kind, _FIXED_LENGTH[kind], default)


U16, U32, U48, U64, P4, P8, C = map(_fixed, (Kind.U16, Kind.U32, Kind.U48, Kind.U64,
                                            Kind.P4, Kind.P8, Kind.CHAR))


def A(name, length, default=None):
    """Alpha field of ``length`` bytes."""
    return Field(name, Kind.ALPHA, length, default)


def N(name, length, default=None):
    """Numeric ASCII field of ``length`` bytes."""
    return Field(name, Kind.NUMERIC, length, default)


def _ascii(value, what):
    if isinstance(value, str):
        try:
            return value.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"{what}: {value!r} is not ASCII") from None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise ValueError(f"{what}: expected str or bytes, got {value!r}")


def _encoder(spec_name, field):
    what = f"{spec_name}.{field.name}"
    n = field.length
    if field.kind is Kind.ALPHA:
        def encode(value):
            raw = _ascii(value, what)
            if len(raw) > n:
                raise ValueError(f"{what}: {value!r} is longer than {n} bytes")
            return raw.ljust(n, b" ")
    elif field.kind is Kind.CHAR:
        def encode(value):
            raw = _ascii(value, what)
            if len(raw) != 1:
                raise ValueError(f"{what}: expected one character, got {value!r}")
            return raw
    elif field.kind is Kind.NUMERIC:
        def encode(value):
            if not isinstance(value, int) or value < 0 or len(str(value)) > n:
                raise ValueError(f"{what}: {value!r} does not fit {n} decimal digits")
            return str(value).encode().rjust(n, b" ")
    else:
        limit = 1 << (8 * n)

        def encode(value):
            if not isinstance(value, int) or not 0 <= value < limit:
                raise ValueError(f"{what}: {value!r} is not an unsigned {8 * n}-bit integer")
            return value
    return encode


def _decoder(spec_name, field):
    what = f"{spec_name}.{field.name}"
    if field.kind is Kind.ALPHA:
        return lambda raw: raw.decode("ascii").rstrip(" ")
    if field.kind is Kind.CHAR:
        return lambda raw: raw.decode("ascii")
    if field.kind is Kind.NUMERIC:
        def decode(raw):
            text = raw.decode("ascii").strip(" ")
            if not text.isdigit():
                raise ValueError(f"{what}: {raw!r} is not a decimal number")
            return int(text)
        return decode
    return None


class MessageSpec:
    """Layout of one message type: the type code at offset 0, then the fields.

    Parameters
    ----------
    type_code : bytes
        One byte (``b"A"``), or ``b""`` for a header without a type byte.
    name : str
        Name of the decoded record class, e.g. ``"AddOrder"``.
    fields : iterable of Field

    Members
    -------
    length : int
        Total bytes, type byte included.
    offsets : dict of str to int
        Byte offset of each field from the start of the message.
    record : type
        Immutable namedtuple class of decoded messages; has a ``type_code`` class attribute
        and a ``to_bytes()`` method.
    """

    def __init__(self, type_code, name, fields):
        if len(type_code) > 1:
            raise ValueError(f"type code {type_code!r} must be at most one byte")
        self.type_code = bytes(type_code)
        self.name = name
        self.fields = tuple(fields)
        self.offsets = {}
        offset, fmt, self._u48 = len(self.type_code), [">", f"{len(self.type_code)}s"], []
        for index, field in enumerate(self.fields):
            if field.name in self.offsets:
                raise ValueError(f"{name}: duplicate field {field.name}")
            if field.kind in _FIXED_LENGTH and field.length != _FIXED_LENGTH[field.kind]:
                raise ValueError(f"{name}.{field.name}: {field.kind.name} has a fixed length")
            self.offsets[field.name] = offset
            offset += field.length
            if field.kind is Kind.U48:
                self._u48.append(index)
                fmt.append("HI")
            else:
                fmt.append(_INT_FORMAT.get(field.kind, f"{field.length}s"))
        self.length = offset
        self.struct = struct.Struct("".join(fmt))
        assert self.struct.size == self.length
        self._encoders = [_encoder(name, f) for f in self.fields]
        self._decoders = [(i, d) for i, f in enumerate(self.fields)
                          if (d := _decoder(name, f)) is not None]
        self._defaults = {f.name: f.default for f in self.fields if f.default is not None}
        names = [f.name for f in self.fields]
        spec = self
        self.record = type(name, (namedtuple(name, names),), {
            "__slots__": (),
            "type_code": self.type_code,
            "spec": self,
            "to_bytes": lambda rec: spec.encode(**rec._asdict()),
        })
        self.encode, self.decode = _compile(self)

    def __repr__(self):
        return f"<MessageSpec {self.type_code!r} {self.name} {self.length} bytes>"

    def encode(self, **values):     # replaced per instance by a compiled twin (_compile)
        """Pack keyword field values into ``length`` bytes.

        Raises
        ------
        ValueError
            On a missing or unknown field, or a value that does not fit its field.
        """
        if self._defaults:
            values = {**self._defaults, **values}
        try:
            args = [enc(values.pop(f.name)) for f, enc in zip(self.fields, self._encoders)]
        except KeyError as exc:
            raise ValueError(f"{self.name}: missing field {exc.args[0]}") from None
        if values:
            raise ValueError(f"{self.name}: unknown fields {sorted(values)}")
        for index in reversed(self._u48):
            value = args[index]
            args[index:index + 1] = (value >> 32, value & 0xFFFF_FFFF)
        return self.struct.pack(self.type_code, *args)

    def decode(self, buf):          # replaced per instance by a compiled twin (_compile)
        """Unpack exactly one message into a :attr:`record`.

        Raises
        ------
        ValueError
            If ``buf`` is not ``length`` bytes long or does not start with the type code.
        """
        if len(buf) != self.length:
            raise ValueError(f"{self.name}: expected {self.length} bytes, got {len(buf)}")
        values = list(self.struct.unpack(buf))
        if values[0] != self.type_code:
            raise ValueError(f"{self.name}: type code {values[0]!r}, expected {self.type_code!r}")
        del values[0]
        for index in self._u48:
            values[index:index + 2] = ((values[index] << 32) | values[index + 1],)
        for index, dec in self._decoders:
            values[index] = dec(values[index])
        return self.record._make(values)


_MISSING = object()
#: Every 1-character ASCII str → its byte (a CHAR field's whole check and encoding).
_CHARS = {chr(code): bytes((code,)) for code in range(128)}


def _slow_values(names, values, extra):
    out = {name: value for name, value in zip(names, values) if value is not _MISSING}
    out.update(extra)
    return out


def _compile(spec):
    """(encode, decode) functions specialised for ``spec``, generated once.

    They do what :meth:`MessageSpec.encode` / :meth:`MessageSpec.decode` do with the fields
    unrolled and the common cases (``str`` text, ``int`` numbers) checked inline. Anything
    else (a missing, unknown or out-of-range value, ``bytes`` text, an enum...) goes to the
    generic methods, so results and error messages are exactly theirs.
    """
    env = {"_M": _MISSING, "_slow_encode": MessageSpec.encode.__get__(spec),
           "_slow_decode": MessageSpec.decode.__get__(spec), "_pack": spec.struct.pack,
           "_unpack": spec.struct.unpack, "_tc": spec.type_code, "_str": str, "_int": int,
           "_tnew": tuple.__new__, "_record": spec.record, "_len": len, "_chars": _CHARS}
    for f in spec.fields:
        if not f.name.isidentifier() or f.name.startswith("_") or f.name[0] == "v":
            return MessageSpec.encode.__get__(spec), MessageSpec.decode.__get__(spec)
    names = [f.name for f in spec.fields]
    env["_names"], env["_slow_values"] = tuple(names), _slow_values
    given = "".join(n + ", " for n in names)
    bail = f"return _slow_encode(**_slow_values(_names, ({given}), _extra))"
    params, checks, args, dec = [], [], [], []
    u48 = set(spec._u48)
    for i, f in enumerate(spec.fields):
        v = f"v{i}"
        default = f"_d{i}"
        env[default] = _MISSING if f.default is None else f.default
        params.append(f"{f.name}={default}")
        checks.append(f"    {v} = {f.name}")
        n = f.length
        if f.kind is Kind.ALPHA:
            checks.append(f"    if {v}.__class__ is not _str or _len({v}) > {n} or "
                          f"not {v}.isascii(): " + bail)
            args.append(f"{v}.encode().ljust({n}, b' ')")
            dec.append(f"{v}.decode('ascii').rstrip(' ')")
        elif f.kind is Kind.CHAR:
            # One lookup checks and encodes: only a 1-character ASCII str is in _chars.
            checks.append(f"    {v} = _chars.get({v}) if {v}.__class__ is _str else None")
            checks.append(f"    if {v} is None: " + bail)
            args.append(v)
            dec.append(f"{v}.decode('ascii')")
        elif f.kind is Kind.NUMERIC:
            env[f"_enc{i}"] = spec._encoders[i]
            env[f"_dec{i}"] = _decoder(spec.name, f)
            checks.append(f"    if {v} is _M: " + bail)
            checks.append(f"    {v} = _enc{i}({v})")
            args.append(v)
            dec.append(f"_dec{i}({v})")
        else:
            checks.append(f"    if {v}.__class__ is not _int or not 0 <= {v} < {1 << (8 * n)}: "
                          + bail)
            if i in u48:
                args.append(f"{v} >> 32, {v} & 0xFFFFFFFF")
            else:
                args.append(v)
            dec.append(v)
    unpacked = []
    for i in range(len(spec.fields)):
        unpacked.extend((f"v{i}", f"v{i}_lo") if i in u48 else (f"v{i}",))
    dec = [f"(v{i} << 32) | v{i}_lo" if i in u48 else d for i, d in enumerate(dec)]
    sep = ", "
    src = [
        f"def encode({sep.join(params + ['**_extra'])}):",
        "    if _extra: " + bail,
        *checks,
        f"    return _pack(_tc{''.join(', ' + a for a in args)})",
        "",
        "def decode(buf):",
        f"    if _len(buf) != {spec.length}: return _slow_decode(buf)",
        f"    {''.join(u + ', ' for u in ['tc'] + unpacked)}= _unpack(buf)",
        "    if tc != _tc: return _slow_decode(buf)",
        f"    return _tnew(_record, ({''.join(d + ', ' for d in dec)}))",
    ]
    exec("\n".join(src), env)      # noqa: S102 - generated from the field table only
    encode, decode = env["encode"], env["decode"]
    encode.__doc__, decode.__doc__ = MessageSpec.encode.__doc__, MessageSpec.decode.__doc__
    return encode, decode


class MessageSet(Mapping):
    """The message types of one protocol direction, keyed by type code.

    Parameters
    ----------
    specs : iterable of MessageSpec
    name : str
        Protocol name used in error messages.
    """

    def __init__(self, specs, name):
        self.name = name
        self._specs = {}
        for spec in specs:
            if spec.type_code in self._specs:
                raise ValueError(f"{name}: duplicate type {spec.type_code!r}")
            self._specs[spec.type_code] = spec

    def __getitem__(self, type_code):
        return self._specs[type_code]

    def __iter__(self):
        return iter(self._specs)

    def __len__(self):
        return len(self._specs)

    def spec(self, type_code):
        """Return the spec of ``type_code`` (bytes or 1-char str), or raise ValueError."""
        if isinstance(type_code, str):
            type_code = type_code.encode("ascii")
        try:
            return self._specs[type_code]
        except KeyError:
            raise ValueError(f"{self.name}: unknown message type {type_code!r}") from None

    def encode(self, type_code, **values):
        """Encode a message of ``type_code`` from keyword field values."""
        spec = self._specs.get(type_code) if type_code.__class__ is bytes else None
        return (spec or self.spec(type_code)).encode(**values)

    def decode(self, buf):
        """Decode one message, dispatching on its first byte."""
        if not buf:
            raise ValueError(f"{self.name}: empty message")
        return self.spec(bytes(buf[:1])).decode(buf)
