"""Request and response bodies of the retail API (they make its OpenAPI document)."""

from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from tickwire.core.retail import EVENTS, MAX_QTY, OrderRequest, ReplaceRequest, RetailError
from tickwire.core.money import parse_price

__all__ = [
    "AccountOut",
    "ErrorOut",
    "LoginBody",
    "NbboOut",
    "OrderBody",
    "OrderOut",
    "PositionOut",
    "QuoteOut",
    "ReplaceBody",
    "StreamEvent",
    "TokenOut",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    token: str
    expires_at: str = Field(description="RFC 3339 UTC")


class ErrorOut(BaseModel):
    code: int = Field(description="Alpaca-style: HTTP status × 100000 + 10000")
    reason: str
    message: str


class OrderBody(_Strict):
    """A new order. ``qty`` is a JSON number or a decimal string (whole shares)."""
    symbol: str = Field(min_length=1, max_length=8)
    qty: int | float | str
    side: Literal["buy", "sell"]
    type: Literal["market", "limit"]
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "day"
    limit_price: float | str | None = Field(None, description="dollars, decimal string")
    client_order_id: str | None = Field(None, min_length=1, max_length=128)

    def request(self):
        """The neutral :class:`OrderRequest`; raises RetailError if a value is not usable."""
        return OrderRequest(self.symbol, _whole_shares(self.qty), self.side, self.type,
                            self.time_in_force, _price(self.limit_price), self.client_order_id)


class ReplaceBody(_Strict):
    """Changes to an open order (Alpaca's replace): each given field overrides the order's;
    the replacing order is a new order. ``qty`` defaults to what is left of the old one."""
    qty: int | float | str | None = None
    time_in_force: Literal["day", "gtc", "ioc", "fok"] | None = None
    limit_price: float | str | None = Field(None, description="dollars, decimal string")
    stop_price: float | str | None = Field(None, description="not taken: no stop orders")
    trail: float | str | None = Field(None, description="not taken: no trailing stops")
    client_order_id: str | None = Field(None, min_length=1, max_length=128)

    def request(self):
        """The neutral :class:`ReplaceRequest`; raises RetailError if a value is not usable."""
        if self.stop_price is not None or self.trail is not None:
            raise RetailError("invalid_request", "stop_price and trail apply to stop orders, "
                              "which this broker does not take")
        return ReplaceRequest(None if self.qty is None else _whole_shares(self.qty),
                              _price(self.limit_price), self.time_in_force,
                              self.client_order_id)


def _price(value):
    if value is None:
        return None
    try:
        return parse_price(str(value))
    except ValueError as exc:
        raise RetailError("invalid_request", f"limit_price: {exc}") from None


def _whole_shares(value):
    if isinstance(value, bool):
        raise RetailError("invalid_request", "qty must be a number of shares")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RetailError("invalid_request", f"qty {value!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise RetailError("invalid_request", f"qty {value!r} is not a whole number of shares "
                          "(fractional shares are not offered)")
    if not 0 < number <= MAX_QTY:
        raise RetailError("invalid_request", f"qty must be from 1 to {MAX_QTY:,} shares")
    return int(number)


class QuoteOut(BaseModel):
    price: str
    size: int
    venue: str


class NbboOut(BaseModel):
    symbol: str
    bid: QuoteOut | None
    ask: QuoteOut | None
    timestamp: str


class OrderOut(BaseModel):
    id: str
    client_order_id: str
    created_at: str
    updated_at: str | None
    submitted_at: str
    filled_at: str | None
    expired_at: str | None
    canceled_at: str | None
    failed_at: str | None
    asset_class: str
    symbol: str
    qty: str
    filled_qty: str
    filled_avg_price: str | None
    order_class: str
    order_type: str
    type: str
    side: str
    time_in_force: str
    limit_price: str | None
    stop_price: str | None
    status: str
    extended_hours: bool
    reject_reason: str | None
    replaced_at: str | None
    replaced_by: str | None
    replaces: str | None


class PositionOut(BaseModel):
    symbol: str
    asset_class: str
    side: str
    qty: str
    qty_available: str
    avg_entry_price: str
    cost_basis: str
    current_price: str
    market_value: str
    unrealized_pl: str


class AccountOut(BaseModel):
    id: str
    account_number: str
    currency: str
    status: str
    cash: str
    buying_power: str
    long_market_value: str
    equity: str
    portfolio_value: str
    pattern_day_trader: bool
    trading_blocked: bool
    account_blocked: bool
    multiplier: str
    restricted_symbols: list[str]


class StreamEvent(BaseModel):
    """One message of ``/v2/stream``."""
    seq: int
    event: Literal[EVENTS]
    order: OrderOut
