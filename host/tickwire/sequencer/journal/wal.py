"""Write-ahead log of the sequenced requests: what the exchange must never forget.

File format
-----------
An 8-byte magic ``b"TWWAL001"``, then records back to back::

    U32 length      payload bytes (big-endian)
    U32 crc         CRC-32 of the 4 length bytes followed by the payload
    payload         length bytes

A payload (:class:`LogRecord`, written by :mod:`tickwire.sequencer`) is::

    U8   flags      bit 0: a Command follows; bit 1: the context is binary (else JSON)
    53   command    ``Command.to_bytes()`` (engine link), if flag bit 0
    ...  context    the request that produced the command (operation, account, firm, token,
                    symbol, side, shares, price, OUCH fields, time) or the decision that
                    produced no command (a risk reject, a host reject): a UTF-8 JSON object,
                    or (flag bit 1) one of the binary contexts below

Binary contexts are a compact form of the three order-entry requests (what the gateway
sends by the thousand); they decode to the very dict the JSON form would (same keys, same
values). A context is written in binary only if it has exactly the keys below with values of
exactly these types (``int``, ASCII ``str``) and ranges; any other context is JSON. Integers
are big-endian; ``str`` is a U8 length then that many ASCII bytes; ``C`` one ASCII byte::

    U8 kind = 1  new      U64 ts, U32 qty, U64 price + 1 (0: None, market), U8 tif,
                          U32 min_qty, C side, ouch {C side, U32 tif, C display,
                          C capacity, C ise, U32 min_qty, C cross}, str acct, str token,
                          str symbol
    U8 kind = 2  cancel   U64 ts, U32 qty, U8 by (0: none, 1: "kill"), str acct, str token
    U8 kind = 3  replace  U64 ts, U32 qty, U32 price, ouch {U32 tif, C display, C ise,
                          U32 min_qty}, str acct, str token, str new_token

(Files written before binary contexts existed have bit 1 clear everywhere, and read as before.)

On open, the records are scanned from the start; the first one that is incomplete, longer
than :data:`MAX_RECORD` or fails its CRC ends the log: the file is truncated there and what was
cut is logged (a torn tail, left by a crash in the middle of a write).

Durability
----------
:meth:`WriteAheadLog.append` writes the record to the file at once (``os.write``; so it is
in the log before the caller goes on to the engine) and returns its index. It is *durable* once
fsynced, by policy:

``record``  fsync inside every append
``group``   (default) a writer task fsyncs once per batch: everything appended while the
            previous fsync ran is covered by the next one (group commit)
``none``    never fsync (the OS flushes when it likes); durable as soon as written

``await wal.durable(index)`` returns when the record is durable; durability listeners are
called in log order with the highest durable index.
"""

import asyncio
import heapq
import itertools
import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field

from tickwire.protocol.link import COMMAND_BYTES, Command

__all__ = ["WriteAheadLog", "LogRecord", "WalError", "MAGIC", "MAX_RECORD", "FSYNC_POLICIES",
           "encode_record", "decode_record"]

log = logging.getLogger(__name__)

MAGIC = b"TWWAL001"
MAX_RECORD = 1 << 20
FSYNC_POLICIES = ("record", "group", "none")
_HEADER = struct.Struct(">II")
_LENGTH = struct.Struct(">I")


class WalError(RuntimeError):
    """The log cannot be written (an fsync or write failed, or it is closed)."""


@dataclass
class LogRecord:
    """One WAL payload: the engine command (if any) and the request context."""
    command: Command | None = None
    context: dict = field(default_factory=dict)


_NEW = struct.Struct(">BQIQBIcc" + "IcccIc")
_CANCEL = struct.Struct(">BQIB")
_REPLACE = struct.Struct(">BQII" + "IccI")
_NEW_KEYS = frozenset(("op", "ts", "acct", "token", "symbol", "side", "qty", "price", "tif",
                       "min_qty", "ouch"))
_NEW_OUCH = frozenset(("side", "tif", "display", "capacity", "ise", "min_qty", "cross"))
_CANCEL_KEYS = frozenset(("op", "ts", "acct", "token", "qty"))
_CANCEL_BY_KEYS = _CANCEL_KEYS | {"by"}
_REPLACE_KEYS = frozenset(("op", "ts", "acct", "token", "new_token", "qty", "price", "ouch"))
_REPLACE_OUCH = frozenset(("tif", "display", "ise", "min_qty"))
_INT = int


