"""The broker as a member firm of one venue: its OUCH session, its child orders, its breaker.

A :class:`VenueLink` keeps one SoupBinTCP/OUCH session (the OUCH client of
``tickwire.gateways.ouch``) and a :class:`~tickwire.routing.breaker.CircuitBreaker`. Child
orders get tokens of their own; every report about one (Accepted, Executed, Canceled,
Rejected) goes to the child's ``on_fill``/``on_done``. :meth:`VenueLink.replace` sends an
OUCH Replace Order for a posted child: the venue answers Replaced (the replacement child takes
over, ``on_replaced``), or Cancel Reject for a token no longer live (it was filled or canceled
first) or Rejected for the replacement token (``on_replace_rejected``: the original stands). A lost session trips the breaker and is
re-established in the background with a login asking for the next sequence number, so the
reports it missed (a fill of an order in flight when the line dropped) are replayed and
nothing is lost. An order not acknowledged within ``ack_timeout`` counts as a failure.
"""

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.client import OuchClient
from tickwire.routing.breaker import CircuitBreaker

__all__ = ["ChildOrder", "VenueDown", "VenueLink"]

log = logging.getLogger(__name__)

_TIF = {"ioc": ouch.TimeInForce.IMMEDIATE_OR_CANCEL, "fok": ouch.TimeInForce.IMMEDIATE_OR_CANCEL,
        "day": ouch.TimeInForce.MARKET_HOURS, "gtc": ouch.TimeInForce.SYSTEM_HOURS}


class VenueDown(ConnectionError):
    """The venue's breaker is open or its session is down."""


@dataclass(eq=False)
class ChildOrder:
    """One order sent to a venue for a parent order."""
    venue: str
    token: str
    parent: object
    side: str
    qty: int
    price: int
    tif: str
    filled: int = 0
    accepted: bool = False
    reason: str | None = None           # why it ended (None while open)
    nbbo: tuple = (None, None)          # NBBO bid and ask when it was routed
    better_unswept: int = 0             # its decision's Rule 611 check (0: no trade-through)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def leaves(self):
        return 0 if self.done.is_set() else self.qty - self.filled


