"""Write-ahead log of the sequenced requests: what the exchange must never forget.

File format (version 2)
-----------------------
An 8-byte magic ``b"TWWAL002"`` (the format's version is its last three digits), then records
back to back::

    U32 length      payload bytes (big-endian)
    U32 crc         CRC-32 of the 4 length bytes followed by the payload
    payload         length bytes

A payload (:class:`JournalRecord`) is::

    U8   flags      bit 0: an engine command follows
    53   command    ``Command.to_bytes()`` (engine link), if flag bit 0
    ...  request    the typed request that produced it (:mod:`tickwire.core.codec`): an
                    order entry, a cancel, a declaration, a risk or host refusal...

Format 1 (``TWWAL001``, dict contexts) is still read (:mod:`.v1`). Opening a format-1 file
for writing upgrades it first: every record is rewritten in format 2 to a new file, which
replaces the old one only once complete and fsynced; the old file stays as ``PATH.v1``.

On open, the records are scanned from the start; the first one that is incomplete, longer
than :data:`MAX_RECORD` or fails its CRC ends the log: the file is truncated there and what was
cut is logged (a torn tail, left by a crash in the middle of a write).

Durability
----------
:meth:`WriteAheadLog.append` writes the record to the file at once (``os.write``; so it is
in the log before the caller goes on to the engine) and returns its index. That write is not
left to the group writer: the feed publishes the engine's events at once, and a venue killed
with records still queued would have published what its journal lacks (measured: the write is
about 5 % of the order path; the SIGKILL recovery test fails with it deferred). It is *durable*
once fsynced, by policy:

``record``  fsync inside every append
``group``   (default) a dedicated writer thread fsyncs once per batch: everything appended
            since the previous fsync is covered by the next one (group commit), which starts
            once the loop has taken the previous one's completion
``none``    never fsync (the OS flushes when it likes); durable as soon as written

``await wal.durable(index)`` returns when the record is durable; durability listeners are
called in log order with the highest durable index, on the event loop's thread.

The group writer is a thread of its own, not the loop's default executor: that pool also runs
the gateway's scrypt password checks, and a login flood must not queue fsyncs behind them. It
sleeps until an append wakes it, takes the log's length, fsyncs, and hands the new durable
index to the loop with ``call_soon_threadsafe`` (which wakes a loop blocked in ``select``):
the completion runs on the loop's next turn, not after a task switch through a future. Only
``os.fsync`` runs on that thread; every other member is touched by the loop's thread alone
(the writer reads :attr:`WriteAheadLog.records`, which the loop bumps after the bytes are
written, so an fsync started after that read covers them). Starting the writer lowers the
process's GIL switch interval (:func:`tickwire.util.loop.prompt_handoffs`): back from an
fsync, the writer needs the GIL from a busy loop thread.
"""

import asyncio
import heapq
import itertools
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass

from tickwire.core.codec import CodecError, decode_request, encode_request
from tickwire.protocol.link import COMMAND_BYTES, Command
from tickwire.sequencer.journal.v1 import MAGIC_V1, decode_record_v1
from tickwire.util.loop import prompt_handoffs

__all__ = ["WriteAheadLog", "JournalRecord", "WalError", "MAGIC", "MAGIC_V1", "MAX_RECORD",
           "FSYNC_POLICIES", "encode_record", "decode_record", "read_header", "scan_payloads"]

log = logging.getLogger(__name__)

MAGIC = b"TWWAL002"
MAX_RECORD = 1 << 20
FSYNC_POLICIES = ("record", "group", "none")
_HEADER = struct.Struct(">II")
_LENGTH = struct.Struct(">I")


def _call_soon(loop, callback, *args):
    """``callback(*args)`` on ``loop``'s thread; False if that loop is closed."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return False
    return True


class WalError(RuntimeError):
    """The log cannot be written (an fsync or write failed, or it is closed)."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journal payload: the typed request and the engine command it made (if any)."""
    request: object
    command: Command | None = None


def encode_record(record):
    """:class:`JournalRecord` → payload bytes (format in the module docstring)."""
    request = encode_request(record.request)
    if record.command is None:
        return b"\x00" + request
    return b"\x01" + record.command.to_bytes() + request


def decode_record(payload, magic=MAGIC):
    """Payload bytes of a ``magic`` file → :class:`JournalRecord`; ValueError if malformed."""
    if magic == MAGIC_V1:
        command, request = decode_record_v1(payload)
        return JournalRecord(request, command)
    if not payload or payload[0] > 1:
        raise ValueError("WAL payload: bad flags byte")
    command, start = None, 1
    if payload[0]:
        if len(payload) < 1 + COMMAND_BYTES:
            raise ValueError("WAL payload: command cut short")
        command = Command.from_bytes(bytes(payload[1:1 + COMMAND_BYTES]))
        start += COMMAND_BYTES
    try:
        return JournalRecord(decode_request(payload, start), command)
    except CodecError as exc:
        raise ValueError(f"WAL payload: {exc}") from None


def read_header(f):
    """The magic of an open journal file (ValueError if it is not a tickwire journal)."""
    head = f.read(len(MAGIC))
    if head not in (MAGIC, MAGIC_V1):
        raise ValueError(f"not a tickwire journal (magic {head!r})")
    return head


