"""The engine link: command records (host → engine) and event records (engine → host).

One table per record defines it once. From the table come both the Amaranth
``data.StructLayout`` the gateware uses (``COMMAND_LAYOUT``, ``EVENT_LAYOUT``) and the
Python record classes the model and the host use (``Command``, ``Event``), with a
byte codec for the wire.

On the wire (serial link, cocotb benches) a record is its struct's bit vector, least
significant bit first, written as a little-endian integer of ``COMMAND_BYTES`` /
``EVENT_BYTES`` bytes. Field meanings per action and per event kind are written in
sim/ENGINE.md ("The engine link").
"""

import dataclasses

from amaranth.lib import data, enum

__all__ = [
    "Action", "Side", "Tif", "Stp", "EventKind", "ReplaceMode", "Reason",
    "COMMAND_FIELDS", "EVENT_FIELDS", "COMMAND_LAYOUT", "EVENT_LAYOUT", "COMMAND_BYTES",
    "EVENT_BYTES", "Command", "Event", "NO_SLOT", "REASON_TEXT", "pack_name", "unpack_name",
    "ModelParams",
]


class Action(enum.IntEnum, shape=4):
    """What a command asks of the engine."""
    NOP = 0
    NEW = 1
    CANCEL = 2
    REPLACE = 3
    DECLARE = 4
    HALT = 5
    RESUME = 6
    SYSTEM = 7


class Side(enum.IntEnum, shape=1):
    BUY = 0
    SELL = 1


class Tif(enum.IntEnum, shape=2):
    DAY = 0
    GTC = 1
    IOC = 2
    FOK = 3


class Stp(enum.IntEnum, shape=2):
    """Self-trade prevention mode of an incoming order (when both firms are equal, non-zero)."""
    CANCEL_NEWEST = 0
    CANCEL_OLDEST = 1
    CANCEL_BOTH = 2


class EventKind(enum.IntEnum, shape=4):
    """What an event reports. Each kind gives at most one ITCH message."""
    SYSTEM = 0         # ITCH S
    DIRECTORY = 1      # ITCH R
    TRADING = 2        # ITCH H
    ACCEPT = 3         # private: order accepted (before any fill)
    REJECT = 4         # private: command rejected, nothing changed
    ADD = 5            # ITCH A: order rests on the book
    EXECUTE = 6        # ITCH E on the resting order; private fill for both sides
    REDUCE = 7         # ITCH X: resting order partially cancelled
    DELETE = 8         # ITCH D: resting order removed (cancel, STP, expiry)
    REPLACE = 9        # ITCH X, U or D by ``mode``; private replaced
    KILL = 10          # private: unrested remainder cancelled (IOC, FOK, market, STP, halt)
    CANCEL_REJECT = 11  # private: cancel/replace of an order that is not on the book


class ReplaceMode(enum.IntEnum, shape=2):
    KEPT = 0     # same price, size down: keeps priority (ITCH X of the difference)
    MOVED = 1    # loses priority, does not cross (ITCH U)
    CROSSED = 2  # loses priority and crosses (ITCH D, then fills, then ITCH A of the rest)


class Reason(enum.IntEnum, shape=8):
    """Why something was rejected, cancelled or halted (ASCII letters, readable in waveforms)."""
    NONE = 0
    UNKNOWN_SYMBOL = ord("S")
    HALTED = ord("H")
    OUT_OF_BAND = ord("X")
    BAD_QTY = ord("Z")
    BAD_MIN_QTY = ord("N")
    BOOK_FULL = ord("F")
    BAD_DECLARATION = ord("Y")
    USER = ord("U")
    IOC = ord("I")
    FOK = ord("K")
    MIN_QTY = ord("M")
    SELF_TRADE = ord("Q")
    BREAKER = ord("B")
    EXPIRED = ord("E")
    NOT_FOUND = ord("?")
    NOTHING_TO_CANCEL = ord("0")
    OPERATOR = ord("O")
    BAD_STP = ord("P")


