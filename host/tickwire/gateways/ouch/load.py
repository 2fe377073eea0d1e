"""An open-loop OUCH load generator, meant to run in its own process.

Orders are scheduled at fixed times (order ``i`` at ``i / rate`` after the phase starts) and
sent when due, whatever the server answered so far (open loop); latency is measured from each
order's *scheduled* send time to its Accepted (or Rejected), so a stalled server is charged
for every order it delayed (coordinated omission corrected). Latencies go into an HDR histogram
(``hdrhistogram``), with the generator's own *send lag* (each order written minus its scheduled
time) beside them: what of the latency is the generator's, not the venue's. One thread writes
the orders, sleeping until the next is due; another reads the answers. Orders come in crossing buy/sell pairs of 100 shares at one price, so the
book stays small. A phase may run beside a *login flood*: another process keeps ``flood``
concurrent connections logging in with a wrong password (each attempt starts again
:data:`FLOOD_PAUSE_S` after the last one ended) for the whole phase.

:func:`load_process` is the child process's entry (``multiprocessing`` spawn): it logs in one
connection per account ``b0``, ``b1``... (password :data:`PASSWORD`), plays each phase and
reports through a queue. Its pieces (:func:`login`, :class:`Pacer`, :func:`sleep_until`,
:func:`read_sequenced`) also drive the firms of ``tickwire run`` in their own process
(:mod:`tickwire.ops.firms`).
"""

import asyncio
import contextlib
import multiprocessing
import selectors
import socket
import threading
import time
from typing import NamedTuple

from hdrh.histogram import HdrHistogram
from tickwire.gateways.ouch.client import LoginRejected, enter_message
from tickwire.gateways.ouch.wire import ANSWER_TOKEN
from tickwire.protocol import soupbintcp
from tickwire.util.loop import precise_sleeps, prompt_handoffs

__all__ = ["PASSWORD", "SYMBOL", "Pacer", "Phase", "enter_packet", "load_process", "login", "offer",
           "read_sequenced", "sleep_until"]

PASSWORD = "bench"
SYMBOL = "BENCH"
_ANSWERED = (b"A", b"J")
_WAIT_S = 30.0
FLOOD_PAUSE_S = 0.1


def enter_packet(token, side):
    """A ``U`` packet with an Enter Order of 100 ``SYMBOL`` at $100.00, DAY."""
    return soupbintcp.unsequenced_data(enter_message(token, side, 100, SYMBOL, 100_0000, 99998))


