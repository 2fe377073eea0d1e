"""An asyncio SoupBinTCP/OUCH 4.2 client: the simulated firms of ``tickwire run``, the
benchmark's load generator and the tests' client.

It logs in (optionally asking for a replay from a sequence number), sends Enter / Replace /
Cancel in ``U`` packets and client heartbeats after 1 s of silence, and hands every sequenced
message to ``on_message(number, record, raw)`` (``record`` decoded with
:func:`tickwire.protocol.ouch.decode_outbound`).
"""

import asyncio
import time

from tickwire.gateways.ouch import wire as ouch
from tickwire.protocol import soupbintcp

__all__ = ["OuchClient", "LoginRejected", "cancel_message", "enter_message",
           "replace_message"]


def enter_message(token, side, shares, stock, price, tif=ouch.TimeInForce.MARKET_HOURS, firm="",
                  display="Y", capacity="A", ise="N", min_qty=0, cross="N"):
    """An OUCH Enter Order message; ``price`` in 1/10000 $ (None: market)."""
    return ouch.encode_inbound(
        b"O", order_token=token, buy_sell_indicator=side, shares=shares, stock=stock,
        price=ouch.MARKET_PRICE if price is None else price, time_in_force=int(tif),
        firm=firm, display=display, capacity=capacity, intermarket_sweep_eligibility=ise,
        minimum_quantity=min_qty, cross_type=cross)


def cancel_message(token, shares=0):
    """An OUCH Cancel Order message leaving ``shares`` (0: cancel all)."""
    return ouch.encode_inbound(b"X", order_token=token, shares=shares)


def replace_message(token, new_token, shares, price, tif=ouch.TimeInForce.MARKET_HOURS,
                    display="Y", ise="N", min_qty=0):
    """An OUCH Replace Order message: ``token``'s order becomes ``new_token``'s."""
    return ouch.encode_inbound(
        b"U", existing_order_token=token, replacement_order_token=new_token, shares=shares,
        price=price, time_in_force=int(tif), display=display,
        intermarket_sweep_eligibility=ise, minimum_quantity=min_qty)


class LoginRejected(ConnectionError):
    """The server answered the login with ``J``; ``reason`` is its code."""

    def __init__(self, reason):
        super().__init__(f"login rejected: {reason}")
        self.reason = reason


class OuchClient:
    """One client connection.

    Parameters
    ----------
    on_message : callable, optional
        ``on_message(number, record, raw)`` for each sequenced message.
    heartbeat : float
        Seconds of output silence before a client heartbeat.
    decode : bool
        Decode messages (else ``record`` is None).

    Members
    -------
    next_seq : int
        Number of the next sequenced message expected.
    session : str
    ended : bool
        End of Session received.
    debug : list of bytes
        Debug packets received.
    """

    def __init__(self, on_message=None, heartbeat=1.0, decode=True):
        self.on_message = on_message
        self.heartbeat = heartbeat
        self.decode = decode
        self.next_seq = 1
        self.session = ""
        self.ended = False
        self.debug = []
        self.closed = asyncio.Event()
        self._writer = None
        self._tasks = []
        self._last_sent = 0.0
        self.sent = []

    async def connect(self, host, port, username, password, session="", sequence=1,
                      timeout=5.0):
        """Connect and log in; return the next sequence number. Raises LoginRejected."""
        reader, self._writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                      timeout)
        self._write(soupbintcp.login_request(username, password, session, sequence))
        framer = soupbintcp.Framer()
        packets = []
        while not packets:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                self._writer.close()
                raise ConnectionError("closed during login")
            packets = framer.feed(data)
        (ptype, payload), rest = packets[0], packets[1:]
        if ptype == b"J":
            self._writer.close()
            raise LoginRejected(payload.decode())
        if ptype != b"A":
            self._writer.close()
            raise ConnectionError(f"unexpected login answer {ptype!r}")
        accepted = soupbintcp.decode_payload(b"A", payload)
        self.session, self.next_seq = accepted.session, accepted.sequence
        for ptype, payload in rest:
            self._packet(ptype, payload)
        self._tasks = [asyncio.create_task(self._read_loop(reader, framer)),
                       asyncio.create_task(self._heartbeats())]
        return self.next_seq

    def _write(self, data):
        self._writer.write(data)
        self._last_sent = time.monotonic()

    def send_raw(self, data):
        """Write raw bytes (tests)."""
        self._write(data)

    def send(self, message):
        """Send one OUCH inbound message in a ``U`` packet."""
        self._write(soupbintcp.unsequenced_data(message))

    def enter(self, token, side, shares, stock, price, tif=ouch.TimeInForce.MARKET_HOURS,
              firm="", display="Y", capacity="A", ise="N", min_qty=0, cross="N"):
        """Enter Order; ``price`` in 1/10000 $ (None: market)."""
        self.send(enter_message(token, side, shares, stock, price, tif, firm, display, capacity,
                                ise, min_qty, cross))

    def cancel(self, token, shares=0):
        self.send(cancel_message(token, shares))

    def replace(self, token, new_token, shares, price, tif=ouch.TimeInForce.MARKET_HOURS,
                display="Y", ise="N", min_qty=0):
        self.send(replace_message(token, new_token, shares, price, tif, display, ise, min_qty))

    async def drain(self):
        await self._writer.drain()

    def _packet(self, ptype, payload):
        if ptype == b"S":
            number = self.next_seq
            self.next_seq += 1
            if self.on_message is not None:
                record = ouch.decode_outbound(payload) if self.decode else None
                self.on_message(number, record, payload)
        elif ptype == b"Z":
            self.ended = True
        elif ptype == b"+":
            self.debug.append(payload)

    async def _read_loop(self, reader, framer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for ptype, payload in framer.feed(data):
                    self._packet(ptype, payload)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()

    async def _heartbeats(self):
        while not self.closed.is_set():
            idle = time.monotonic() - self._last_sent
            if idle >= self.heartbeat:
                try:
                    self._write(soupbintcp.client_heartbeat())
                except (ConnectionError, RuntimeError):
                    return
                idle = 0
            await asyncio.sleep(max(0.01, self.heartbeat - idle))

    async def logout(self, timeout=2.0):
        """Send Logout Request and wait for the server to close."""
        if not self.closed.is_set():
            self._write(soupbintcp.logout_request())
            try:
                await asyncio.wait_for(self.closed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        await self.close()

    async def close(self):
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self.closed.set()
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
