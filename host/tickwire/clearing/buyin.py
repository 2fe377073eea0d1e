"""The CCP's buy-in: a real buy order through the venue's gateway, as the CCP's own account.

:func:`buy_in` logs in to the venue's SoupBinTCP/OUCH 4.2 gateway with the CCP's account (an
account of the venue config whose firm is ``CCP``), enters an immediate-or-cancel buy at a
limit, and collects the executions until the order is done (filled, or its rest canceled or
rejected). The fills are what the CCP paid; the failing member is charged for them. The CCP's
own trades settle like anyone's: its side of them is its own account (``CCP:SYM``), so the
sellers deliver the bought shares straight to where the CCP owes them.
"""

import asyncio
from dataclasses import dataclass, field

from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.client import OuchClient

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


async def _buy(venue, token, symbol, shares, limit, timeout):
    result = BuyInResult(token, shares)
    done = asyncio.Event()

    def on_message(_number, record, raw):
        if getattr(record, "order_token", "").strip() != token:
            return
        code = raw[:1]
        if code == b"E":
            result.fills.append((record.executed_shares, record.execution_price,
                                 record.match_number))
            if result.shares >= shares:
                result.outcome = "filled"
                done.set()
        elif code in (b"C", b"J"):
            result.outcome = "canceled" if code == b"C" else "rejected"
            done.set()

    client = OuchClient(on_message)
    await client.connect(venue.host, venue.port, venue.username, venue.password)
    try:
        client.enter(token, "B", shares, symbol, limit,
                     tif=ouch.TimeInForce.IMMEDIATE_OR_CANCEL)
        await client.drain()
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            pass
    finally:
        await client.logout()
    return result


def buy_in(venue, token, symbol, shares, limit, timeout=5.0):
    """Buy ``shares`` of ``symbol`` at ``limit`` (1/10000 $) or better, IOC; the result."""
    return asyncio.run(_buy(venue, token, symbol, shares, limit, timeout))
