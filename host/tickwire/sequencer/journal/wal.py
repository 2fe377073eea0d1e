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
left to the fsync helper: the feed publishes the engine's events at once, and a venue killed
with records still queued would have published what its journal lacks (measured: the write is
about 5 % of the order path; the SIGKILL recovery test fails with it deferred). It is *durable*
once fsynced, by policy:

``record``  fsync inside every append
``group``   (default) a helper process fsyncs once per batch (:mod:`.fsyncer`): everything
            appended since the previous fsync is covered by the next one (group commit), which
            is requested once the loop has taken the previous one's completion
``none``    never fsync (the OS flushes when it likes); durable as soon as written

``await wal.durable(index)`` returns when the record is durable; durability listeners are
called in log order with the highest durable index, on the event loop's thread
(:attr:`WriteAheadLog.synced_ns` says when the fsync that made them durable returned).

The group fsync runs in a process of its own, not a thread: a thread needs the GIL from the
loop's thread, busy with the engine just after an append, both to start the fsync and to hand
its completion back (the measurements are in :mod:`.fsyncer`). The request goes out at the
append (the fsync runs beside the engine), the answer is a pipe the loop watches. Only one is
out at a time: a loop busy for a while (saturated) gets one larger group, not an fsync per
handful of records (the disk's and the kernel's work, on cores the venue shares); an idle loop
gets its answer at once. The helper is not the loop's default executor either, which also
runs the gateway's scrypt password checks: a login flood does not queue fsyncs behind them.
"""

import asyncio
import heapq
import itertools
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass

from tickwire.core.codec import CodecError, decode_request, encode_request
from tickwire.protocol.link import COMMAND_BYTES, Command
from tickwire.sequencer.journal.fsyncer import Fsyncer
from tickwire.sequencer.journal.v1 import MAGIC_V1, decode_record_v1

__all__ = ["WriteAheadLog", "JournalRecord", "WalError", "MAGIC", "MAGIC_V1", "MAX_RECORD",
           "FSYNC_POLICIES", "encode_record", "decode_record", "read_header", "scan_payloads"]

log = logging.getLogger(__name__)

MAGIC = b"TWWAL002"
MAX_RECORD = 1 << 20
FSYNC_POLICIES = ("record", "group", "none")
_HEADER = struct.Struct(">II")
_LENGTH = struct.Struct(">I")


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
    synced_ns : int
        When (``time.perf_counter_ns``) the fsync behind the latest :attr:`durable_index`
        returned (policy ``none``: when the records were written).
    fsync_pid : int or None
        The group commit's helper process, while it runs.
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
        self.synced_ns = time.perf_counter_ns()
        self._fsyncer = None                    # the group commit's helper, once started
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
        """Make everything durable, stop the fsync helper and close the file."""
        if self._closed:
            return
        process = self._shut()
        while process is not None and process.poll() is None:     # an fsync may be running
            await asyncio.sleep(0.001)
        os.close(self._fd)

    def close_sync(self):
        """:meth:`close` for code without an event loop (waits for the fsync helper)."""
        if not self._closed:
            process = self._shut()
            if process is not None:
                process.wait()
            os.close(self._fd)

    def _shut(self):
        """fsync what is left, mark the log closed, stop the helper; return its process."""
        if self._error is None:
            try:
                self.sync()
            except OSError as exc:
                self._fail(WalError(f"{self.path}: fsync failed: {exc}"))
        self._closed = True
        fsyncer, self._fsyncer = self._fsyncer, None
        return fsyncer.close() if fsyncer is not None else None

    @property
    def fsync_pid(self):
        return self._fsyncer.pid if self._fsyncer is not None else None

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
        """Ask the helper for an fsync of everything written, unless one is out (group)."""
        if self.policy != "group" or self._closed or self._error is not None:
            return
        fsyncer = self._fsyncer
        if fsyncer is None or fsyncer.loop.is_closed():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return      # no loop: durable at sync()/close_sync()
            if fsyncer is not None:                 # its loop is gone, and its answers
                fsyncer.close()
            try:
                fsyncer = self._fsyncer = Fsyncer(self._fd, loop, self._synced, self._broken)
            except OSError as exc:
                self._fail(WalError(f"{self.path}: cannot start the fsync helper: {exc}"))
                return
        if not fsyncer.busy and self.records > self.durable_index:
            try:
                fsyncer.request(self.records)
            except OSError as exc:          # the helper is gone: its pipe is broken
                self._broken(f"the fsync helper (pid {fsyncer.pid}) cannot be asked: {exc}")

    def _synced(self, target, ended_ns):
        """On the loop: the helper's fsync covered records ``< target``; ask for the next."""
        self.fsyncs += 1
        self._set_durable(target, ended_ns)
        self._kick()

    def _broken(self, message):
        fsyncer, self._fsyncer = self._fsyncer, None
        if fsyncer is not None:
            fsyncer.close()
        self._fail(WalError(f"{self.path}: {message}"))

    def _fail(self, error):
        log.error("%s", error)
        self._error = error
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_exception(error)

    def _set_durable(self, index, synced_ns=None):
        if index <= self.durable_index:
            return
        self.durable_index = index
        self.synced_ns = time.perf_counter_ns() if synced_ns is None else synced_ns
        waiters = self._waiters
        while waiters and waiters[0][0] < index:
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                future.set_result(None)
        for callback in self._listeners:
            callback(index)
