"""The firms of ``tickwire run`` in a process of their own, apart from the venue.

The parent (the venue's process) turns the day into a *script* of steps and starts
:func:`firms_process` with the ``spawn`` context, so the firms share no interpreter, event loop
or GIL with the venue; they reach its gateway over loopback TCP, one logged-in connection per
firm. A :class:`Send` is one firm's request; an :class:`Operate` is an operator action
(halt/resume), which only the venue's process can take: the firms wait until every request
sent before it is answered (so it is sequenced after them and before the rest), ask the
parent over the pipe, and go on once the parent says it is sequenced.

Open loop (``rate`` > 0), request ``k`` is due ``k / rate`` after the start (a
:class:`~tickwire.gateways.ouch.load.Pacer`; an operator pause moves the rest of the schedule,
uncharged) and the sending thread sleeps until then; its latency counts from that *intended*
time to its first answer (Accepted, Replaced, Canceled, Rejected, Cancel Reject), read by a
second thread (coordinated omission corrected). Closed loop (``rate`` 0), each firm keeps at
most ``window`` requests unanswered and latency counts from the actual send. The latencies and
the sender's lateness go into HDR histograms, sent back encoded with the counts.

:func:`play_day` is the parent's side: it starts the process, answers its operator requests,
passes on its progress, and turns a process that dies, errs or goes silent into a
:class:`FirmsError`; whatever happens (an error, Ctrl-C), the process is gone when it returns.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import NamedTuple

from hdrh.histogram import HdrHistogram
from tickwire.gateways.ouch.load import Pacer, login, read_sequenced, sleep_until
from tickwire.gateways.ouch.wire import ANSWER_TOKEN
from tickwire.protocol import soupbintcp
from tickwire.util.loop import precise_sleeps, prompt_handoffs

__all__ = ["FirmsError", "Operate", "Send", "describe_exit", "firms_process", "play_day"]

log = logging.getLogger(__name__)

_ANSWERS = frozenset(b"AUCJI")
_WAIT_NS = 30 * 10**9           # no answer for this long while waiting: the venue is stuck
_HEARTBEAT_NS = 10**9           # SoupBinTCP client heartbeat after this much silence
_REPORT_NS = 10**9              # tell the parent how far the day is at least this often
_TICK_NS = 200_000_000          # look after the connections this often
_PROGRESS_EVERY = 256           # requests
SILENCE_S = 120.0               # the parent gives up on a process that says nothing this long


class Send(NamedTuple):
    """One request: ``packet`` (a SoupBinTCP ``U`` packet) on firm ``firm``'s connection,
    answered under ``token`` (the 14-byte OUCH field; a replace's replacement token), or for a
    replace under ``alias`` (the existing token) by a Cancel Reject."""
    firm: int
    token: bytes
    packet: bytes
    alias: bytes | None = None


class Operate(NamedTuple):
    """An operator action the venue's process takes: ``halt`` or ``resume`` ``symbol``."""
    action: str
    symbol: str


class FirmsError(RuntimeError):
    """The firms' process failed, died or went silent."""


class _Stuck(FirmsError):
    """No answer for :data:`_WAIT_NS` while waiting for one."""


def _histogram():
    return HdrHistogram(1, 600 * 10**9, 3)


class _Firm:
    """One firm's connection and its requests in flight, shared by the sending and the
    reading thread under ``cond``."""

    def __init__(self, sock, window):
        self.sock = sock
        self.window = window
        self.cond = threading.Condition()
        self.sent = {}          # token -> start of its latency (perf_counter_ns)
        # A replace is answered under its replacement token, or by a Cancel Reject under the
        # existing one; the same order may have several replaces in flight.
        self.aliases = {}       # existing token -> replacement tokens unanswered, oldest first
        self.replacing = {}     # replacement token -> existing token
        self.latency = _histogram()
        self.answers = 0
        self.last_answer = 0
        self.last_write = time.perf_counter_ns()

    def on_message(self, payload, now):
        """The reading thread: time the first answer to each request."""
        if payload[0] not in _ANSWERS:
            return
        token = payload[ANSWER_TOKEN]
        with self.cond:
            if payload[:1] == b"I" and token not in self.sent and token in self.aliases:
                token = self.aliases[token][0]
            existing = self.replacing.pop(token, None)
            if existing is not None:
                pending = self.aliases[existing]
                pending.remove(token)
                if not pending:
                    del self.aliases[existing]
            start = self.sent.pop(token, None)
            if start is not None:
                self.latency.record_value(max(1, now - start))
                self.answers += 1
                self.last_answer = now
                self.cond.notify_all()

    def send(self, step, start):
        with self.cond:
            self.sent[step.token] = start
            if step.alias is not None:
                self.aliases.setdefault(step.alias, []).append(step.token)
                self.replacing[step.token] = step.alias
        self.write(step.packet)

    def write(self, data):
        self.sock.sendall(data)
        self.last_write = time.perf_counter_ns()

    def wait(self, most, deadline, keepalive):
        """Wait until at most ``most`` requests are in flight; :class:`_Stuck` at
        ``deadline``."""
        with self.cond:
            while len(self.sent) > most:
                if time.perf_counter_ns() > deadline:
                    raise _Stuck(f"{len(self.sent)} requests still unanswered after "
                                 f"{_WAIT_NS / 1e9:.0f} s")
                self.cond.wait(0.2)
                keepalive()


class _Day:
    """The firms' side of the day: the connections, the reading thread, the pipe."""

    def __init__(self, port, logins, window, conn):
        self.conn = conn
        self.firms = [_Firm(login(port, user, password), window) for user, password in logins]
        self.stop = threading.Event()
        self.reader_error = None
        self.reader = threading.Thread(target=self._read, name="answers", daemon=True)
        self.sent = 0
        self.last_report = self.next_tick = time.perf_counter_ns()

    def _read(self):
        firms = self.firms
        try:
            read_sequenced([f.sock for f in firms],
                           lambda index, payload, now: firms[index].on_message(payload, now),
                           self.stop)
        except Exception as exc:        # the sender reports it; a thread cannot raise to it
            self.reader_error = exc

    def keepalive(self):
        """Every :data:`_TICK_NS`: heartbeat idle connections, tell the parent how far the day
        is, notice a dead reader."""
        now = time.perf_counter_ns()
        if now < self.next_tick:
            return
        self.next_tick = now + _TICK_NS
        if self.reader_error is not None:
            raise FirmsError(f"reading the answers failed: {self.reader_error!r}")
        for firm in self.firms:
            if now - firm.last_write >= _HEARTBEAT_NS:
                firm.write(soupbintcp.client_heartbeat())
        if now - self.last_report >= _REPORT_NS:
            self._report()

    def _report(self):
        self.conn.send(("progress", self.sent))
        self.last_report = time.perf_counter_ns()

    def sleep_until(self, when):
        while when - time.perf_counter_ns() > _TICK_NS:
            sleep_until(time.perf_counter_ns() + _TICK_NS)
            self.keepalive()
        sleep_until(when)

    def wait(self, most):
        """Wait until every firm has at most ``most`` requests in flight."""
        deadline = time.perf_counter_ns() + _WAIT_NS
        for firm in self.firms:
            firm.wait(most, deadline, self.keepalive)

    def operate(self, step):
        """Everything sent so far answered, the parent takes the operator action."""
        self.wait(0)
        self.conn.send(("operate", step.action, step.symbol))
        if not self.conn.poll(_WAIT_NS / 1e9):
            raise FirmsError(f"the venue did not confirm the {step.action} of {step.symbol}")
        self.conn.recv()

    def play(self, script, rate):
        """Send the script; return the result the parent gets."""
        self.reader.start()
        lag = _histogram()
        pacer = Pacer(rate) if rate else None
        t0 = pacer.start() if pacer else time.perf_counter_ns()
        firms = self.firms
        for step in script:
            if type(step) is Operate:
                paused = time.perf_counter_ns()
                self.operate(step)
                if pacer:
                    pacer.hold(time.perf_counter_ns() - paused)
                continue
            firm = firms[step.firm]
            if pacer:
                start = pacer.due(self.sent)
                self.sleep_until(start)
                lag.record_value(max(1, time.perf_counter_ns() - start))
            else:
                firm.wait(firm.window - 1, time.perf_counter_ns() + _WAIT_NS, self.keepalive)
                start = time.perf_counter_ns()
            firm.send(step, start)
            self.sent += 1
            if self.sent % _PROGRESS_EVERY == 0:
                self._report()
            self.keepalive()
        self._report()
        try:
            self.wait(0)
        except _Stuck:
            pass                # reported as unanswered
        end = max((f.last_answer for f in firms), default=0) or time.perf_counter_ns()
        latency = _histogram()
        for firm in firms:
            latency.add(firm.latency)
        return {"pid": os.getpid(), "requests": self.sent,
                "answers": sum(f.answers for f in firms),
                "unanswered": sum(len(f.sent) for f in firms),
                "elapsed_s": (end - t0) / 1e9, "latency": latency.encode(),
                "send_lag": lag.encode() if pacer else None}

    def close(self):
        for firm in self.firms:
            try:
                firm.write(soupbintcp.logout_request())
            except OSError:
                pass
        self.stop.set()
        if self.reader.is_alive():
            self.reader.join(5)
        for firm in self.firms:
            firm.sock.close()


def firms_process(port, logins, rate, window, conn):
    """The firms' process entry (``multiprocessing`` spawn): take the script (:class:`Send`
    and :class:`Operate` steps) from ``conn``, log in ``logins`` (username, password) on
    ``port``, play the script and put ``("ready", pid)``, ``("progress", sent)``,
    ``("operate", action, symbol)`` (then wait for the parent's answer) and finally
    ``("done", result)`` or ``("error", message)`` on ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the parent stops us on Ctrl-C
    prompt_handoffs()           # the sender, due to write, must get the GIL from the reader
    precise_sleeps()            # before the reader thread starts (it inherits it): sent on time
    day = None
    try:
        script = conn.recv()
        day = _Day(port, logins, window, conn)
        conn.send(("ready", os.getpid()))
        result = day.play(script, rate)
        day.close()
        day = None
        conn.send(("done", result))
    except Exception as exc:
        with contextlib.suppress(OSError):         # unless the venue's process is gone
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from exc
    finally:
        if day is not None:
            day.close()
        conn.close()


async def play_day(port, logins, script, rate, window, on_progress, operate):
    """Play ``script`` from a process of its own against the gateway on ``port``; return the
    firms' result: ``pid``, ``requests``, ``answers``, ``unanswered``, ``elapsed_s`` and the
    ``latency`` and ``send_lag`` (open loop) HDR histograms, decoded.

    ``on_progress(requests_sent)`` is called as the day goes, ``operate(action, symbol)`` when
    an operator action is due (it must sequence it before returning). Raises
    :class:`FirmsError` if the process fails, dies or says nothing for :data:`SILENCE_S`.
    """
    spawn = multiprocessing.get_context("spawn")
    conn, child_conn = spawn.Pipe()
    process = spawn.Process(target=firms_process, name="tickwire-firms", daemon=True,
                            args=(port, logins, rate, window, child_conn))
    process.start()
    child_conn.close()          # the parent's copy: the process's end reads EOF when it dies
    loop = asyncio.get_running_loop()
    done = False
    try:
        # Through the pipe, not the process's arguments: spawn writes those before it closes
        # its copy of the child's end, so a child dying as it starts would block it for good.
        try:
            await loop.run_in_executor(None, conn.send, script)
        except OSError:
            await loop.run_in_executor(None, process.join, 5)
            raise FirmsError(f"the firms' process (pid {process.pid}) "
                             f"{describe_exit(process.exitcode)} before it took the day's script") \
                from None
        result = await _follow(conn, process, len(logins), on_progress, operate)
        done = True
        return result
    finally:
        conn.close()
        if done:                                # it has logged out and ends by itself
            await loop.run_in_executor(None, process.join, 5)
        if process.is_alive():
            process.kill()
            process.join(5)


async def _follow(conn, process, firms, on_progress, operate):
    """Answer the process's messages until its result; FirmsError if it fails."""
    loop = asyncio.get_running_loop()
    inbox = asyncio.Queue()

    def readable():
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(None)

    loop.add_reader(conn.fileno(), readable)
    try:
        while True:
            try:
                message = await asyncio.wait_for(inbox.get(), SILENCE_S)
            except TimeoutError:
                raise FirmsError(f"the firms' process (pid {process.pid}) said nothing for "
                                 f"{SILENCE_S:.0f} s") from None
            if message is None:
                await loop.run_in_executor(None, process.join, 5)
                raise FirmsError(f"the firms' process (pid {process.pid}) "
                                 f"{describe_exit(process.exitcode)} before the day ended")
            kind = message[0]
            if kind == "ready":
                log.info("the firms: %d connections logged in from their own process (pid %d)",
                         firms, message[1])
            elif kind == "progress":
                on_progress(message[1])
            elif kind == "operate":
                operate(*message[1:])
                conn.send(("operated",))
            elif kind == "error":
                raise FirmsError(f"the firms' process (pid {process.pid}) failed: {message[1]}")
            elif kind == "done":
                result = message[1]
                result["latency"] = HdrHistogram.decode(result["latency"])
                if result["send_lag"] is not None:
                    result["send_lag"] = HdrHistogram.decode(result["send_lag"])
                return result
    finally:
        loop.remove_reader(conn.fileno())


def describe_exit(code):
    """How a process ended, from its ``exitcode``: "was killed by SIGKILL", "ended with exit
    code 1"."""
    if code is None:
        return "did not end"
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"ended with exit code {code}"