REASON_TEXT = {
    Reason.UNKNOWN_SYMBOL: "unknown symbol", Reason.HALTED: "halted",
    Reason.OUT_OF_BAND: "price outside the band", Reason.BAD_QTY: "invalid quantity",
    Reason.BAD_MIN_QTY: "invalid minimum quantity", Reason.BOOK_FULL: "book full",
    Reason.BAD_DECLARATION: "invalid symbol declaration", Reason.USER: "user",
    Reason.IOC: "immediate or cancel", Reason.FOK: "fill or kill",
    Reason.MIN_QTY: "minimum quantity not met", Reason.SELF_TRADE: "self-trade prevention",
    Reason.BREAKER: "circuit breaker", Reason.EXPIRED: "expired at the close",
    Reason.NOT_FOUND: "order not found", Reason.NOTHING_TO_CANCEL: "nothing to cancel",
    Reason.OPERATOR: "operator", Reason.BAD_STP: "invalid self-trade prevention mode",
}

NO_SLOT = 0xFFFF

#: (name, shape) of every command field, least significant first.
COMMAND_FIELDS = (
    ("seq", 32),            # sequencer's global sequence number
    ("timestamp", 48),      # ns since midnight, copied into every event
    ("action", Action),
    ("side", Side),
    ("tif", Tif),
    ("market", 1),          # NEW: market order (limit = band edge, never rests)
    ("stp", Stp),
    ("symbol", 16),         # stock locate, 1..max_symbols
    ("firm", 16),           # STP group; 0 = none
    ("price", 32),          # ticks (DECLARE: reference price)
    ("qty", 32),            # NEW: shares; CANCEL: to leave; REPLACE: new shares; DECLARE: round lot
    ("min_qty", 32),
    ("order_id", 32),       # ITCH order reference number (NEW, CANCEL, REPLACE: existing order)
    ("new_order_id", 32),   # REPLACE: reference number of the replacement
    ("slot", 16),           # CANCEL, REPLACE: engine slot of the existing order
    ("code", 8),            # SYSTEM: ITCH event code
    ("name", 64),           # DECLARE: stock symbol, 8 ASCII bytes, first character lowest
    ("tick", 16),           # DECLARE: tick size in 1/10000 $
    ("breaker", 32),        # DECLARE: circuit breaker distance from reference in ticks (0 = off)
)

#: (name, shape) of every event field, least significant first.
EVENT_FIELDS = (
    ("seq", 32),            # sequence number of the command that caused it
    ("timestamp", 48),
    ("kind", EventKind),
    ("side", Side),
    ("last", 1),            # last event of its command
    ("odd_lot", 1),         # ADD: below the round lot
    ("halted", 1),          # TRADING: the symbol is halted
    ("mode", ReplaceMode),
    ("symbol", 16),
    ("order_id", 32),       # the order concerned (EXECUTE: resting order)
    ("other_id", 32),       # EXECUTE: aggressor; REPLACE: new reference number
    ("slot", 16),
    ("qty", 32),            # shares accepted/added/executed/cancelled; REPLACE: new; DIRECTORY: lot
    ("remaining", 32),      # shares left on the order after the event; REPLACE: shares before
    ("price", 32),          # ticks
    ("match", 32),          # EXECUTE: match number
    ("reason", Reason),
    ("name", 64),           # DIRECTORY
    ("tick", 16),           # DIRECTORY
    ("code", 8),            # SYSTEM: ITCH event code (ASCII)
)


def _layout(fields):
    return data.StructLayout(dict(fields))


def _width(shape):
    return shape if isinstance(shape, int) else shape.as_shape().width