def _binary_context(ctx):
    """The binary form of a context (module docstring), or None if it has none.

    Types are checked here (``int`` exactly, ``str``: the concatenations fail on anything
    else), ranges and one-character fields by ``struct`` (``c`` takes exactly one byte).
    """
    op = ctx.get("op")
    try:
        if op == "new":
            if ctx.keys() != _NEW_KEYS:
                return None
            o = ctx["ouch"]
            if o.keys() != _NEW_OUCH:
                return None
            ts, qty, price, tif, min_qty = (ctx["ts"], ctx["qty"], ctx["price"], ctx["tif"],
                                            ctx["min_qty"])
            o_tif, o_min_qty = o["tif"], o["min_qty"]
            acct, token, symbol = ctx["acct"], ctx["token"], ctx["symbol"]
            side, o_side, display, capacity, ise, cross = (ctx["side"], o["side"], o["display"],
                                                           o["capacity"], o["ise"], o["cross"])
            if (ts.__class__ is not _INT or qty.__class__ is not _INT
                    or tif.__class__ is not _INT or min_qty.__class__ is not _INT
                    or o_tif.__class__ is not _INT or o_min_qty.__class__ is not _INT
                    or not (price is None or price.__class__ is _INT)
                    or not (acct + token + symbol + side + o_side + display + capacity + ise
                            + cross).isascii()):
                return None
            return b"".join((
                _NEW.pack(1, ts, qty, 0 if price is None else price + 1, tif, min_qty,
                          side.encode(), o_side.encode(), o_tif, display.encode(),
                          capacity.encode(), ise.encode(), o_min_qty, cross.encode()),
                bytes((len(acct),)), acct.encode(), bytes((len(token),)), token.encode(),
                bytes((len(symbol),)), symbol.encode()))
        if op == "cancel":
            keys = ctx.keys()
            if keys == _CANCEL_KEYS:
                by = 0
            elif keys == _CANCEL_BY_KEYS and ctx["by"] == "kill":
                by = 1
            else:
                return None
            ts, qty, acct, token = ctx["ts"], ctx["qty"], ctx["acct"], ctx["token"]
            if (ts.__class__ is not _INT or qty.__class__ is not _INT
                    or not (acct + token).isascii()):
                return None
            return b"".join((_CANCEL.pack(2, ts, qty, by), bytes((len(acct),)), acct.encode(),
                             bytes((len(token),)), token.encode()))
        if op == "replace":
            if ctx.keys() != _REPLACE_KEYS:
                return None
            o = ctx["ouch"]
            if o.keys() != _REPLACE_OUCH:
                return None
            ts, qty, price, o_tif, o_min_qty = (ctx["ts"], ctx["qty"], ctx["price"], o["tif"],
                                                o["min_qty"])
            acct, token, new_token = ctx["acct"], ctx["token"], ctx["new_token"]
            display, ise = o["display"], o["ise"]
            if (ts.__class__ is not _INT or qty.__class__ is not _INT
                    or price.__class__ is not _INT or o_tif.__class__ is not _INT
                    or o_min_qty.__class__ is not _INT
                    or not (acct + token + new_token + display + ise).isascii()):
                return None
            return b"".join((
                _REPLACE.pack(3, ts, qty, price, o_tif, display.encode(), ise.encode(),
                              o_min_qty),
                bytes((len(acct),)), acct.encode(), bytes((len(token),)), token.encode(),
                bytes((len(new_token),)), new_token.encode()))
    except (KeyError, AttributeError, TypeError, ValueError, struct.error):
        return None
    return None


def _texts(buf, offset, count):
    out = []
    for _ in range(count):
        n = buf[offset]
        end = offset + 1 + n
        if end > len(buf):
            raise ValueError("WAL payload: binary context cut short")
        out.append(buf[offset + 1:end].decode("ascii"))
        offset = end
    if offset != len(buf):
        raise ValueError("WAL payload: trailing bytes after a binary context")
    return out


