"""The audit record (the seed design's schema, section 5) and its event identifier.

Times are UTC ISO 8601 with microseconds (``2024-01-15T14:30:00.123456Z``), prices decimal
strings in dollars, quantities integers. ``client_id_hash`` is sha256(client id + that day's
salt) in hex (the salt comes from the PII vault, :mod:`tickwire.compliance.audit.vault`).

``event_id`` is a UUIDv7 (RFC 9562) built so that the same journal gives the same identifiers:
its 48-bit Unix millisecond time and 12-bit sub-millisecond fraction (RFC 9562 section 6.2,
method 3) are the record's ``timestamp_processed``, and its 62 "random" bits are the first
bits of SHA-256 over the record's other fields (canonical JSON). Besides being reproducible,
this lets the verifier point at a record edited in place (its identifier no longer matches).
"""

import datetime
import hashlib
from dataclasses import dataclass, field

from tickwire.compliance.audit.canonical import canonical_json
from uuid6 import UUID

__all__ = [
    "CLOCK_SOURCE",
    "EVENT_TYPES",
    "AuditRecord",
    "event_id_for",
    "event_id_matches",
    "iso_utc",
    "parse_iso_utc",
    "price_text",
    "uuid7_text",
]

EVENT_TYPES = (
    "ORDER_RECEIVED", "CANCEL_RECEIVED", "REPLACE_RECEIVED", "RISK_ACCEPTED", "RISK_REJECTED",
    "ORDER_SEQUENCED", "ORDER_ACCEPTED", "ORDER_EXECUTED", "ORDER_CANCELLED", "ORDER_REPLACED",
    "ORDER_REJECTED", "CANCEL_REJECTED", "ORDER_SETTLED", "SETTLEMENT_FAILED", "CORRECTION",
    "TRAIL_CLOSED",
)
"""The venue's event types (the broker's trail adds its own, ``ORDER_ROUTED`` among them)."""
CLOCK_SOURCE = "sequencer: host CLOCK_REALTIME (time.time_ns), non-decreasing, ns since midnight"
_EPOCH = datetime.date(1970, 1, 1)
_DAY_NS = 86_400 * 10**9