class VenueLink:
    """The broker's session with one venue.

    Parameters
    ----------
    name : str
        The venue's name.
    address : tuple of (str, int)
        Its OUCH gateway.
    login : tuple of (str, str)
        The broker's username and password there.
    on_fill : callable
        ``on_fill(child, shares, price, match)`` for each execution.
    on_done : callable
        ``on_done(child)`` when a child order ends (``child.reason`` says how).
    on_replaced : callable, optional
        ``on_replaced(child, replacement)`` when the venue has replaced a child order.
    on_replace_rejected : callable, optional
        ``on_replace_rejected(child, replacement, reason)`` when it refused to.
    breaker : CircuitBreaker, optional
    ack_timeout : float
        Seconds an order may wait for Accepted or Rejected.
    prefix : str
        Start of this session's order tokens (tokens are unique per firm and day).
    """

    def __init__(self, name, address, login, on_fill, on_done, breaker=None, ack_timeout=2.0,
                 prefix="B", on_replaced=None, on_replace_rejected=None):
        self.name, self.address, self.login = name, address, login
        self.on_fill, self.on_done = on_fill, on_done
        self.on_replaced, self.on_replace_rejected = on_replaced, on_replace_rejected
        self.replacing = {}             # existing token -> its replacement ChildOrder
        self.breaker = breaker or CircuitBreaker()
        self.ack_timeout = ack_timeout
        self.children = {}              # token -> ChildOrder
        self.client = None
        self._tokens = (f"{prefix}{n:x}" for n in itertools.count(1))
        self._reconnect = None
        self._closing = False
        self.stats = {"sent": 0, "filled": 0, "rejected": 0, "timeouts": 0, "reconnects": 0,
                      "replaces": 0}

    async def connect(self):
        """Log in (again, asking for what was missed) and watch the session."""
        sequence = self.client.next_seq if self.client is not None else 1
        client = OuchClient(self._on_message)
        client.next_seq = sequence
        await client.connect(*self.address, *self.login, sequence=sequence)
        self.client = client
        self.breaker.success()
        asyncio.get_running_loop().create_task(self._watch(client))
        return self

    async def _watch(self, client):
        await client.closed.wait()
        if self._closing or client is not self.client:
            return
        log.warning("venue %s: session lost; routing around it", self.name)
        self.breaker.trip()
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self):
        while not self._closing:
            await asyncio.sleep(self.breaker.reset_after)
            try:
                await self.connect()
                self.stats["reconnects"] += 1
                log.info("venue %s: session back", self.name)
                return
            except (TimeoutError, OSError, ConnectionError) as exc:
                self.breaker.trip()
                log.info("venue %s: still down (%s)", self.name, exc)

    def available(self):
        """Whether the router may use this venue now."""
        return self.client is not None and not self.client.closed.is_set() and \
            self.breaker.available()

    def send(self, parent, side, qty, price, tif, sweep=False):
        """Send a child order; returns it. Raises VenueDown if the breaker refuses."""
        if self.client is None or self.client.closed.is_set() or not self.breaker.allow():
            raise VenueDown(f"venue {self.name} is not available")
        child = ChildOrder(self.name, next(self._tokens), parent, side, qty, price, tif)
        self.children[child.token] = child
        self.client.enter(child.token, "B" if side == "buy" else "S", qty, parent.symbol, price,
                          tif=_TIF[tif], min_qty=qty if tif == "fok" else 0,
                          ise="Y" if sweep else "N")
        self.stats["sent"] += 1
        asyncio.get_running_loop().call_later(self.ack_timeout, self._check_ack, child)
        return child

    def replace(self, child, parent, qty, price, tif):
        """Send an OUCH Replace Order for ``child`` (posted, ``tif`` day or gtc); returns the
        replacement child of ``parent``, live once the venue answers Replaced. Raises
        VenueDown if the session is down."""
        if self.client is None or self.client.closed.is_set():
            raise VenueDown(f"venue {self.name} is not available")
        replacement = ChildOrder(self.name, next(self._tokens), parent, child.side, qty, price,
                                 tif)
        self.replacing[child.token] = replacement
        self.client.replace(child.token, replacement.token, qty, price, tif=_TIF[tif])
        self.stats["replaces"] += 1
        return replacement

    def cancel(self, child):
        """Ask the venue to cancel what is left of a child order."""
        if self.client is None or self.client.closed.is_set():
            raise VenueDown(f"venue {self.name} is not available")
        self.client.cancel(child.token)

    def _check_ack(self, child):
        if not child.accepted and not child.done.is_set():
            self.stats["timeouts"] += 1
            self.breaker.failure()

    def _on_message(self, number, record, raw):
        code = raw[:1]
        if code == b"U":
            self._replaced(record)
            return
        token = getattr(record, "order_token", None)
        if code in (b"I", b"J") and self._replace_refused(token, code, record):
            return
        child = self.children.get(token)
        if child is None:
            return
        if code == b"A":
            child.accepted = True
            self.breaker.success()
        elif code == b"E":
            child.filled += record.executed_shares
            self.stats["filled"] += record.executed_shares
            self.on_fill(child, record.executed_shares, record.execution_price,
                         record.match_number)
            if child.filled >= child.qty:
                self._end(child, "filled")
        elif code == b"C":
            self._end(child, "canceled")
        elif code == b"J":
            self.stats["rejected"] += 1
            child.accepted = True
            self._end(child, f"rejected:{record.reject_reason}")

    def _replaced(self, record):
        old = self.children.pop(record.previous_order_token, None)
        replacement = self.replacing.pop(record.previous_order_token, None)
        if old is None or replacement is None:
            return
        old.reason = "replaced"
        old.done.set()
        replacement.accepted = True
        replacement.qty, replacement.price = record.shares, record.price
        self.children[replacement.token] = replacement
        self.breaker.success()
        self.on_replaced(old, replacement)

    def _replace_refused(self, token, code, record):
        """Cancel Reject for a token being replaced, or Rejected for a replacement token: the
        replace is refused and the original order stands (if it still lives)."""
        if code == b"I":
            existing = token if token in self.replacing else None
            reason = "too late to replace: the order is no longer live at the venue"
        else:
            existing = next((t for t, r in self.replacing.items() if r.token == token), None)
            reason = f"rejected by the venue (OUCH reason {record.reject_reason!r})"
        if existing is None:
            return False
        replacement = self.replacing.pop(existing)
        replacement.reason = f"rejected:{reason}"
        replacement.done.set()
        self.on_replace_rejected(self.children.get(existing), replacement, reason)
        return True

    def _end(self, child, reason):
        if not child.done.is_set():
            child.reason = reason
            child.done.set()
            del self.children[child.token]
            self.on_done(child)

    async def close(self):
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        if self.client is not None:
            await self.client.close()
