"""The order-entry gateway: an asyncio SoupBinTCP 3.0 server carrying OUCH 4.2.

One connection per client. The first packet must be a Login Request, within
``client_timeout`` seconds of the connection (one deadline for the whole login, however the
bytes trickle in); a peer (IP address) has at most ``max_pending_logins`` connections waiting
to log in. The username and password are checked against the config's scrypt hashes (an unknown
username costs the same scrypt against another account's hash, so timing tells no usernames)
on one thread of the gateway's own, at a lower CPU priority: checks run one at a time and a
login flood takes the cores' spare time, not the order path's (the event loop, the WAL's
writer thread). A bad login gets Login Rejected ``A``; a peer with
``login_failures`` failed or still running checks within ``login_window`` seconds gets ``A``
without a check until the window passes (concurrent attempts count before their check ends).
A requested session other than blank or the current one, or an account already logged in,
gets ``S``. Refusals (bad logins, the rate limit, too many waiting connections) are counted
in ``stats`` and logged at most once per :data:`REFUSAL_LOG_INTERVAL` per peer and kind, with
how many were not: a login flood does not become a log flood.

Each account has one sequenced stream for the whole day (the sequencer's neutral reports,
encoded by :class:`~tickwire.gateways.ouch.streams.OuchStreams`): Login
Accepted gives the next message number (a requested sequence of 0, or past the end, means the
end; otherwise the stream is replayed from that number), then live messages follow in order.
The server sends a Heartbeat after 1 s without output and drops a client silent for
``client_timeout`` seconds (15 by default). Logout Request closes the connection; at shutdown
every client gets End of Session ``Z``.

OUCH inbound, inside ``U`` packets, becomes typed requests (:mod:`tickwire.core.requests`;
what OUCH must echo back rides along as their opaque ``attrs``, see
:mod:`~tickwire.gateways.ouch.streams`):

=========  =========================================================================
Enter      firm: the account's (the message's Firm must be blank or equal); price P4,
           shares above 0 (else Rejected ``O``); display, capacity, intermarket sweep,
           cross type and customer type OUCH 4.2 values (else Rejected ``D`` for the
           display, ``O`` for the others);
           ``0x7FFFFFFF`` = market; side ``B``, ``S`` (``T``/``E`` sell short: a sell);
           Time in Force ``0`` = IOC, ``99998``/``99999`` (and any other lifetime) = DAY;
           **FOK** = Time in Force ``0`` with Minimum Quantity equal to Shares
Replace    shares and price of the replacement (a market price is refused ``X``)
Cancel     Shares = shares to leave (0: cancel all)
Modify,    not supported: Rejected ``O``
Trade Now
=========  =========================================================================

A firm only reaches its own orders (tokens are per firm), and an account only its own.

Bad input: a SoupBinTCP packet length of 0 or above ``max_packet`` (the packets before it in
the same read are still answered), an unexpected packet type, or anything but a Login Request
first, closes that connection (logged). A well-framed ``U``
whose OUCH message is unknown, truncated or invalid gets a Debug (``+``) packet saying why and
is dropped (logged); the session goes on. Nothing a client sends affects other sessions.

A read is answered :data:`_TURN_PACKETS` packets per event-loop turn, so the WAL's durable
completions and other connections' report writes go out between the batches of a large read.
A connection's sequenced messages of one group commit leave in one write as soon as they are
encoded; other output (login answers, heartbeats) queued in one turn leaves in one write on the
next.

Stage times (:mod:`tickwire.util.stages`, into the sequencer's ``stages``): *socket read* from
the read's return to a message's decode (the turns given to others included), *decode*, and
*socket write* from a connection's first queued message to the write that sends it.
"""

import asyncio
import collections
import concurrent.futures
import logging
import os
import threading
import time

from tickwire.accounts.config import verify_password
from tickwire.core.reasons import Reason
from tickwire.core.requests import CancelOrder, NewOrder, Reject, ReplaceOrder
from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.streams import OuchStreams, entry_attrs, replace_attrs
from tickwire.protocol import soupbintcp
from tickwire.protocol.link import Side, Tif
from tickwire.sequencer.sequencer import Sequencer
from tickwire.util.stages import DECODE, READ, WRITE

