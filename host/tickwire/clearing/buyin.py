"""The CCP's buy-in: a real buy order through the venue's gateway, as the CCP's own account.

:func:`buy_in` logs in to the venue's SoupBinTCP/OUCH 4.2 gateway with the CCP's account (an
account of the venue config whose firm is ``CCP``), enters an immediate-or-cancel buy at a
limit, and collects the executions until the order is done (filled, or its rest canceled or
rejected). The fills are what the CCP paid; the failing member is charged for them. The CCP's
own trades settle like anyone's: its side of them is its own account (``CCP:SYM``), so the
sellers deliver the bought shares straight to where the CCP owes them.

Exactly once, by the order token (the caller records it before calling): every call first
reconciles with the venue. It logs in asking for the account's stream from message 1 (the
venue keeps it for the whole day, rebuilt from its journal after a restart), then sends a
cancel of a token that never existed (``<token>Q``) and waits for its Cancel Reject: the
stream before that answer holds everything the venue did with the token up to then. The login
is refused while a killed predecessor's connection is still open, so whatever that one sent
has reached the sequencer before the probe does. If the token is in the stream, its order's
reports are the result (waiting for the rest if it is still live) and nothing is sent; if not,
the order is entered now. A crash anywhere between recording the token and recording the
result is recovered by calling again.
"""

import asyncio
import time
from dataclasses import dataclass, field

from tickwire.clearing.dvp import failpoint
from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.client import LoginRejected, OuchClient

__all__ = ["BuyInResult", "BuyInVenue", "buy_in", "parse_venue"]


@dataclass(frozen=True)
class BuyInVenue:
    """Where and as whom the CCP buys in."""
    host: str
    port: int
    username: str
    password: str


@dataclass
class BuyInResult:
    token: str
    asked: int
    fills: list = field(default_factory=list)       # (shares, price in 1/10000 $, match)
    outcome: str = "timeout"                         # filled, canceled, rejected, timeout
    recovered: bool = False                          # the venue had the order already

    @property
    def shares(self):
        return sum(q for q, _, _ in self.fills)

    @property
    def cost(self):
        return sum(q * p for q, p, _ in self.fills)


def parse_venue(host_port, login):
    """``HOST:PORT`` and ``USER:PASSWORD`` → :class:`BuyInVenue` (ValueError if malformed)."""
    host, _, port = host_port.rpartition(":")
    user, _, password = login.partition(":")
    if not host or not port.isdigit() or not user or not password:
        raise ValueError(f"buy-in venue {host_port!r} / login {login!r}: need HOST:PORT and "
                         "USER:PASSWORD")
    return BuyInVenue(host, int(port), user, password)


class _Order:
    """What the account's stream says about one token (and the probe's answer)."""

    def __init__(self, token, shares):
        self.result = BuyInResult(token, shares)
        self.probe = f"{token}Q"
        self.seen = False
        self.probed, self.done = asyncio.Event(), asyncio.Event()

    def on_message(self, _number, record, raw):
        token = getattr(record, "order_token", "").strip()
        if token == self.probe:
            self.probed.set()
            return
        if token != self.result.token or self.done.is_set():
            return
        self.seen = True
        code, result = raw[:1], self.result
        if code == b"E":
            result.fills.append((record.executed_shares, record.execution_price,
                                 record.match_number))
            if result.shares >= result.asked:
                result.outcome = "filled"
                self.done.set()
        elif code in (b"C", b"J"):
            result.outcome = "canceled" if code == b"C" else "rejected"
            self.done.set()


async def _login(client, venue, timeout):
    """Log in from message 1; a refusal is retried until ``timeout`` (a killed predecessor's
    session may not have been closed by the venue yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.connect(venue.host, venue.port, venue.username,
                                        venue.password, sequence=1)
        except LoginRejected:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _buy(venue, token, symbol, shares, limit, timeout):
    order = _Order(token, shares)
    client = OuchClient(order.on_message)
    await _login(client, venue, timeout)
    try:
        client.cancel(order.probe)
        await client.drain()
        try:
            await asyncio.wait_for(order.probed.wait(), timeout)
        except TimeoutError:
            raise ConnectionError(f"buy-in {token}: the venue did not answer the probe "
                                  f"{order.probe} in {timeout} s") from None
        order.result.recovered = order.seen
        if not order.seen:
            client.enter(token, "B", shares, symbol, limit,
                         tif=ouch.TimeInForce.IMMEDIATE_OR_CANCEL)
            await client.drain()
            failpoint("buyin_sent")
        try:
            await asyncio.wait_for(order.done.wait(), timeout)
        except TimeoutError:
            pass
    finally:
        await client.logout()
    return order.result


def buy_in(venue, token, symbol, shares, limit, timeout=5.0):
    """Buy ``shares`` of ``symbol`` at ``limit`` (1/10000 $) or better, IOC, under ``token``
    unless the venue has it already; the result (the order's, whichever call sent it)."""
    return asyncio.run(_buy(venue, token, symbol, shares, limit, timeout))
