"""Every request the sequencer takes, as a typed, immutable, versioned record.

A gateway (or the operator, or the main job) builds one of these; the sequencer screens it
(engine down, pre-trade risk), plays it into the exchange and journals it
(:mod:`tickwire.sequencer.journal`) with the engine command it made. The records are msgspec
``Struct`` s (frozen): built in a tenth of the time of a frozen dataclass and encoded by
msgspec's C MessagePack codec (:mod:`tickwire.core.codec`), which matters at the gateway's
rate. Each carries its ``KIND`` and ``VERSION`` in its tag (``KIND * 256 + VERSION``), so a
record's layout can change (a new ``VERSION``) without breaking old journals.

Prices are integers in 1/10000 $ (``None``: a market order), quantities in shares, ``ts`` in ns
since midnight UTC (the sequencer's clock, non-decreasing). ``received`` (client requests and
refusals) is when a gateway read the request's bytes from its socket, ns since midnight UTC on
the same clock; ``None`` for a request that came from no gateway (the operator, a command
file) or from a journal written before the field existed. A new field goes last with a default:
a journal array shorter than the class takes the defaults, so older journals still decode.

``attrs`` are a gateway's own fields of an order as its client entered them (OUCH: display,
capacity, cross type...), ``(name, value)`` pairs with ``int`` or ``str`` values. The core
journals them and hands them back on the order's reports; it never reads them.
"""

from typing import ClassVar

import msgspec
from tickwire.core.reasons import Reason
from tickwire.protocol.link import Side, Tif

__all__ = ["Request", "NewOrder", "CancelOrder", "ReplaceOrder", "DeclareSymbol", "Halt", "Resume",
           "SystemEvent", "KillSwitch", "Reject", "EngineDown", "Recovered", "REQUEST_TYPES",
           "ORDER_REQUESTS", "Attrs", "Indexes"]

#: A gateway's fields of an order: ``(name, int | str)`` pairs.
Attrs = tuple[tuple[str, int | str], ...]
#: Journal record indexes.
Indexes = tuple[int, ...]


class Request(msgspec.Struct, frozen=True, array_like=True, tag_field="kind", gc=False):
    """Base of every request: ``ts``, ns since midnight UTC (the sequencer's clock).

    Not tracked by Python's cyclic garbage collector (``gc=False``): a request holds only
    numbers, texts and tuples of them, so it is never part of a cycle, and the day's requests
    (kept with their reports) no longer make the collector run and rescan them.
    """
    ts: int


class NewOrder(Request, tag=257):
    """Enter an order for ``account``."""
    KIND: ClassVar[int] = 1
    VERSION: ClassVar[int] = 1
    account: str
    token: str
    symbol: str
    side: Side
    qty: int
    price: int | None
    tif: Tif
    min_qty: int = 0
    attrs: Attrs = ()
    received: int | None = None


class CancelOrder(Request, tag=513):
    """Cancel an order down to ``qty`` shares (0: all of it); ``by_kill``: the kill switch's."""
    KIND: ClassVar[int] = 2
    VERSION: ClassVar[int] = 1
    account: str
    token: str
    qty: int = 0
    by_kill: bool = False
    received: int | None = None


class ReplaceOrder(Request, tag=769):
    """Replace ``token`` by ``new_token`` with ``qty`` shares at ``price`` (a limit)."""
    KIND: ClassVar[int] = 3
    VERSION: ClassVar[int] = 1
    account: str
    token: str
    new_token: str
    qty: int
    price: int
    attrs: Attrs = ()
    received: int | None = None


class DeclareSymbol(Request, tag=1025):
    """List a symbol at a reference ``price``; ``None`` fields take the venue's defaults.

    ``breaker_bp``: the circuit breaker, in basis points of the reference (0: off).
    """
    KIND: ClassVar[int] = 4
    VERSION: ClassVar[int] = 1
    symbol: str
    price: int
    tick: int | None = None
    lot: int | None = None
    breaker_bp: int | None = None


class Halt(Request, tag=1281):
    KIND: ClassVar[int] = 5
    VERSION: ClassVar[int] = 1
    symbol: str


class Resume(Request, tag=1537):
    KIND: ClassVar[int] = 6
    VERSION: ClassVar[int] = 1
    symbol: str


class SystemEvent(Request, tag=1793):
    """An ITCH system event (``O S Q M E C``); the open (``O``) records the session's
    ``trade_date`` (ISO ``YYYY-MM-DD``)."""
    KIND: ClassVar[int] = 7
    VERSION: ClassVar[int] = 1
    code: str
    trade_date: str | None = None


class KillSwitch(Request, tag=2049):
    """Engage (``on``) or release the kill switch of an ``"account"`` or a ``"firm"``."""
    KIND: ClassVar[int] = 8
    VERSION: ClassVar[int] = 1
    scope: str
    name: str
    on: bool = True


class Reject(Request, tag=2305):
    """A request refused before the exchange (risk, engine down, the gateway).

    ``of`` names the refused request (``"new"``, ``"cancel"``, ``"replace"``, or what the
    client sent); ``cancel``: answered as a refused cancel (a Cancel Reject). ``symbol``,
    ``side``, ``qty`` and ``price`` are the refused order's, where it had them (an audit trail
    names what was refused).
    """
    KIND: ClassVar[int] = 9
    VERSION: ClassVar[int] = 1
    of: str
    account: str | None
    token: str | None
    reason: Reason
    text: str = ""
    cancel: bool = False
    received: int | None = None
    symbol: str | None = None
    side: Side | None = None
    qty: int | None = None
    price: int | None = None


class EngineDown(Request, tag=2561):
    """Order intake stopped: the engine failed on journal record ``failed`` (None: a host
    failure before any command)."""
    KIND: ClassVar[int] = 10
    VERSION: ClassVar[int] = 1
    failed: int | None
    text: str


class Recovered(Request, tag=2817):
    """Recovery released the reports of the ``released`` journal records (engine failures)."""
    KIND: ClassVar[int] = 11
    VERSION: ClassVar[int] = 1
    released: Indexes = ()


REQUEST_TYPES = (NewOrder, CancelOrder, ReplaceOrder, DeclareSymbol, Halt, Resume, SystemEvent,
                 KillSwitch, Reject, EngineDown, Recovered)
#: The requests a client sends (screened by risk, refused while the engine is down).
ORDER_REQUESTS = (NewOrder, CancelOrder, ReplaceOrder)