__all__ = ["GatewayServer", "enter_request", "inbound_request", "DEFAULT_HEARTBEAT",
           "DEFAULT_CLIENT_TIMEOUT"]

log = logging.getLogger(__name__)

#: A peer's repeated refusals (rate limit, bad logins, too many connections) are logged at most
#: once per this many seconds each, with the count since: a login flood must not become a log
#: flood on the event loop.
REFUSAL_LOG_INTERVAL = 10.0
DEFAULT_HEARTBEAT = 1.0
DEFAULT_CLIENT_TIMEOUT = 15.0
_MAX_WRITE_BUFFER = 32 << 20
#: How much nicer (``setpriority``) than the venue the password-check thread runs.
LOGIN_CHECK_NICENESS = 10
#: Packets of one read answered per event-loop turn: a 64 KiB read holds ~1,300 orders, and
#: while they are sequenced nothing else runs (the WAL's fsync completions, report writes);
#: 16 orders are ~3 ms of the venue's CPU.
_TURN_PACKETS = 16
_LOGIN = soupbintcp.SPECS[b"L"]
_SIDES = {"B": Side.BUY, "S": Side.SELL, "T": Side.SELL, "E": Side.SELL}
_IOC = ouch.TimeInForce.IMMEDIATE_OR_CANCEL
_DISPLAYS = frozenset(ouch.Display)
_CAPACITIES = frozenset(ouch.Capacity)
_CROSS_TYPES = frozenset(ouch.CrossType)
_ISE = frozenset("YN")
_CUSTOMER_TYPES = frozenset("RN ")


_HEADERS = {}


def _sequenced_header(length):
    """Packet Length and type of a Sequenced Data packet with a ``length``-byte message."""
    header = _HEADERS.get(length)
    if header is None:
        header = soupbintcp.sequenced_data(b"\0" * length)[:3]
        if len(_HEADERS) < 4096:
            _HEADERS[length] = header
    return header


class _BadMessage(ValueError):
    pass


def enter_request(account, msg, ts, received=None):
    """The typed request for a decoded OUCH Enter Order ``msg`` of ``account`` (``received``:
    when a read brought its bytes, :mod:`tickwire.core.requests`)."""
    if not msg.order_token:
        raise _BadMessage("Enter Order: blank order token")
    side = _SIDES.get(msg.buy_sell_indicator)
    if msg.firm and msg.firm != account.firm:
        return _refuse_entry(account, msg, ts, received, side, Reason.WRONG_FIRM,
                             f"firm {msg.firm!r} is not the account's {account.firm!r}")
    if side is None:
        return _refuse_entry(account, msg, ts, received, side, Reason.BAD_SIDE,
                             f"side {msg.buy_sell_indicator!r}")
    refusal = _field_refusal(msg, _ENTER_FIELDS) or (
        (Reason.INVALID_QTY, "zero shares") if msg.shares == 0 else None)
    if refusal is not None:
        return _refuse_entry(account, msg, ts, received, side, *refusal)
    market = msg.price == ouch.MARKET_PRICE
    min_qty = msg.minimum_quantity
    if msg.time_in_force == _IOC:
        if min_qty and min_qty == msg.shares:
            tif, min_qty = Tif.FOK, 0
        else:
            tif = Tif.IOC
    else:
        tif = Tif.IOC if market else Tif.DAY
    return NewOrder(ts=ts, account=account.username, token=msg.order_token, symbol=msg.stock,
                    side=side, qty=msg.shares, price=None if market else msg.price, tif=tif,
                    min_qty=min_qty,
                    attrs=entry_attrs(msg.buy_sell_indicator, msg.time_in_force, msg.display,
                                      msg.capacity, msg.intermarket_sweep_eligibility,
                                      msg.minimum_quantity, msg.cross_type),
                    received=received)


def _refuse_entry(account, msg, ts, received, side, reason, text):
    """The Reject of an Enter Order (a function, not a closure in :func:`enter_request`: its
    cells were allocated on every order)."""
    return Reject(ts=ts, of="new", account=account.username, token=msg.order_token,
                  reason=reason, text=text, received=received, symbol=msg.stock, side=side,
                  qty=msg.shares, price=None if msg.price == ouch.MARKET_PRICE else msg.price)


