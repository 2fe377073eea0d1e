"""Corrections: never an edit, always a new record that references the original.

A ``CORRECTION`` record copies the original's order identity (order, client hash, firm,
symbol), sets ``corrects`` to the original's ``event_id`` and holds the corrected fields and
the reason in ``details``; it is appended to the trail and covered by a new signed tree head.
"""

import datetime
import json

from tickwire.compliance.audit.record import AuditRecord, iso_utc
from tickwire.compliance.audit.trail import TRAIL_FILE, TrailWriter, read_trail_lines

__all__ = ["CORRECTABLE", "append_correction"]

CORRECTABLE = ("symbol", "side", "quantity", "price", "order_type", "time_in_force")


def _find(audit_dir, event_id):
    for _, line in read_trail_lines(f"{audit_dir}/{TRAIL_FILE}"):
        obj = json.loads(line)
        if obj.get("kind") == "record" and obj.get("event_id") == event_id:
            return obj
    raise LookupError(f"no record with event_id {event_id} in {audit_dir}")


def append_correction(audit_dir, key, event_id, changes, reason, now=None):
    """Append a correction of record ``event_id``; return (its index, the new tree head).

    Parameters
    ----------
    changes : dict
        Corrected values of :data:`CORRECTABLE` fields.
    reason : str
    now : datetime.datetime, optional
        When the correction is made (UTC; default: now).
    """
    bad = sorted(set(changes) - set(CORRECTABLE))
    if bad:
        raise ValueError(f"cannot correct {', '.join(bad)}; correctable: "
                         f"{', '.join(CORRECTABLE)}")
    if not reason:
        raise ValueError("a correction needs a reason")
    original = _find(audit_dir, event_id)
    now = now or datetime.datetime.now(datetime.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    when = iso_utc(now.date(), (now - midnight) // datetime.timedelta(microseconds=1) * 1000)
    record = AuditRecord(
        "CORRECTION", when, when, order_id=original.get("order_id"),
        client_id_hash=original.get("client_id_hash"), firm=original.get("firm"),
        symbol=original.get("symbol"), corrects=event_id,
        details={"changes": dict(sorted(changes.items())), "reason": reason,
                 "original_index": original["index"]},
        system_metadata={"server_id": "tickwire-audit", "clock_source":
                         "host CLOCK_REALTIME at the correction"})
    writer = TrailWriter(audit_dir, key, append=True)
    index = writer.append(record)
    head = writer.sign(when)
    writer.close()
    return index, head
