"""The audit trail file: records and signed tree heads, one JSON object per line, in log order.

``AUDIT_DIR/trail.jsonl`` holds it (``tickwire audit export`` writes the same lines);
``AUDIT_DIR/public.pem`` the Ed25519 public key of its tree heads. A record line is the
record's fields plus ``"kind": "record"`` and ``"index"`` (from 0); its leaf is
SHA-256(0x00 ‖ canonical JSON of the record without ``kind`` and ``index``). A tree head line
is ``{"kind": "tree_head", "size", "root", "timestamp", "signature"}``. The writer signs a
head every ``head_interval`` records and, at :meth:`TrailWriter.close`, appends a
``TRAIL_CLOSED`` record (it says how many records came before it and the interval) and a last
head covering everything. Corrections are appended later, each followed by a new head.
"""

import datetime
import hashlib
import json
import os

from tickwire.compliance.audit.canonical import canonical_json
from tickwire.compliance.audit.keys import (
    KeyFileError,
    load_public_key,
    public_key_bytes,
    sign_head,
    write_public_key,
)
from tickwire.compliance.audit.merkle import MerkleTree
from tickwire.compliance.audit.record import AuditRecord

__all__ = [
    "DEFAULT_HEAD_INTERVAL",
    "PUBLIC_KEY_FILE",
    "TRAIL_FILE",
    "TrailWriter",
    "read_trail_lines",
    "record_leaf_bytes",
]

_sha256 = hashlib.sha256
TRAIL_FILE = "trail.jsonl"
PUBLIC_KEY_FILE = "public.pem"
DEFAULT_HEAD_INTERVAL = 1024


def record_leaf_bytes(obj):
    """The bytes under a record's leaf: canonical JSON without ``kind`` and ``index``."""
    return canonical_json({k: v for k, v in obj.items() if k not in ("kind", "index")})


def read_trail_lines(path):
    """[(line number, raw line bytes)] of a trail file (blank lines kept: they are errors)."""
    with open(path, "rb") as f:
        return [(number, line.rstrip(b"\n")) for number, line in enumerate(f, 1)]


def read_records(audit_dir):
    """The record objects of ``AUDIT_DIR/trail.jsonl`` (with ``index``), in order."""
    out = []
    for _, line in read_trail_lines(os.path.join(audit_dir, TRAIL_FILE)):
        obj = json.loads(line)
        if obj.get("kind") == "record":
            out.append(obj)
    return out


def trail_date(records):
    """The trade date a trail's ``TRAIL_CLOSED`` record names (``datetime.date``)."""
    for obj in records:
        if obj.get("event_type") == "TRAIL_CLOSED":
            return datetime.date.fromisoformat(obj["details"]["trade_date"])
    raise ValueError("the trail has no TRAIL_CLOSED record (truncated?)")


def _check_key(key, public_path):
    """Refuse to extend a trail with a key its ``public.pem`` does not hold (every head it
    signed would read as forged)."""
    if public_key_bytes(key.public_key()) != public_key_bytes(load_public_key(public_path)):
        raise KeyFileError(f"the signing key does not match {public_path}: it is not this "
                           "trail's key (nothing was appended)")


class TrailWriter:
    """Appends records and signed tree heads to ``AUDIT_DIR/trail.jsonl``.

    Parameters
    ----------
    audit_dir : str
    key : Ed25519PrivateKey
        Signs the tree heads; its public half is written to ``AUDIT_DIR/public.pem`` (when
        appending, it must be the one there: else KeyFileError).
    head_interval : int
        Records between periodic tree heads.
    append : bool
        Continue an existing trail (its records are re-hashed to rebuild the tree) instead of
        starting a new one.
    """

    def __init__(self, audit_dir, key, head_interval=DEFAULT_HEAD_INTERVAL, append=False):
        if head_interval < 1:
            raise ValueError("head_interval must be at least 1")
        os.makedirs(audit_dir, exist_ok=True)
        self.path = os.path.join(audit_dir, TRAIL_FILE)
        self.key, self.head_interval = key, head_interval
        self.tree = MerkleTree()
        self.heads = []
        self.last_timestamp = None
        if append:
            _check_key(key, os.path.join(audit_dir, PUBLIC_KEY_FILE))
            self._reload()
        else:
            write_public_key(key, os.path.join(audit_dir, PUBLIC_KEY_FILE))
        self._file = open(self.path, "ab" if append else "wb")

    def _reload(self):
        for _, line in read_trail_lines(self.path):
            obj = json.loads(line)
            if obj.get("kind") == "record":
                self.tree.append(record_leaf_bytes(obj))
                self.last_timestamp = obj["timestamp_processed"]
            else:
                self.heads.append(obj)

    def __len__(self):
        return len(self.tree)

    def append(self, record):
        """Append an :class:`AuditRecord` (sealed here) or a sealed record object; return its
        index."""
        self.extend((record,))
        return len(self.tree) - 1

    def extend(self, records):
        """Append :class:`AuditRecord` s (sealed here) or sealed record objects, in order,
        signing a tree head after every ``head_interval`` records."""
        tree, write, interval = self.tree, self._file.write, self.head_interval
        append_hash, sha256 = tree.append_hash, _sha256
        when = None
        for record in records:
            if record.__class__ is AuditRecord:
                canon, when = record.sealed_canonical(), record.timestamp_processed
            else:
                canon, when = canonical_json(record), record["timestamp_processed"]
            index = append_hash(sha256(b"\0" + canon).digest())
            write(b'{"kind":"record","index":%d,%s\n' % (index, canon[1:]))
            if (index + 1) % interval == 0:
                self.last_timestamp = when
                self.sign()
        if when is not None:
            self.last_timestamp = when

    def sign(self, timestamp=None):
        """Append a signed tree head over every record so far; return it."""
        timestamp = self.last_timestamp if timestamp is None else timestamp
        head = sign_head(self.key, len(self.tree), self.tree.root().hex(), timestamp)
        self._file.write(json.dumps(head, separators=(",", ":")).encode() + b"\n")
        self.heads.append(head)
        return head

    def close(self, trade_date=None, timestamp=None):
        """End the day (``trade_date`` given): a ``TRAIL_CLOSED`` record and a last tree head;
        without a date, only the tree head (after corrections)."""
        if trade_date is not None:
            timestamp = timestamp or self.last_timestamp or \
                f"{trade_date.isoformat()}T00:00:00.000000Z"
            count = len(self.tree)
            self.append(AuditRecord("TRAIL_CLOSED", timestamp, timestamp, details={
                "records": count, "head_interval": self.head_interval,
                "trade_date": trade_date.isoformat()}))
        if not self.heads or self.heads[-1]["size"] != len(self.tree):
            self.sign()
        self._file.close()