_ENTER_FIELDS = (("display", _DISPLAYS, Reason.INVALID_DISPLAY),
                 ("capacity", _CAPACITIES, Reason.INVALID_FIELD),
                 ("intermarket_sweep_eligibility", _ISE, Reason.INVALID_FIELD),
                 ("cross_type", _CROSS_TYPES, Reason.INVALID_FIELD),
                 ("customer_type", _CUSTOMER_TYPES, Reason.INVALID_FIELD))
_REPLACE_FIELDS = _ENTER_FIELDS[:1] + _ENTER_FIELDS[2:3]


def _field_refusal(msg, checks):
    """(reason, text) for the first field of ``msg`` outside its OUCH 4.2 values, or None."""
    for name, allowed, reason in checks:
        value = getattr(msg, name)
        if value not in allowed:
            return reason, f"{name} {value!r}"
    return None


def inbound_request(account, payload, ts, received=None):
    """The typed request for one inbound OUCH message of ``account`` (raises _BadMessage if
    the message is unknown, truncated or invalid)."""
    try:
        msg = ouch.decode_inbound(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadMessage(str(exc)) from None
    code = msg.type_code
    if code == b"O":
        return enter_request(account, msg, ts, received)
    if code == b"X":
        if not msg.order_token:
            raise _BadMessage("Cancel Order: blank order token")
        return CancelOrder(ts=ts, account=account.username, token=msg.order_token,
                           qty=msg.shares, received=received)
    if code == b"U":
        if not msg.existing_order_token or not msg.replacement_order_token:
            raise _BadMessage("Replace Order: blank order token")
        if msg.price == ouch.MARKET_PRICE:
            return Reject(ts=ts, of="replace", account=account.username,
                          token=msg.replacement_order_token, reason=Reason.MARKET_REPLACE,
                          text="market price on a replace", received=received)
        refusal = _field_refusal(msg, _REPLACE_FIELDS)
        if refusal is not None:
            return Reject(ts=ts, of="replace", account=account.username,
                          token=msg.replacement_order_token, reason=refusal[0],
                          text=refusal[1], received=received)
        return ReplaceOrder(ts=ts, account=account.username, token=msg.existing_order_token,
                            new_token=msg.replacement_order_token, qty=msg.shares,
                            price=msg.price,
                            attrs=replace_attrs(msg.time_in_force, msg.display,
                                                msg.intermarket_sweep_eligibility,
                                                msg.minimum_quantity), received=received)
    return Reject(ts=ts, of=code.decode(), account=account.username, token=msg.order_token,
                  reason=Reason.UNSUPPORTED, text=f"{msg.spec.name} not supported",
                  received=received)


class _Connection:
    """One client connection: login, then packets in, sequenced messages out."""

    def __init__(self, server, reader, writer):
        self.server, self.reader, self.writer = server, reader, writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.host = peer[0]
        self.account = None
        self.received_ns = None         # the clock when the last read returned (ns since midnight)
        self.next_seq = 1
        self.last_sent = self.last_received = time.monotonic()
        self.framer = soupbintcp.Framer(server.max_packet)
        self.closing = False
        self._out = []                  # bytes queued by send(), written by flush()
        self._queued_ns = 0             # when the first of them was queued
        self._queued_messages = 0       # sequenced messages among them
        self._stages = server.sequencer.stages
        self._loop = asyncio.get_running_loop()

    # -- output ----------------------------------------------------------------------------

    def send(self, data):
        """Queue ``data``; everything queued in one event-loop turn goes out in one write."""
        if self._queue(data):
            self._loop.call_soon(self.flush)

    def _queue(self, data):
        """Queue ``data`` for the next :meth:`flush`; True if nothing was queued before."""
        if self.closing:
            return False
        out = self._out
        out.append(data)
        self.last_sent = time.monotonic()
        if len(out) == 1:
            self._queued_ns = time.perf_counter_ns()
            return True
        return False

    def flush(self):
        """Write what :meth:`send` queued (called by the loop; also before a close/drain)."""
        out = self._out
        if not out or self.closing:
            out.clear()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.writer.write(data)
        self._stages.record_many(WRITE, time.perf_counter_ns() - self._queued_ns,
                                 self._queued_messages)
        self._queued_messages = 0
        if self.server.tap is not None:
            self.server.tap(self.peer, False, data)
        transport = self.writer.transport
        if transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            log.warning("%s %s: client too slow (%d bytes queued), disconnecting", self.peer,
                        self.account and self.account.username,
                        transport.get_write_buffer_size())
            self.close()

    def on_messages(self, first, messages):
        if first != self.next_seq:
            log.error("%s: stream gap (next %d, got %d), disconnecting", self.peer,
                      self.next_seq, first)
            self.close()
            return
        self.next_seq += len(messages)
        self._queued_messages += len(messages)
        self._queue(b"".join([_sequenced_header(len(m)) + m for m in messages]))
        # A group commit's batch is this connection's whole output of that commit: it goes
        # now, not a loop turn later behind the other accounts' batches and whatever else
        # that turn runs (measured at 1,000 requests/s: ~90 µs p50 of waiting).
        self.flush()

    def close(self):
        if not self.closing:
            self.flush()
            self.closing = True
            self.writer.close()

    # -- session ---------------------------------------------------------------------------

    async def run(self):
        srv = self.server
        srv.pending[self.host] += 1
        try:
            try:
                logged_in = await self._login()
            finally:
                srv.pending[self.host] -= 1
            if not logged_in:
                return
            heartbeat = asyncio.create_task(self._heartbeats())
            try:
                await self._read_loop()
            finally:
                heartbeat.cancel()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("%s: connection lost (%s)", self.peer, exc)
        finally:
            if self.account is not None and srv.active.get(self.account.username) is self:
                del srv.active[self.account.username]
                srv.streams.subscribe(self.account.username, None)
            self.close()
            srv.connections.discard(self)

    async def _read(self, timeout):
        async with asyncio.timeout(timeout):        # no task per read, unlike wait_for
            data = await self.reader.read(65536)
        if not data:
            raise ConnectionError("closed by peer")
        self.last_received = time.monotonic()
        self.received_ns = self.server.sequencer.clock()
        if self.server.tap is not None:
            self.server.tap(self.peer, True, data)
        return data

    async def _login(self):
        srv = self.server
        packets = []
        try:
            async with asyncio.timeout(srv.client_timeout):     # one deadline for the login
                while not packets:
                    packets = self.framer.feed(await self._read(None))
        except asyncio.TimeoutError:
            log.warning("%s: no login within %.0f s, disconnecting", self.peer,
                        srv.client_timeout)
            return False
        except ValueError as exc:
            log.warning("%s: bad framing before login (%s), disconnecting", self.peer, exc)
            return False
        (ptype, payload), rest = packets[0], packets[1:]
        if ptype != b"L" or len(payload) + 1 != _LOGIN.length:
            log.warning("%s: first packet %r (%d bytes) is not a Login Request, disconnecting",
                        self.peer, ptype, len(payload))
            return False
        try:
            req = soupbintcp.decode_payload(b"L", payload)
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("%s: malformed Login Request (%s), disconnecting", self.peer, exc)
            self.send(soupbintcp.login_rejected("A"))
            return False
        reason = await srv.authenticate(self.host, req.username, req.password)
        if reason is None and req.session not in ("", srv.config.session):
            reason, why = "S", f"unknown session {req.session!r}"
        elif reason is None and req.username in srv.active:
            reason, why = "S", "account already logged in"
        else:
            why = "bad username or password"
        if reason is not None:
            srv.warn_peer("rejected", self.host, "%s: login of %r rejected (%s): %s", self.peer,
                          req.username, reason, why)
            self.send(soupbintcp.login_rejected(reason))
            self.flush()
            await self.writer.drain()
            return False
        self.account = srv.config.accounts[req.username]
        stream = srv.streams.streams[req.username]
        end = len(stream) + 1
        start = end if req.sequence == 0 else min(req.sequence, end)
        self.next_seq = start
        srv.active[req.username] = self
        log.info("%s: %s logged in (firm %s), session %s, next %d of %d", self.peer,
                 req.username, self.account.firm, srv.config.session, start, end)
        self.send(soupbintcp.login_accepted(srv.config.session, start))
        if start < end:
            self.on_messages(start, stream[start - 1:])
        srv.streams.subscribe(req.username, self.on_messages)
        read = time.perf_counter_ns()
        for ptype, payload in rest if not srv.intake_stopped else ():
            self._packet(ptype, payload, read)
        return not self.closing

    async def _read_loop(self):
        srv = self.server
        while not self.closing:
            remaining = srv.client_timeout - (time.monotonic() - self.last_received)
            try:
                data = await self._read(max(0.01, remaining))
            except asyncio.TimeoutError:
                log.warning("%s %s: silent for %.1f s, disconnecting", self.peer,
                            self.account.username, srv.client_timeout)
                return
            if srv.intake_stopped:          # read after the stop: never sequenced
                continue
            read = time.perf_counter_ns()
            try:
                packets = self.framer.feed(data)
            except soupbintcp.FramingError as exc:
                log.warning("%s %s: %s, disconnecting", self.peer, self.account.username, exc)
                for ptype, payload in exc.packets:      # what came before it is answered
                    self._packet(ptype, payload, read)
                await srv.sequencer.drain()
                return
            turn = _TURN_PACKETS
            for ptype, payload in packets:
                self._packet(ptype, payload, read)
                if self.closing:
                    return
                turn -= 1
                # let durable completions and report writes go out (not once the intake
                # stopped: the stop's drain then covers the whole read)
                if not turn and not srv.intake_stopped:
                    await asyncio.sleep(0)
                    turn = _TURN_PACKETS
            if self.writer.transport.get_write_buffer_size() > 1 << 20:
                self.flush()
                await self.writer.drain()

    def _packet(self, ptype, payload, read):
        """Answer one packet whose read returned at ``read`` (perf_counter_ns)."""
        srv = self.server
        name = self.account.username
        if ptype == b"U":
            srv.stats["messages"] += 1
            stages = self._stages
            start = time.perf_counter_ns()
            stages.record(READ, start - read)
            try:
                request = inbound_request(self.account, payload, srv.sequencer.now(),
                                          self.received_ns)
                stages.record(DECODE, time.perf_counter_ns() - start)
            except _BadMessage as exc:
                srv.stats["bad messages"] += 1
                log.warning("%s %s: bad OUCH message (%s): %s", self.peer, name, exc,
                            payload[:64].hex())
                self.send(soupbintcp.debug(f"rejected: {exc}"[:200].encode("ascii", "replace")))
                return
            srv.sequencer.submit_nowait(request)
        elif ptype == b"R":
            pass
        elif ptype == b"O":
            log.info("%s %s: logout", self.peer, name)
            self.close()
        elif ptype == b"+":
            log.info("%s %s: debug %r", self.peer, name, payload[:200])
        else:
            log.warning("%s %s: unexpected packet type %r after login, disconnecting", self.peer,
                        name, ptype)
            srv.stats["protocol errors"] += 1
            self.close()

    async def _heartbeats(self):
        interval = self.server.heartbeat
        while not self.closing:
            idle = time.monotonic() - self.last_sent
            if idle >= interval:
                self.send(soupbintcp.server_heartbeat())
                idle = 0
            await asyncio.sleep(max(0.01, interval - idle))


def _lower_priority():
    """Executor initializer: make this thread (Linux: a task of its own) nicer."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) +
                       LOGIN_CHECK_NICENESS)
    except OSError as exc:
        log.warning("password checks run at the venue's priority: %s", exc)


class GatewayServer:
    """SoupBinTCP/OUCH server in front of a :class:`~tickwire.sequencer.Sequencer`.

    Parameters
    ----------
    sequencer : Sequencer
    config : Config
    host, port : str, int
        Where to listen (port 0: any free port; see :attr:`port` after :meth:`start`).
    heartbeat : float
        Seconds of output silence before a server heartbeat.
    client_timeout : float
        Seconds of client silence before the connection is dropped.
    login_failures, login_window : int, float
        Per-peer login rate limit.
    max_packet : int
        Largest inbound SoupBinTCP Packet Length accepted.
    max_pending_logins : int
        Connections of one peer (IP address) allowed to be waiting to log in at once.
    tap : callable, optional
        ``tap(peer, from_client, data)`` with every byte chunk exchanged (for captures).
    """

    def __init__(self, sequencer: Sequencer, config, host="127.0.0.1", port=0,
                 heartbeat=DEFAULT_HEARTBEAT, client_timeout=DEFAULT_CLIENT_TIMEOUT,
                 login_failures=5, login_window=60.0, max_packet=256, tap=None,
                 max_pending_logins=8):
        self.sequencer, self.config = sequencer, config
        self.streams = OuchStreams(sequencer)
        self.host, self.port = host, port
        self.heartbeat, self.client_timeout = heartbeat, client_timeout
        self.login_failures, self.login_window = login_failures, login_window
        self.max_packet = max_packet
        self.max_pending_logins = max_pending_logins
        self.tap = tap
        self.active = {}
        self.connections = set()
        self.failures = collections.defaultdict(collections.deque)
        self.checking = collections.Counter()       # peer -> password checks running
        self.pending = collections.Counter()        # peer -> connections not yet logged in
        self._decoy = next((a.password for a in config.accounts.values()), None)
        self._checks = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="login-check", initializer=_lower_priority)
        self.stats = collections.Counter()
        self._warned = {}                           # (kind, peer) -> (last logged, unlogged)
        self._server = None
        self._tasks = set()
        self.intake_stopped = False

    async def start(self):
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("gateway listening on %s:%d, session %s", self.host, self.port,
                 self.config.session)
        return self

    async def _handle(self, reader, writer):
        conn = _Connection(self, reader, writer)
        if self.pending[conn.host] >= self.max_pending_logins:
            self.stats["connections refused"] += 1
            self.warn_peer("refused", conn.host,
                           "%s: %d connections already waiting to log in from %s, refused",
                           conn.peer, self.pending[conn.host], conn.host)
            writer.close()
            return
        self.connections.add(conn)
        self.stats["connections"] += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await conn.run()
        except asyncio.CancelledError:
            log.info("%s: connection task cancelled at shutdown", conn.peer)
        finally:
            self._tasks.discard(task)

    async def authenticate(self, host, username, password):
        """None if the login is good, else the Login Rejected reason (``"A"``)."""
        now = time.monotonic()
        failures = self.failures[host]
        while failures and now - failures[0] > self.login_window:
            failures.popleft()
        if len(failures) + self.checking[host] >= self.login_failures:
            self.stats["logins rate-limited"] += 1
            self.warn_peer("rate-limited", host,
                           "%s: login of %r refused: %d failed and %d running logins in %.0f s",
                           host, username, len(failures), self.checking[host],
                           self.login_window)
            return "A"
        account = self.config.accounts.get(username)
        stored = account.password if account is not None else self._decoy
        self.checking[host] += 1
        try:
            ok = stored is not None and await asyncio.get_running_loop().run_in_executor(
                self._checks, verify_password, password, stored)
        finally:
            self.checking[host] -= 1
        ok = ok and account is not None
        if not ok:
            failures.append(now)
            self.stats["logins rejected"] += 1
            return "A"
        self.stats["logins"] += 1
        return None

    def warn_peer(self, kind, host, message, *args):
        """Log a refusal of ``kind`` for peer ``host``, at most once per
        :data:`REFUSAL_LOG_INTERVAL` s per kind and peer (saying how many were not logged)."""
        now = time.monotonic()
        last, unlogged = self._warned.get((kind, host), (None, 0))
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            self._warned[kind, host] = (last, unlogged + 1)
            return
        self._warned[kind, host] = (now, 0)
        if unlogged:
            message += f" ({unlogged} more of these from {host} not logged)"
        log.warning(message, *args)

    def stop_intake(self):
        """Sequence nothing read from now on; a read being answered is answered whole."""
        self.intake_stopped = True
        if self._server is not None:
            self._server.close()

    async def end_session(self):
        """Send End of Session to every client and close the connections."""
        for conn in list(self.connections):
            if conn.account is not None:
                conn.send(soupbintcp.end_of_session())
            conn.close()

    async def close(self, end_session=True):
        """Stop listening; with ``end_session``, send ``Z`` to every client first."""
        if self._server is not None:
            self._server.close()
        if end_session:
            await self.end_session()
        else:
            for conn in list(self.connections):
                conn.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        if self._server is not None:
            await self._server.wait_closed()
        self._checks.shutdown(wait=False, cancel_futures=True)
