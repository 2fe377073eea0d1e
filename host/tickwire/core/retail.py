"""A retail client's order request and the reasons it can be refused, protocol-neutral.

The REST gateway turns JSON into an :class:`OrderRequest` and a :class:`RetailError`'s
``code`` into an HTTP status; the broker checks the request and raises the error. Neither
side knows the other's implementation.
"""

import enum
from dataclasses import dataclass

__all__ = [
    "EVENTS",
    "MAX_QTY",
    "ORDER_TYPES",
    "SIDES",
    "TIFS",
    "ErrorCode",
    "OrderRequest",
    "ReplaceRequest",
    "RetailError",
]

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")
TIFS = ("day", "gtc", "ioc", "fok")
EVENTS = ("new", "partial_fill", "fill", "canceled", "expired", "replaced", "rejected",
          "pending_replace", "order_replace_rejected")
"""Order update events, as Alpaca's trade stream names them."""

MAX_QTY = 1_000_000
"""The largest order in shares (the venues' engines take at most 2**20 - 1 per order)."""


class ErrorCode(enum.StrEnum):
    """Why a request was refused."""

    INVALID = "invalid_request"
    UNKNOWN_SYMBOL = "unknown_symbol"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    INSUFFICIENT_QTY = "insufficient_qty"
    RESTRICTED = "restricted"
    HALTED = "halted"
    MARKET_CLOSED = "market_closed"
    ACCOUNT_BLOCKED = "account_blocked"
    RISK = "risk_limit"
    NOT_FOUND = "not_found"
    CONFLICT = "client_order_id_conflict"
    NOT_CANCELABLE = "not_cancelable"
    NOT_REPLACEABLE = "not_replaceable"
    NO_ROUTE = "no_venue_available"


class RetailError(Exception):
    """A refused request: ``code`` (an :class:`ErrorCode`) and a message for the client."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message


@dataclass(frozen=True)
class OrderRequest:
    """A new order as the client sent it; prices in 1/10000 $.

    Parameters
    ----------
    symbol : str
    qty : int
        Shares, > 0.
    side : str
        ``buy`` or ``sell``.
    type : str
        ``market`` or ``limit``.
    time_in_force : str
        ``day``, ``gtc``, ``ioc`` or ``fok``.
    limit_price : int or None
        Required for limit orders, absent for market orders.
    client_order_id : str or None
        The client's id; a retry with the same id and body returns the same order.
    """
    symbol: str
    qty: int
    side: str
    type: str
    time_in_force: str = "day"
    limit_price: int | None = None
    client_order_id: str | None = None

    def __post_init__(self):
        problems = []
        if self.side not in SIDES:
            problems.append(f"side must be one of {', '.join(SIDES)}")
        if self.type not in ORDER_TYPES:
            problems.append(f"type must be one of {', '.join(ORDER_TYPES)}")
        if self.time_in_force not in TIFS:
            problems.append(f"time_in_force must be one of {', '.join(TIFS)}")
        if not 0 < self.qty <= MAX_QTY:
            problems.append(f"qty must be a whole number of shares from 1 to {MAX_QTY:,}")
        if self.type == "limit" and (self.limit_price is None or self.limit_price <= 0):
            problems.append("a limit order needs a positive limit_price")
        if self.type == "market" and self.limit_price is not None:
            problems.append("a market order takes no limit_price")
        if not self.symbol or len(self.symbol) > 8 or not self.symbol.isascii():
            problems.append("symbol must be 1 to 8 ASCII characters")
        if problems:
            raise RetailError(ErrorCode.INVALID, "; ".join(problems))


@dataclass(frozen=True)
class ReplaceRequest:
    """A change to an open order (Alpaca's replace): each given field overrides the order's.

    Parameters
    ----------
    qty : int or None
        Shares of the replacing order (None: what is left of the existing one).
    limit_price : int or None
        1/10000 $.
    time_in_force : str or None
    client_order_id : str or None
        The replacing order's id (None: a new one is made).
    """
    qty: int | None = None
    limit_price: int | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None

    def __post_init__(self):
        if self.qty is None and self.limit_price is None and self.time_in_force is None \
                and self.client_order_id is None:
            raise RetailError(ErrorCode.INVALID, "a replace needs at least one of qty, "
                              "limit_price, time_in_force, client_order_id")
        if self.qty is not None and not 0 < self.qty <= MAX_QTY:
            raise RetailError(ErrorCode.INVALID,
                              f"qty must be a whole number of shares from 1 to {MAX_QTY:,}")
        if self.limit_price is not None and self.limit_price <= 0:
            raise RetailError(ErrorCode.INVALID, "limit_price must be positive")
        if self.time_in_force is not None and self.time_in_force not in TIFS:
            raise RetailError(ErrorCode.INVALID, f"time_in_force must be one of {', '.join(TIFS)}")