def _decode_binary(buf):
    kind = buf[0] if buf else None
    try:
        if kind == 1:
            (_, ts, qty, price, tif, min_qty, side, o_side, o_tif, display, capacity, ise,
             o_min_qty, cross) = _NEW.unpack_from(buf)
            acct, token, symbol = _texts(buf, _NEW.size, 3)
            return {"acct": acct, "min_qty": min_qty, "op": "new",
                    "ouch": {"capacity": capacity.decode("ascii"),
                             "cross": cross.decode("ascii"),
                             "display": display.decode("ascii"), "ise": ise.decode("ascii"),
                             "min_qty": o_min_qty, "side": o_side.decode("ascii"),
                             "tif": o_tif},
                    "price": None if price == 0 else price - 1, "qty": qty,
                    "side": side.decode("ascii"), "symbol": symbol, "tif": tif, "token": token,
                    "ts": ts}
        if kind == 2:
            _, ts, qty, by = _CANCEL.unpack_from(buf)
            if by > 1:
                raise ValueError("WAL payload: bad cancel origin")
            acct, token = _texts(buf, _CANCEL.size, 2)
            ctx = {"acct": acct, "op": "cancel", "qty": qty, "token": token, "ts": ts}
            if by:
                ctx = {"acct": acct, "by": "kill", "op": "cancel", "qty": qty, "token": token,
                       "ts": ts}
            return ctx
        if kind == 3:
            _, ts, qty, price, o_tif, display, ise, o_min_qty = _REPLACE.unpack_from(buf)
            acct, token, new_token = _texts(buf, _REPLACE.size, 3)
            return {"acct": acct, "new_token": new_token, "op": "replace",
                    "ouch": {"display": display.decode("ascii"), "ise": ise.decode("ascii"),
                             "min_qty": o_min_qty, "tif": o_tif},
                    "price": price, "qty": qty, "token": token, "ts": ts}
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"WAL payload: bad binary context ({exc})") from None
    raise ValueError(f"WAL payload: unknown binary context kind {kind!r}")


def encode_record(record):
    """:class:`LogRecord` → payload bytes (format in the module docstring)."""
    ctx = _binary_context(record.context)
    flags = 2
    if ctx is None:
        ctx = json.dumps(record.context, separators=(",", ":"), sort_keys=True).encode()
        flags = 0
    if record.command is None:
        return bytes((flags,)) + ctx
    return bytes((flags | 1,)) + record.command.to_bytes() + ctx


def decode_record(payload):
    """Payload bytes → :class:`LogRecord`; raises ValueError on a malformed payload."""
    if not payload or payload[0] > 3:
        raise ValueError("WAL payload: bad flags byte")
    flags = payload[0]
    command, start = None, 1
    if flags & 1:
        if len(payload) < 1 + COMMAND_BYTES:
            raise ValueError("WAL payload: command cut short")
        command = Command.from_bytes(bytes(payload[1:1 + COMMAND_BYTES]))
        start += COMMAND_BYTES
    body = bytes(payload[start:])
    if flags & 2:
        return LogRecord(command, _decode_binary(body))
    return LogRecord(command, json.loads(body.decode()))


def _scan(f):
    """(payloads, end offset of the last good record, why the scan stopped or None)."""
    payloads, offset = [], len(MAGIC)
    f.seek(offset)
    while True:
        header = f.read(_HEADER.size)
        if not header:
            return payloads, offset, None
        if len(header) < _HEADER.size:
            return payloads, offset, "incomplete record header"
        length, crc = _HEADER.unpack(header)
        if length > MAX_RECORD:
            return payloads, offset, f"record length {length} above {MAX_RECORD}"
        payload = f.read(length)
        if len(payload) < length:
            return payloads, offset, f"record of {length} bytes cut at {len(payload)}"
        if zlib.crc32(header[:4] + payload) != crc:
            return payloads, offset, "CRC mismatch"
        payloads.append(payload)
        offset += _HEADER.size + length