def _record_class(name, fields, doc):
    """A Python record class with a byte codec matching the Struct layout bit for bit."""
    cls = dataclasses.make_dataclass(
        name, [(n, int, dataclasses.field(default=0)) for n, _ in fields], slots=True)
    offsets, offset = [], 0
    for field_name, shape in fields:
        width = _width(shape)
        offsets.append((field_name, offset, (1 << width) - 1))
        offset += width
    nbytes = (offset + 7) // 8
    enums = {n: s for n, s in fields if not isinstance(s, int)}

    def misfit(self):
        for field_name, _, mask in offsets:
            field_value = getattr(self, field_name)
            if field_value & ~mask:
                raise ValueError(f"{name}.{field_name}={field_value} does not fit its field")

    @classmethod
    def from_int(cls, value):
        kwargs = {n: (value >> shift) & mask for n, shift, mask in offsets}
        for field_name, enum_cls in enums.items():
            # A value outside the enum (a corrupted or future record) stays a plain int.
            if kwargs[field_name] in enum_cls._value2member_map_:
                kwargs[field_name] = enum_cls(kwargs[field_name])
        return cls(**kwargs)

    @classmethod
    def from_bytes(cls, raw):
        if len(raw) != nbytes:
            raise ValueError(f"{name} record is {nbytes} bytes, got {len(raw)}")
        return cls.from_int(int.from_bytes(raw, "little"))

    cls.to_int, cls.to_bytes = _compile_packer(offsets, nbytes, misfit)
    cls.from_int, cls.from_bytes = from_int, from_bytes
    cls.WIDTH, cls.BYTES = offset, nbytes
    cls.BITS = {field_name: (shift, mask) for field_name, shift, mask in offsets}
    cls.__doc__ = doc
    return cls


def _compile_packer(offsets, nbytes, misfit):
    """``(to_int, to_bytes)`` with the fields unrolled: every field read once, one test that
    each is within ``0 .. mask`` (``misfit`` raises naming the one that is not), then the sum
    of the shifted fields (disjoint once they fit, so the sum is their OR, and cheaper).
    Generated from the field table only, once per record class."""
    reads = "".join(f"    v{i} = self.{n}\n" for i, (n, _, _) in enumerate(offsets))
    test = " or ".join(f"not 0 <= v{i} <= {mask}" for i, (_, _, mask) in enumerate(offsets))
    packed = " + ".join(f"(v{i} << {shift})" if shift else f"v{i}"
                        for i, (_, shift, _) in enumerate(offsets))
    src = (f"def to_int(self):\n{reads}    if {test}:\n        _misfit(self)\n"
           f"    return {packed}\n\n"
           f"def to_bytes(self):\n    return to_int(self).to_bytes({nbytes}, 'little')\n")
    env = {"_misfit": misfit}
    exec(src, env)      # noqa: S102 - generated from the field table only
    return env["to_int"], env["to_bytes"]


COMMAND_LAYOUT = _layout(COMMAND_FIELDS)
EVENT_LAYOUT = _layout(EVENT_FIELDS)

Command = _record_class("Command", COMMAND_FIELDS, "A command record, host → engine.")
Event = _record_class("Event", EVENT_FIELDS, "An event record, engine → host.")

COMMAND_BYTES = Command.BYTES
EVENT_BYTES = Event.BYTES


def pack_name(symbol):
    """Stock symbol (str, ≤ 8 chars) → the 64-bit ``name`` field (space padded, first char LSB)."""
    raw = symbol.encode("ascii")
    if len(raw) > 8 or not raw:
        raise ValueError(f"stock symbol {symbol!r} must be 1 to 8 ASCII characters")
    return int.from_bytes(raw.ljust(8, b" "), "little")


def unpack_name(value):
    """The 64-bit ``name`` field → the stock symbol, trailing spaces stripped."""
    return value.to_bytes(8, "little").decode("ascii").rstrip(" ")


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """Capacity of the engine, chosen at elaboration in the gateware.

    Parameters
    ----------
    max_orders : int
        Resting orders across all symbols (engine slots ``0 .. max_orders-1``).
    max_symbols : int
        Stock locates ``1 .. max_symbols``.
    band_ticks : int
        Width of each symbol's price window in ticks (the tick table's depth per side).
    max_qty : int
        Largest order size accepted (the fat-finger limit of the engine itself).
    max_levels : int or None
        Occupied price levels per side per symbol; ``None`` means ``band_ticks``, which is
        what the gateware implements.
    """
    max_orders: int = 16384
    max_symbols: int = 8
    band_ticks: int = 1024
    max_qty: int = 1_000_000
    max_levels: int | None = None