def _magic(path):
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC))
    except FileNotFoundError:
        return b""


def _upgrade_v1(path):
    """Rewrite a format-1 journal in format 2 (module docstring); return the backup's path."""
    with open(path, "rb") as f:
        payloads, _, why = scan_payloads(f)
    if why is not None:
        log.warning("%s: format-1 torn tail after record %d (%s) left out of the upgrade",
                    path, len(payloads), why)
    records = [decode_record(p, MAGIC_V1) for p in payloads]
    backup, fresh = path + ".v1", path + ".v2.tmp"
    with open(fresh, "wb") as out:
        out.write(MAGIC)
        for record in records:
            payload = encode_record(record)
            length = _LENGTH.pack(len(payload))
            out.write(length + _LENGTH.pack(zlib.crc32(payload, zlib.crc32(length))) + payload)
        out.flush()
        os.fsync(out.fileno())
    if not os.path.exists(backup):
        os.link(path, backup)
    os.replace(fresh, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    log.warning("%s: upgraded %d records from journal format 1 (the original is %s)", path,
                len(records), backup)
    return backup


def scan_payloads(f):
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
        self.upgraded_from = None
        if _magic(path) == MAGIC_V1:
            self.upgraded_from = _upgrade_v1(path)
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
                payloads, end, why = scan_payloads(f)
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
        self._writer = None                     # the group writer thread, once started
        self._writer_loop = None                # the loop its completions go to
        self._wake = threading.Event()
        self._consumed = threading.Event()      # the loop took the writer's last fsync
        self._stopping = False
        self._error = None
        self._closed = False

    # -- writing ---------------------------------------------------------------------------

    def append(self, payload):
        """Write one record (bytes or :class:`JournalRecord`) now; return its index.

        Raises
        ------
        WalError
            If the log is closed or a previous fsync failed.
        """
        if self._closed or self._error is not None:
            raise WalError(f"{self.path}: log unusable ({self._error or 'closed'})")
        if isinstance(payload, JournalRecord):
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
        writer = self._stop_writer()
        while writer is not None and writer.is_alive():     # an fsync may be running
            await asyncio.sleep(0.001)
        os.close(self._fd)

    def close_sync(self):
        """:meth:`close` for code without an event loop (waits for the writer thread)."""
        if not self._closed:
            self.sync()
            self._closed = True
            writer = self._stop_writer()
            if writer is not None:
                writer.join()
            os.close(self._fd)

    # -- reading ---------------------------------------------------------------------------

    def replay(self):
        """Iterate over the payloads (bytes) of every record now in the log, in order."""
        with open(self.path, "rb") as f:
            payloads, _, _ = scan_payloads(f)
        yield from payloads[:self.records]

    def replay_records(self):
        """Iterate over the decoded :class:`JournalRecord` s."""
        for payload in self.replay():
            yield decode_record(payload)

    # -- internals -------------------------------------------------------------------------

    def _kick(self):
        if self.policy != "group" or self._closed:
            return
        if self._writer is None or self._writer_loop.is_closed():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return      # no loop: durable at sync()/close_sync()
            self._writer_loop = loop
            replaced = (self._wake, self._consumed)     # a closed loop's writer ends on them
            self._wake, self._consumed = threading.Event(), threading.Event()
            for event in replaced:
                event.set()
            prompt_handoffs()
            self._writer = threading.Thread(target=self._write_thread, args=(loop,),
                                            name=f"wal-writer {os.path.basename(self.path)}",
                                            daemon=True)
            self._writer.start()
        if not self._wake.is_set():     # once per fsync, not per record: set() takes a lock
            self._wake.set()

    def _stop_writer(self):
        """Tell the writer thread to end (after its running fsync, if any); return it."""
        writer, self._writer = self._writer, None
        self._stopping = True
        self._wake.set()
        self._consumed.set()
        return writer

    def _write_thread(self, loop):
        """The group writer (its own thread): fsync whatever was appended since the last one."""
        synced = self.durable_index
        wake, consumed = self._wake, self._consumed
        while True:
            wake.wait()
            wake.clear()
            if self._stopping or wake is not self._wake:
                return
            target = self.records
            if target <= synced:
                continue
            try:
                os.fsync(self._fd)
            except OSError as exc:
                error = WalError(f"{self.path}: fsync failed: {exc}")
                _call_soon(loop, self._fail, error)
                return
            synced = target
            consumed.clear()
            # A stop that came before the clear above set ``_stopping`` first: seen here. One
            # after it sets ``consumed`` again, so the wait below returns. (A loop thread that
            # stops this writer and joins it never runs ``_synced``.)
            if self._stopping or not _call_soon(loop, self._synced, target, consumed):
                return
            # The next fsync starts once the loop has taken this one: a loop busy for a while
            # (saturated) gets one larger group, not an fsync per handful of records (the
            # disk's and the kernel's work, on cores the venue shares); an idle loop takes it
            # at once.
            consumed.wait()

    def _synced(self, target, consumed):
        """On the loop: the writer's fsync covered records ``< target``."""
        consumed.set()
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