def iso_utc(trade_date, ns_since_midnight):
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` of a trade date plus ns since midnight UTC (truncated to
    microseconds)."""
    us = ns_since_midnight // 1000
    seconds, micro = divmod(us, 1_000_000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    day = trade_date + datetime.timedelta(days=hours // 24)
    return f"{day.isoformat()}T{hours % 24:02d}:{minute:02d}:{sec:02d}.{micro:06d}Z"


def parse_iso_utc(text):
    """µs since the Unix epoch of an :func:`iso_utc` string."""
    second = text[:19]
    if second != _LAST[0]:          # records come in time order: most share the last second
        day = _DAY_US.get(text[:10])
        if day is None:
            day = (datetime.date.fromisoformat(text[:10]) - _EPOCH).days * _DAY_US_LEN
            if len(_DAY_US) < 4096:
                _DAY_US[text[:10]] = day
        _LAST[:] = second, day + ((int(text[11:13]) * 60 + int(text[14:16])) * 60
                                  + int(text[17:19])) * 1_000_000
    return _LAST[1] + int(text[20:26])


_DAY_US = {}                    # "YYYY-MM-DD" -> µs since the epoch at its midnight
_DAY_US_LEN = 86_400_000_000
_LAST = [None, None]            # the last "YYYY-MM-DDTHH:MM:SS" parsed, its µs since the epoch


def price_text(price):
    """1/10000 $ → decimal string with at least two places (``1825000`` → ``"182.50"``)."""
    if price is None:
        return None
    sign = "-" if price < 0 else ""
    whole, frac = divmod(abs(price), 10000)
    digits = f"{frac:04d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One order lifecycle event.

    ``details`` holds what only some events have (``execution_id``, ``leaves``, ``reason``,
    ``text``, ``liquidity``, ``previous_order_id``, ``command_seq``); ``corrects`` is the
    ``event_id`` a correction record amends; ``routing_decision`` the seed's (``selected_venue``,
    ``reason``, ``alternatives_considered``, ``prices_at_decision``) on a broker's
    ``ORDER_ROUTED`` record, null elsewhere.
    """
    event_type: str
    timestamp_received: str
    timestamp_processed: str
    order_id: str | None = None
    client_id_hash: str | None = None
    firm: str | None = None
    symbol: str | None = None
    side: str | None = None
    quantity: int | None = None
    price: str | None = None
    order_type: str | None = None
    time_in_force: str | None = None
    details: dict = field(default_factory=dict)
    system_metadata: dict = field(default_factory=dict)
    corrects: str | None = None
    routing_decision: dict | None = None
    event_id: str = ""

    def body(self):
        """Every field but ``event_id``, as a JSON object."""
        return {"event_type": self.event_type, "timestamp_received": self.timestamp_received,
                "timestamp_processed": self.timestamp_processed, "order_id": self.order_id,
                "client_id_hash": self.client_id_hash, "firm": self.firm,
                "symbol": self.symbol, "side": self.side, "quantity": self.quantity,
                "price": self.price, "order_type": self.order_type,
                "time_in_force": self.time_in_force, "details": self.details,
                "system_metadata": self.system_metadata, "corrects": self.corrects,
                "routing_decision": self.routing_decision}

    def sealed_json(self):
        """The record as the JSON object hashed into the tree, its ``event_id`` set (module
        docstring)."""
        out = self.body()
        out["event_id"] = event_id_for(out, self.timestamp_processed)
        return out

    def sealed_canonical(self):
        """The canonical JSON of :meth:`sealed_json`, made with one pass of the encoder.

        The keys before ``event_id`` in sorted order (``client_id_hash``, ``corrects``,
        ``details``) and those after it are encoded apart: joined, they are the body's canonical
        JSON (the event id's digest); with ``"event_id":…`` between them, the sealed record's.
        """
        head = _encode({"client_id_hash": self.client_id_hash, "corrects": self.corrects,
                        "details": self.details})[:-1]
        tail = _encode({
            "event_type": self.event_type, "timestamp_received": self.timestamp_received,
            "timestamp_processed": self.timestamp_processed, "order_id": self.order_id,
            "firm": self.firm, "symbol": self.symbol, "side": self.side,
            "quantity": self.quantity, "price": self.price, "order_type": self.order_type,
            "time_in_force": self.time_in_force, "routing_decision": self.routing_decision,
            "system_metadata": self.system_metadata})[1:]
        digest = _sha256(head + b"," + tail).digest()
        eid = uuid7_text(parse_iso_utc(self.timestamp_processed),
                         int.from_bytes(digest[:8], "big"))
        return b'%s,"event_id":"%s",%s' % (head, eid.encode(), tail)

    def to_json(self):
        """The record as a JSON object (``event_id`` as it is)."""
        out = self.body()
        out["event_id"] = self.event_id
        return out




def event_id_for(body, timestamp_processed):
    """The UUIDv7 of a record body (module docstring), built by ``uuid6``: the reference the
    verifier checks records against, and the tests check :func:`uuid7_text` with."""
    us = parse_iso_utc(timestamp_processed)
    ms, sub = divmod(us, 1000)
    digest = int.from_bytes(_sha256(canonical_json(body)).digest()[:8], "big")
    value = ((ms & _MS_MASK) << 80) | ((sub * 4096 // 1000) << 64) | (digest >> 2)
    return str(UUID(int=value, version=7))


def uuid7_text(us, bits64):
    """The UUIDv7 text of a time (µs since the epoch) and 64 bits of digest: what
    :func:`event_id_for` gets from ``uuid6`` (the tests check it), formatted directly, with
    the millisecond part kept from the last call (records come in time order): the trail's
    append rate needs it (a fifth of the time of building a ``uuid6.UUID``)."""
    ms, sub = divmod(us, 1000)
    if ms != _MS_TEXT[0]:
        _MS_TEXT[:] = ms, "%08x-%04x-7" % ((ms >> 16) & 0xFFFFFFFF, ms & 0xFFFF)
    low = bits64 >> 2                   # RFC 9562 variant 10, then 62 bits of digest
    return "%s%03x-%04x-%012x" % (_MS_TEXT[1], sub * 4096 // 1000, 0x8000 | (low >> 48),
                                  low & 0xFFFFFFFFFFFF)


_sha256 = hashlib.sha256
_encode = canonical_json
_MS_MASK = 2**48 - 1
_MS_TEXT = [None, None]             # the last millisecond formatted, and its text


def event_id_matches(obj):
    """Whether a record object's ``event_id`` is the one its other fields give."""
    body = {k: v for k, v in obj.items() if k != "event_id"}
    try:
        return obj.get("event_id") == event_id_for(body, obj["timestamp_processed"])
    except (KeyError, ValueError, TypeError):
        return False
