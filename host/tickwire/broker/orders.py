"""A retail order as the broker keeps it (its Alpaca-shaped state)."""

import time
import uuid
from dataclasses import dataclass, field

__all__ = ["OPEN_STATUSES", "SNAPSHOT_FIELDS", "Order", "uuid7"]

OPEN_STATUSES = ("new", "partially_filled", "pending_new", "pending_replace")
SNAPSHOT_FIELDS = ("id", "client_order_id", "symbol", "qty", "side", "type", "time_in_force",
                   "limit_price", "status", "filled_qty", "created_at", "updated_at",
                   "filled_at", "canceled_at", "expired_at", "failed_at", "reject_reason",
                   "replaced_at", "replaced_by", "replaces")


def uuid7():
    """A UUID version 7 (RFC 9562): 48 bits of Unix ms, then random bits; sorts by time."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(uuid.uuid4().bytes[6:], "big")
    value = value & ~(0xF << 76) | 0x7 << 76              # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62              # variant 10
    return uuid.UUID(int=value)


@dataclass(eq=False)
class Order:
    """One client order; prices and amounts in 1/10000 $, times in ns since the epoch.

    ``reserved`` is what the account still holds for it (cash for a buy, shares for a sell),
    ``reserve_price`` the price its buy reservation was made at.
    """
    user: str
    symbol: str
    qty: int
    side: str
    type: str
    time_in_force: str
    limit_price: int | None
    client_order_id: str
    request: object
    reserve_price: int = 0
    reserved: int = 0
    id: str = field(default_factory=lambda: str(uuid7()))
    status: str = "pending_new"
    filled_qty: int = 0
    filled_notional: int = 0
    created_at: int = field(default_factory=time.time_ns)
    updated_at: int = 0
    filled_at: int | None = None
    canceled_at: int | None = None
    expired_at: int | None = None
    failed_at: int | None = None
    reject_reason: str | None = None
    replaced_at: int | None = None
    replaced_by: str | None = None                      # the order that replaced this one
    replaces: str | None = None                         # the order this one replaces
    replacing: object = None                            # its replacement while one is pending
    change: object = None                               # the ReplaceRequest that made it
    via_router: bool = False                            # a marketable replace: re-routed
    cancel_requested: bool = False
    routed: bool = False                                # the routing task has finished
    children: list = field(default_factory=list)
    decisions: list = field(default_factory=list)       # routing_decision records
    audit: list = field(default_factory=list)           # this order's audit records

    @property
    def leaves(self):
        return self.qty - self.filled_qty

    @property
    def filled_avg_price(self):
        return self.filled_notional // self.filled_qty if self.filled_qty else None

    @property
    def open(self):
        return self.status in OPEN_STATUSES

    def snapshot(self):
        """The order's client-facing state now, as a dict (amounts still integers)."""
        return {name: getattr(self, name) for name in SNAPSHOT_FIELDS} | {
            "filled_avg_price": self.filled_avg_price}
