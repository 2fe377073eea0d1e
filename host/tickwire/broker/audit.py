"""The broker's audit trail: one JSON line per step of an order, in the seed's schema.

Records are appended, never rewritten: ``event_id`` is a UUID v7 (sortable by time),
``client_id_hash`` is SHA-256 of the user and a salt drawn for the day, and the routing step
carries the ``routing_decision``. Each order also keeps its own records, which the API shows
at ``GET /v2/orders/{id}/audit``.
"""

import hashlib
import json
import os
import secrets
import socket
import time

from tickwire.broker.orders import uuid7
from tickwire.util.clock import iso_time
from tickwire.core.money import format_dollars

__all__ = ["AuditTrail"]

VERSION = "0.1.0"


class AuditTrail:
    """Parameters
    ----------
    path : str, optional
        JSON lines file (appended); without it the records are only kept in memory.
    server_id : str
    """

    def __init__(self, path=None, server_id=None):
        self.salt = secrets.token_hex(16)
        self.server_id = server_id or f"broker-{socket.gethostname()}"
        self.file = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.file = open(path, "a")
        self.records = 0

    def record(self, event_type, order, received_ns=None, trace_id=None, **extra):
        """Append one record about ``order``; returns it."""
        now = time.time_ns()
        rec = {
            "event_id": str(uuid7()),
            "event_type": event_type,
            "timestamp_received": iso_time(received_ns or now),
            "timestamp_processed": iso_time(now),
            "order_id": order.id,
            "client_id_hash": hashlib.sha256((order.user + self.salt).encode()).hexdigest(),
            "symbol": order.symbol,
            "side": order.side.upper(),
            "quantity": order.qty,
            "price": None if order.limit_price is None else format_dollars(order.limit_price),
            "order_type": order.type.upper(),
            "time_in_force": order.time_in_force.upper(),
            **extra,
            "system_metadata": {"server_id": self.server_id, "version": VERSION,
                                "request_trace_id": trace_id or order.id},
        }
        order.audit.append(rec)
        if self.file is not None:
            self.file.write(json.dumps(rec) + "\n")
            self.file.flush()
        self.records += 1
        return rec

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None
