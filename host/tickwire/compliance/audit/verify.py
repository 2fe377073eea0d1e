"""Verify an audit trail against a public key: every record, every tree head.

The first problem found is reported with its kind (``corrupted``, ``edited``, ``deleted``,
``inserted``, ``reordered``, ``truncated``, ``forged``, ``missing_head``, ``wrong_key``) and
the line and record it concerns:

* a record's ``index`` must be the next one: a jump means a record was deleted (or, if the
  skipped record turns up later, reordered); an index already passed means one was inserted;
* a record's ``event_id`` must match its fields (an edit that did not recompute it is named
  at the record);
* each tree head must carry a valid Ed25519 signature (else ``forged``; if none does, the key
  is the wrong one), cover exactly the records before it (else records were inserted or
  deleted and renumbered), and its root must be the RFC 9162 root of those records (else one
  of the records since the previous head was edited);
* the trail must end with a tree head over every record and hold its ``TRAIL_CLOSED`` record
  (else it was truncated), with a head at every multiple of the interval that record gives.
"""

from dataclasses import dataclass, field

from tickwire.compliance.audit.canonical import loads
from tickwire.compliance.audit.keys import head_signature_ok
from tickwire.compliance.audit.merkle import MerkleTree
from tickwire.compliance.audit.record import event_id_matches
from tickwire.compliance.audit.trail import record_leaf_bytes

__all__ = ["VerifyResult", "verify_trail"]


@dataclass
class VerifyResult:
    """``ok`` or the first problem: ``kind``, ``line`` (1-based), ``message``."""
    ok: bool
    records: int = 0
    heads: int = 0
    root: str | None = None
    kind: str | None = None
    line: int | None = None
    message: str = ""
    closing: dict = field(default_factory=dict)


class _Problem(Exception):
    def __init__(self, kind, line, message):
        super().__init__(message)
        self.kind, self.line, self.message = kind, line, message


def _parse(lines):
    out = []
    for number, raw in lines:
        try:
            obj = loads(raw)
        except ValueError:
            raise _Problem("corrupted", number, f"line {number} is not JSON: the trail is "
                           "corrupted or was cut in the middle of a line") from None
        if not isinstance(obj, dict) or obj.get("kind") not in ("record", "tree_head"):
            raise _Problem("corrupted", number, f"line {number} is neither a record nor a "
                           "tree head")
        out.append((number, obj))
    return out


def verify_trail(lines, public_key):
    """Verify ``lines`` ([(line number, bytes)]) with ``public_key``; return a VerifyResult."""
    state = {"records": 0, "heads": 0}
    try:
        closing = _verify(_parse(lines), public_key, state)
    except _Problem as p:
        return VerifyResult(False, state["records"], state["heads"], kind=p.kind, line=p.line,
                            message=p.message)
    return VerifyResult(True, state["records"], state["heads"], state["root"],
                        message=f"{state['records']} records and {state['heads']} tree heads "
                        "verified", closing=closing)


def _verify(entries, public_key, state):
    tree = MerkleTree()
    later = {}
    for number, obj in entries:
        if obj["kind"] == "record" and isinstance(obj.get("index"), int):
            later.setdefault(obj["index"], number)
    signed_any = any(head_signature_ok(public_key, obj) for _, obj in entries
                     if obj["kind"] == "tree_head")
    head_sizes, closing, last_head = set(), None, 0
    for number, obj in entries:
        if obj["kind"] == "record":
            _check_record(number, obj, len(tree), later)
            tree.append(record_leaf_bytes(obj))
            state["records"] = len(tree)
            if obj.get("event_type") == "TRAIL_CLOSED" and closing is None:
                closing = dict(obj.get("details") or {}, line=number, index=obj["index"])
            continue
        _check_head(number, obj, public_key, signed_any, tree, last_head)
        last_head = obj["size"]
        head_sizes.add(last_head)
        state["heads"] += 1
        state["root"] = obj["root"]
    last_line = entries[-1][0] if entries else 0
    if not entries or entries[-1][1]["kind"] != "tree_head":
        raise _Problem("truncated", last_line, f"truncated: records {last_head} to "
                       f"{len(tree) - 1} are not covered by a tree head (the trail was cut "
                       f"after line {last_line})")
    if closing is None:
        raise _Problem("truncated", last_line, "truncated: the trail has no TRAIL_CLOSED "
                       f"record (it was cut after record {len(tree) - 1})")
    interval = closing.get("head_interval")
    if isinstance(interval, int) and interval > 0:
        for size in range(interval, closing["index"] + 1, interval):
            if size not in head_sizes:
                raise _Problem("missing_head", closing["line"], f"the tree head over the first "
                               f"{size} records is missing (one is signed every {interval})")
    if closing.get("records") != closing["index"]:
        raise _Problem("edited", closing["line"], f"the TRAIL_CLOSED record says "
                       f"{closing.get('records')} records precede it, the trail has "
                       f"{closing['index']}")
    return closing


def _check_record(number, obj, expected, later):
    index = obj.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise _Problem("corrupted", number, f"line {number}: record without an integer index")
    if index > expected:
        moved = later.get(expected)
        if moved is not None and moved > number:
            raise _Problem("reordered", number, f"record {expected} reordered: line {number} "
                           f"holds record {index} where record {expected} belongs (it comes "
                           f"later, at line {moved})")
        raise _Problem("deleted", number, f"record {expected} deleted: line {number} jumps "
                       f"from record {expected - 1} to record {index}")
    if index < expected:
        raise _Problem("inserted", number, f"record inserted at line {number}: index {index} "
                       f"repeats an earlier record (record {expected} was next)")
    body = {k: v for k, v in obj.items() if k not in ("kind", "index")}
    if not event_id_matches(body):
        raise _Problem("edited", number, f"record {index} (line {number}) edited: its event_id "
                       "does not match its fields")


def _check_head(number, obj, public_key, signed_any, tree, last_head):
    size = obj.get("size")
    if not isinstance(size, int) or not isinstance(obj.get("root"), str):
        raise _Problem("corrupted", number, f"tree head at line {number} lacks size or root")
    if not head_signature_ok(public_key, obj):
        if not signed_any:
            raise _Problem("wrong_key", number, "no tree head verifies with this public key: "
                           "the key does not match the trail (or every head is forged)")
        raise _Problem("forged", number, f"tree head at line {number} (size {size}) forged: "
                       "its signature does not verify with the public key")
    if size < len(tree):
        raise _Problem("inserted", number, f"records inserted: the tree head at line {number} "
                       f"covers {size} records but {len(tree)} precede it")
    if size > len(tree):
        raise _Problem("deleted", number, f"records deleted: the tree head at line {number} "
                       f"covers {size} records but only {len(tree)} precede it")
    if obj["root"] != tree.root().hex():
        raise _Problem("edited", number, f"a record among {last_head} to {size - 1} was edited: "
                       f"the tree head at line {number} (size {size}) does not match them")