def login(port, username, password, timeout=_WAIT_S):
    """A blocking socket to the gateway on loopback ``port`` (``TCP_NODELAY``), logged in as
    ``username``: waits for Login Accepted and reads nothing past it. Raises
    :class:`~tickwire.gateways.ouch.client.LoginRejected` or ``ConnectionError``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(soupbintcp.login_request(username, password, "", 0))
    try:
        header = _read_exactly(sock, 2)
        packet = _read_exactly(sock, int.from_bytes(header, "big"))
    except OSError:
        sock.close()
        raise
    if packet[:1] == b"A":
        return sock
    sock.close()
    if packet[:1] == b"J":
        raise LoginRejected(packet[1:].decode())
    raise ConnectionError(f"unexpected login answer {packet[:1]!r}")


def _read_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed during login")
        data += chunk
    return data


class Pacer:
    """Open-loop send times: request ``i`` is due ``i / rate`` s after :meth:`start`."""

    def __init__(self, rate):
        self.step = 10**9 / rate
        self.t0 = None

    def start(self):
        """Start the schedule now; return its origin (``perf_counter_ns``)."""
        self.t0 = time.perf_counter_ns()
        return self.t0

    def due(self, i):
        """When request ``i`` is due (``perf_counter_ns``)."""
        return self.t0 + int(i * self.step)

    def due_by(self, now, total):
        """How many of ``total`` requests are due by ``now``."""
        return min(total, int((now - self.t0) / self.step) + 1)

    def hold(self, ns):
        """Move every request not yet sent ``ns`` later (a pause the schedule does not
        charge)."""
        self.t0 += ns


def sleep_until(when):
    """Sleep until ``perf_counter_ns()`` reaches ``when``: ``time.sleep``, tens of µs late,
    where an asyncio timer is rounded up to the millisecond."""
    wait = when - time.perf_counter_ns()
    if wait > 0:
        time.sleep(wait / 1e9)


def read_sequenced(socks, on_message, stop):
    """A reader thread's loop: each sequenced message (the payload of a SoupBinTCP ``S``
    packet) from ``socks`` goes to ``on_message(index, payload, now)``, ``index`` its socket's
    place in ``socks`` and ``now`` when its read returned (``perf_counter_ns``), until ``stop``
    (an Event) is set or every socket is closed."""
    selector = selectors.DefaultSelector()
    for index, sock in enumerate(socks):
        selector.register(sock, selectors.EVENT_READ, (index, soupbintcp.Framer()))
    try:
        while not stop.is_set() and selector.get_map():
            for key, _ in selector.select(0.05):
                index, framer = key.data
                try:
                    data = key.fileobj.recv(1 << 16)
                except OSError:
                    data = b""
                now = time.perf_counter_ns()
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                for ptype, payload in framer.feed(data):
                    if ptype == b"S":
                        on_message(index, payload, now)
    finally:
        selector.close()


class Phase(NamedTuple):
    """One phase: ``rate`` orders/s offered for ``seconds`` (``rate`` None: half the first
    phase's answered rate), beside ``flood`` concurrent bad logins."""
    name: str
    rate: float | None
    seconds: float
    flood: int = 0


async def _flood(port, concurrent, stop):
    """``concurrent`` wrong-password logins at a time until ``stop`` (an Event) is set."""
    async def bad_logins():
        attempts = 0
        while not attempts or not stop.is_set():       # each at least once
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(soupbintcp.login_request("b0", "wrong", "", 0))
                async with asyncio.timeout(5):
                    await reader.read(64)
                writer.close()
            attempts += 1
            await asyncio.sleep(FLOOD_PAUSE_S)
        return attempts

    return sum(await asyncio.gather(*(bad_logins() for _ in range(concurrent))))


def _flood_process(port, concurrent, stop, queue):
    queue.put("ready")
    queue.put(asyncio.run(_flood(port, concurrent, stop)))


class _Answers:
    """What the reader thread saw: send → ack latencies into ``hist``, keyed by order token."""

    def __init__(self, total, scheduled):
        self.total, self.scheduled = total, scheduled
        self.hist = HdrHistogram(1, 600 * 10**9, 3)
        self.answered = 0
        self.last = 0                   # when the last answer came (perf_counter_ns)
        self.done = threading.Event()
        self.stop = threading.Event()

    def on_message(self, index, payload, now):
        if payload[:1] in _ANSWERED:
            t0 = self.scheduled.pop(payload[ANSWER_TOKEN], None)
            if t0 is not None:
                self.hist.record_value(max(1, now - t0))
                self.answered += 1
                self.last = now
                if self.answered == self.total:
                    self.done.set()


def offer(port, connections, rate, seconds, phase, flood=0):
    """Offer ``rate`` orders/s for ``seconds`` over ``connections`` logged-in accounts; return
    the phase's figures (offered, answered, answered/s, p50/p99/p99.9/max µs, and the
    generator's own send lag: how late after its scheduled time each order was written).

    The orders are written by this thread, sleeping (``time.sleep``: tens of µs late, where an
    asyncio timer is rounded up to the millisecond) until the next one is due; the answers are
    read by another thread.
    """
    lag = HdrHistogram(1, 600 * 10**9, 3)      # written - scheduled
    scheduled = {}
    total = int(rate * seconds)
    answers = _Answers(total, scheduled)
    socks = [login(port, f"b{c}", PASSWORD) for c in range(connections)]
    reader = threading.Thread(target=read_sequenced, args=(socks, answers.on_message,
                                                           answers.stop),
                              name="answers", daemon=True)
    reader.start()
    flooding = _start_flood(port, flood) if flood else None
    time.sleep(0.2)
    pacer = Pacer(rate)
    t0 = pacer.start()
    sent = 0
    while sent < total:
        due = pacer.due_by(time.perf_counter_ns(), total)
        if due > sent:
            first = sent
            batches = [[] for _ in socks]
            while sent < due:
                token = f"{phase}{sent:013d}".encode()[:14]
                scheduled[token] = pacer.due(sent)
                batches[sent % len(socks)].append(enter_packet(token.decode(), "BS"[sent & 1]))
                sent += 1
            for sock, batch in zip(socks, batches):
                if batch:
                    sock.sendall(b"".join(batch))
            now = time.perf_counter_ns()
            for i in range(first, due):
                lag.record_value(max(1, now - pacer.due(i)))
        sleep_until(pacer.due(sent))
    send_end = time.perf_counter_ns()
    answers.done.wait(_WAIT_S)
    end = answers.last if answers.answered else time.perf_counter_ns()
    attempts = 0
    if flooding is not None:
        process, stop, queue = flooding
        stop.set()
        attempts = queue.get(True, 60)
        process.join(10)
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.sendall(soupbintcp.logout_request())
    answers.stop.set()
    reader.join(5)
    for sock in socks:
        sock.close()
    hist, answered = answers.hist, answers.answered
    elapsed = (end - t0) / 1e9
    return {
        "offered_per_s": rate, "orders": total, "answered": answered,
        "send_s": round((send_end - t0) / 1e9, 3), "elapsed_s": round(elapsed, 3),
        "answered_per_s": round(answered / elapsed, 1),
        "p50_us": hist.get_value_at_percentile(50) / 1000,
        "p99_us": hist.get_value_at_percentile(99) / 1000,
        "p99.9_us": hist.get_value_at_percentile(99.9) / 1000,
        "max_us": hist.get_max_value() / 1000,
        "send_lag_p50_us": lag.get_value_at_percentile(50) / 1000,
        "send_lag_p99_us": lag.get_value_at_percentile(99) / 1000,
        **({"flood": flood, "flood_logins": attempts} if flood else {}),
    }


def _start_flood(port, concurrent):
    spawn = multiprocessing.get_context("spawn")
    stop, queue = spawn.Event(), spawn.Queue()
    process = spawn.Process(target=_flood_process, args=(port, concurrent, stop, queue))
    process.start()
    if queue.get(True, 60) != "ready":
        raise RuntimeError("the login flood process did not start")
    return process, stop, queue


def load_process(port, connections, phases, queue, started):
    """Child-process entry: play ``phases`` (:class:`Phase` s) against ``port``; put
    ``("start", name)`` on ``queue`` before each phase and wait for the venue's ``name`` on
    ``started`` (its stage clocks reset: a loaded venue took the message only after the first
    orders), then ``("done", name, figures)`` after it."""
    prompt_handoffs()       # the sender, due to write, must get the GIL from the reader
    precise_sleeps()        # before the reader thread starts (it inherits it): sent on time
    results = []
    for index, (name, rate, seconds, flood) in enumerate(phases):
        if rate is None:        # half the sustained throughput measured by the first phase
            rate = max(100, round(results[0]["answered_per_s"] / 2))
        queue.put(("start", name))
        if started.get(True, 600) != name:
            raise RuntimeError(f"the venue did not start phase {name!r}")
        prefix = chr(ord("a") + index)         # order tokens unique across the phases
        results.append(offer(port, connections, rate, seconds, prefix, flood))
        queue.put(("done", name, results[-1]))