class WriteAheadLog:
    """An append-only, CRC-checked record log with a choice of fsync policy.

    Parameters
    ----------
    path : str
        The log file; created if missing, its torn tail (if any) truncated.
    fsync : str
        ``"record"``, ``"group"`` (default) or ``"none"``.

    Members
    -------
    records : int
        Records in the log (the next append gets this index).
    durable_index : int
        Records ``< durable_index`` are durable.
    truncated : int
        Bytes cut from a torn tail when the log was opened.
    fsyncs : int
        fsync calls made (group commit: batches).
    """

    def __init__(self, path, fsync="group"):
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy {fsync!r} is not one of {', '.join(FSYNC_POLICIES)}")
        self.path, self.policy = path, fsync
        self.truncated = 0
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        with open(path, "rb") as f:
            head = f.read(len(MAGIC))
            if head and head != MAGIC[:len(head)]:
                os.close(self._fd)
                raise WalError(f"{path}: not a tickwire WAL (magic {head!r})")
            if len(head) < len(MAGIC):
                if head:
                    log.warning("%s: torn file header (%d bytes) rewritten", path, len(head))
                os.ftruncate(self._fd, 0)
                os.write(self._fd, MAGIC)
                os.fsync(self._fd)
                payloads, end, why = [], len(MAGIC), None
            else:
                payloads, end, why = _scan(f)
            size = os.fstat(self._fd).st_size
        if why is not None:
            self.truncated = size - end
            log.warning("%s: torn tail after record %d at offset %d (%s): cut %d bytes",
                        path, len(payloads), end, why, self.truncated)
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        self.records = self.durable_index = len(payloads)
        self.fsyncs = 0
        self.bytes = end
        self._waiters = []                       # heap of (index, n, future)
        self._count = itertools.count()
        self._listeners = []
        self._wake = None
        self._writer = None
        self._error = None
        self._closed = False

    # -- writing ---------------------------------------------------------------------------

    def append(self, payload):
        """Write one record (bytes or :class:`LogRecord`) now; return its index.

        Raises
        ------
        WalError
            If the log is closed or a previous fsync failed.
        """
        if self._closed or self._error is not None:
            raise WalError(f"{self.path}: log unusable ({self._error or 'closed'})")
        if isinstance(payload, LogRecord):
            payload = encode_record(payload)
        size = len(payload)
        if size > MAX_RECORD:
            raise ValueError(f"WAL record of {size} bytes above {MAX_RECORD}")
        length = _LENGTH.pack(size)
        data = b"".join((length, _LENGTH.pack(zlib.crc32(payload, zlib.crc32(length))),
                         payload))
        written = os.write(self._fd, data)
        if written != len(data):
            self._error = WalError(f"{self.path}: short write ({written} of {len(data)} bytes)")
            raise self._error
        self.bytes += written
        index = self.records
        self.records += 1
        if self.policy == "record":
            os.fsync(self._fd)
            self.fsyncs += 1
            self._set_durable(self.records)
        elif self.policy == "none":
            self._set_durable(self.records)
        else:
            self._kick()
        return index

    async def durable(self, index):
        """Return once record ``index`` is durable (raises WalError if it cannot be)."""
        if index < self.durable_index:
            return
        if self._error is not None:
            raise self._error
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (index, next(self._count), future))
        self._kick()
        await future

    def add_durable_listener(self, callback):
        """Call ``callback(durable_index)`` (in log order) whenever records become durable."""
        self._listeners.append(callback)

    def sync(self):
        """fsync now, from synchronous code; everything appended so far becomes durable."""
        if self.records > self.durable_index:
            os.fsync(self._fd)
            self.fsyncs += 1
            self._set_durable(self.records)

    async def close(self):
        """Make everything durable, stop the writer task and close the file."""
        if self._closed:
            return
        if self._error is None:
            try:
                self.sync()
            except OSError as exc:
                self._fail(WalError(f"{self.path}: fsync failed: {exc}"))
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except (asyncio.CancelledError, Exception):
                pass
        os.close(self._fd)

    def close_sync(self):
        """:meth:`close` for code without an event loop (no writer task running)."""
        if not self._closed:
            self.sync()
            self._closed = True
            os.close(self._fd)

    # -- reading ---------------------------------------------------------------------------

    def replay(self):
        """Iterate over the payloads (bytes) of every record now in the log, in order."""
        with open(self.path, "rb") as f:
            payloads, _, _ = _scan(f)
        yield from payloads[:self.records]

    def replay_records(self):
        """Iterate over the decoded :class:`LogRecord` s."""
        for payload in self.replay():
            yield decode_record(payload)

    # -- internals -------------------------------------------------------------------------

    def _kick(self):
        if self.policy != "group" or self._closed:
            return
        if self._writer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return      # no loop: durable at sync()/close_sync()
            self._wake = asyncio.Event()
            self._writer = loop.create_task(self._write_loop(), name="wal-writer")
        self._wake.set()

    async def _write_loop(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            target = self.records
            if target <= self.durable_index:
                continue
            try:
                await loop.run_in_executor(None, os.fsync, self._fd)
            except OSError as exc:
                self._fail(WalError(f"{self.path}: fsync failed: {exc}"))
                return
            self.fsyncs += 1
            self._set_durable(target)

    def _fail(self, error):
        log.error("%s", error)
        self._error = error
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_exception(error)

    def _set_durable(self, index):
        if index <= self.durable_index:
            return
        self.durable_index = index
        waiters = self._waiters
        while waiters and waiters[0][0] < index:
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                future.set_result(None)
        for callback in self._listeners:
            callback(index)
