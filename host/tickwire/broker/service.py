"""The broker: a retail order's journey from request to position.

:meth:`Broker.submit` runs the steps the seed's "Buy 100 AAPL at Market" walk names, each one
recorded in the audit trail: the request is validated (symbol, tick, market hours, halts),
the account checked (blocked, restricted, buying power, shares to sell), broker pre-trade
risk applied (order size and notional, price collar), cash or shares reserved, and the order
handed to the smart order router. Routing runs as a task: it reads the NBBO, sends child
orders to the venues (:mod:`tickwire.routing`), and re-routes after a reject or a partial
fill. Executions move cash and positions at once and go out on the user's order stream.
"""

import asyncio
import logging
import time
import uuid

from tickwire.accounts.config import Limits
from tickwire.broker.accounts import AccountBook, market_estimate
from tickwire.broker.audit import AuditTrail
from tickwire.broker.blotter import Blotter, Execution
from tickwire.broker.orders import Order
from tickwire.broker.replace import Replacing
from tickwire.broker.stream import OrderStream
from tickwire.core.retail import ErrorCode, RetailError
from tickwire.routing.log import RoutingLog
from tickwire.routing.router import decide
from tickwire.routing.venues import VenueDown
from tickwire.core.money import PRICE_SCALE, format_bp_as_pct, format_dollars

__all__ = ["DEFAULT_LIMITS", "MAX_ROUNDS", "Broker", "tick_of"]

log = logging.getLogger(__name__)

DEFAULT_LIMITS = Limits(max_order_qty=100_000, max_order_notional=5_000_000 * PRICE_SCALE,
                        collar_bp=1_000)
"""Broker pre-trade risk for every retail order (SEC 15c3-5): fat-finger size and notional,
and a limit price at most 10 % through the far side of the NBBO."""

_AUDITED = {"canceled": "ORDER_CANCELLED", "expired": "ORDER_EXPIRED",
            "rejected": "ORDER_REJECTED"}
"""The audit record of an order's end (the compliance trail's names where it has them)."""

MAX_ROUNDS = 5
"""Routing rounds per order: the first, then re-routes after rejects or partial fills."""


def tick_of(price):
    """Reg NMS Rule 612 minimum increment: $0.01 from $1.00 up, $0.0001 below (1/10000 $)."""
    return 100 if price >= 10000 else 1


class Broker(Replacing):
    """Parameters
    ----------
    book : ConsolidatedBook
        The consolidated quotes.
    accounts : AccountBook
    links : dict of str to VenueLink
        The broker's session with each venue; created by the caller with this broker's
        :meth:`on_fill` and :meth:`on_done`.
    audit : AuditTrail, optional
    routing_log : RoutingLog, optional
    blotter : Blotter, optional
        Where each execution is recorded (the broker's books).
    controls : ControlsFile, optional
        Blocked accounts and restricted symbols, looked at again before each request that
        depends on them.
    limits : Limits
        Pre-trade risk per order.
    max_queue : int
        Unread stream events before a listener is dropped.
    """

    def __init__(self, book, accounts=None, links=None, audit=None, routing_log=None,
                 limits=DEFAULT_LIMITS, max_queue=10_000, route_timeout=5.0, blotter=None,
                 controls=None):
        self.book = book
        self.accounts = accounts or AccountBook()
        self.links = links if links is not None else {}
        self.audit = audit or AuditTrail()
        self.routing_log = routing_log or RoutingLog()
        self.blotter = blotter or Blotter()
        self.controls = controls
        self.limits = limits
        self.route_timeout = route_timeout
        self.stream = OrderStream(lambda order: order.snapshot(), max_queue)
        self.orders = {}                # id -> Order
        self.by_user = {}               # user -> {client_order_id: Order}
        self.tasks = set()
        self.stats = {"orders": 0, "rejected": 0, "fills": 0}

    # -- the journey -----------------------------------------------------------------------

    def submit(self, user, request, received_ns=None, trace_id=None):
        """Take a new order (an :class:`~tickwire.core.retail.OrderRequest`).

        Returns the new order, or the existing one for a retried ``client_order_id`` with the
        same request. Raises RetailError with nothing changed if it is refused.
        """
        try:
            account = self.account_of(user)
            mine = self.by_user.setdefault(user, {})
            coid = request.client_order_id or str(uuid.uuid4())
            if coid in mine:
                if mine[coid].request == request:
                    return mine[coid]
                raise RetailError(ErrorCode.CONFLICT,
                                  f"client_order_id {coid!r} was used for a different order")
            self._validate(request)
            reserve_price = self._reserve_price(request)
            self.accounts.check(account, request.symbol, request.side, request.qty,
                                reserve_price)
            risk = self._risk(request, reserve_price)
        except RetailError as exc:
            self.audit.refusal(user, request, exc, received_ns, trace_id)
            raise
        order = Order(user, request.symbol, request.qty, request.side, request.type,
                      request.time_in_force, request.limit_price, coid, request, reserve_price)
        order.reserved = self.accounts.reserve(account, order.symbol, order.side, order.qty,
                                               reserve_price)
        mine[coid] = self.orders[order.id] = order
        self.stats["orders"] += 1
        self.audit.record("ORDER_RECEIVED", order, received_ns, trace_id)
        self.audit.record("ORDER_VALIDATED", order, received_ns, trace_id,
                          buying_power_check={
                              "reserved": format_dollars(order.reserved) if order.side == "buy"
                              else None,
                              "reserved_shares": order.reserved if order.side == "sell" else None,
                              "buying_power_after": format_dollars(account.buying_power)})
        self.audit.record("RISK_ACCEPTED", order, received_ns, trace_id, risk_check=risk)
        self._set_status(order, "new", "new")
        task = asyncio.get_running_loop().create_task(self._route(order, trace_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return order

    def _validate(self, request):
        symbol = request.symbol
        if not self.book.known(symbol):
            raise RetailError(ErrorCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        if request.limit_price is not None and request.limit_price % tick_of(request.limit_price):
            raise RetailError(ErrorCode.INVALID,
                              f"limit_price {format_dollars(request.limit_price)} is not a "
                              f"multiple of the tick ${format_dollars(tick_of(request.limit_price))}"
                              " (Reg NMS Rule 612)")
        if not self.book.market_open():
            raise RetailError(ErrorCode.MARKET_CLOSED, "the market is closed")
        if self.book.halted(symbol):
            raise RetailError(ErrorCode.HALTED, f"{symbol} is halted")
        if not any(link.available() for link in self.links.values()):
            raise RetailError(ErrorCode.NO_ROUTE, "no venue is reachable; try again later")

    def _reserve_price(self, request):
        if request.side == "sell":
            return 0
        if request.type == "limit":
            return request.limit_price
        nbbo = self.book.get(request.symbol)
        if nbbo is None or nbbo.ask is None:
            raise RetailError(ErrorCode.NO_ROUTE,
                              f"no venue offers {request.symbol}: a market buy cannot be priced")
        return market_estimate(nbbo.ask.price)

    def _risk(self, request, reserve_price):
        """Broker pre-trade risk; the record of what was checked, or RetailError."""
        limits = self.limits
        nbbo = self.book.get(request.symbol)
        reference = None
        if nbbo is not None:
            far = nbbo.ask if request.side == "buy" else nbbo.bid
            reference = far.price if far else None
        notional = request.qty * (request.limit_price or reserve_price or reference or 0)
        if limits.max_order_qty is not None and request.qty > limits.max_order_qty:
            raise RetailError(ErrorCode.RISK, f"qty {request.qty:,} is above the broker's "
                              f"{limits.max_order_qty:,} shares per order")
        if limits.max_order_notional is not None and notional > limits.max_order_notional:
            raise RetailError(ErrorCode.RISK, f"order notional ${format_dollars(notional)} is "
                              f"above ${format_dollars(limits.max_order_notional)}")
        if limits.collar_bp is not None and request.limit_price is not None and reference:
            through = (request.limit_price - reference) if request.side == "buy" \
                else (reference - request.limit_price)
            if through * 10_000 > limits.collar_bp * reference:
                raise RetailError(ErrorCode.RISK, f"limit price {format_dollars(request.limit_price)}"
                                  f" is more than {format_bp_as_pct(limits.collar_bp)} % through "
                                  f"the NBBO ({format_dollars(reference)})")
        return {"result": "pass", "notional": format_dollars(notional),
                "reference": None if reference is None else format_dollars(reference),
                "limits": {"max_order_qty": limits.max_order_qty,
                           "max_order_notional": None if limits.max_order_notional is None
                           else format_dollars(limits.max_order_notional),
                           "collar_pct": None if limits.collar_bp is None
                           else format_bp_as_pct(limits.collar_bp)}}

    # -- routing ---------------------------------------------------------------------------

    async def _route(self, order, trace_id=None):
        try:
            await self._route_rounds(order, trace_id)
        except Exception as exc:
            log.exception("routing of order %s failed", order.id)
            self.audit.record("ROUTING_ERROR", order, trace_id=trace_id, error=repr(exc))
        finally:
            self._settle(order, routed=True)

    async def _route_rounds(self, order, trace_id):
        limit = order.limit_price
        if order.type == "market" and order.side == "buy":
            limit = order.reserve_price         # the collar the buying power was reserved at
        for _ in range(MAX_ROUNDS):
            pending = sum(c.leaves for c in order.children)
            want = order.leaves - pending
            if want <= 0 or order.cancel_requested:
                break
            quotes = self.book.venue_quotes(order.symbol)
            decision = decide(order.id, order.symbol, order.side, want, limit,
                              order.time_in_force, quotes,
                              lambda v: v in self.links and self.links[v].available(),
                              self.book.get(order.symbol))
            record = self.routing_log.decision(decision, order.type)
            order.decisions.append(record)
            self.audit.record("ORDER_ROUTED", order, trace_id=trace_id, routing_decision={
                k: record[k] for k in ("selected_venue", "reason", "alternatives_considered",
                                       "prices_at_decision")} | {"slices": record["slices"]})
            takers = []
            for s in decision.slices:
                try:
                    child = self.links[s.venue].send(order, order.side, s.qty, s.price, s.tif,
                                                     s.sweep)
                except VenueDown as exc:
                    self.audit.record("VENUE_UNAVAILABLE", order, trace_id=trace_id,
                                      venue=s.venue, error=str(exc))
                    continue
                child.nbbo = (decision.nbbo_bid, decision.nbbo_ask)
                child.better_unswept = s.better_unswept
                order.children.append(child)
                if s.tif in ("ioc", "fok"):
                    takers.append(child)
            if not takers:
                break
            done = [asyncio.create_task(c.done.wait()) for c in takers]
            _, waiting = await asyncio.wait(done, timeout=self.route_timeout)
            for task in waiting:
                task.cancel()
            if waiting:
                break           # a venue has not answered: its shares stay with it
            if order.time_in_force == "fok":
                break

    def on_fill(self, child, shares, price, match):
        """A venue's execution of a child order: cash, position, reservation, stream."""
        order = child.parent
        account = self.accounts.get(order.user)
        self.accounts.execute(account, order.symbol, order.side, shares, price)
        held = shares * order.reserve_price if order.side == "buy" else shares
        self.accounts.release(account, order.symbol, order.side, held)
        order.reserved -= held
        order.filled_qty += shares
        order.filled_notional += shares * price
        self.stats["fills"] += 1
        self.blotter.record(Execution(order.user, account.number, order.id, child.venue,
                                      order.symbol, order.side, shares, price, match))
        bid, ask = child.nbbo
        self.routing_log.fill(order.id, child.venue, order.side, shares, price, bid, ask,
                              child.price, child.better_unswept)
        self.audit.record("ORDER_EXECUTED", order, execution={
            "venue": child.venue, "qty": shares, "price": format_dollars(price),
            "match_number": match, "nbbo_at_decision": {
                "bid": None if bid is None else format_dollars(bid),
                "ask": None if ask is None else format_dollars(ask)}},
            position_after={"qty": account.position(order.symbol).qty,
                            "cash": format_dollars(account.cash)})
        if order.leaves == 0:
            order.filled_at = time.time_ns()
            self._set_status(order, "filled", "fill")
            self._release(order)
        else:
            self._set_status(order, "pending_replace" if order.replacing else
                             "partially_filled", "partial_fill")

    def on_done(self, child):
        """A child order ended; an order whose routing is over may now be settled."""
        order = child.parent
        if order.replacing is not None and order.replacing.via_router:
            self._replaced_by_router(order, child)
            return
        if child.reason and child.reason.startswith("rejected"):
            self.audit.record("CHILD_REJECTED", order, venue=child.venue, reason=child.reason)
        if getattr(order, "routed", False):
            self._settle(order)

    def _settle(self, order, routed=False):
        if routed:
            order.routed = True
        if not order.routed or not order.open or any(c.leaves for c in order.children):
            return
        if order.leaves == 0:
            return
        now = time.time_ns()
        rejected = order.children and all((c.reason or "").startswith("rejected")
                                          for c in order.children)
        if order.cancel_requested:
            order.canceled_at = now
            self._set_status(order, "canceled", "canceled")
        elif rejected and not order.filled_qty:
            order.failed_at = now
            order.reject_reason = order.children[-1].reason
            self._set_status(order, "rejected", "rejected")
        elif order.time_in_force in ("fok",) or any(c.tif in ("day", "gtc")
                                                     for c in order.children):
            order.expired_at = now
            self._set_status(order, "expired", "expired")
        else:
            order.canceled_at = now
            self._set_status(order, "canceled", "canceled")
        self._release(order)

    def _release(self, order):
        if order.reserved:
            self.accounts.release(self.accounts.get(order.user), order.symbol, order.side,
                                  order.reserved)
            order.reserved = 0

    def _set_status(self, order, status, event):
        order.status = status
        order.updated_at = time.time_ns()
        if event in _AUDITED:
            self.audit.record(_AUDITED[event], order, reason=order.reject_reason)
        self.stream.publish(order.user, event, order)

    # -- queries and cancels ---------------------------------------------------------------

    def order(self, user, order_id):
        order = self.orders.get(order_id)
        if order is None or order.user != user:
            raise RetailError(ErrorCode.NOT_FOUND, f"order {order_id} not found")
        return order

    def order_by_client_id(self, user, client_order_id):
        order = self.by_user.get(user, {}).get(client_order_id)
        if order is None:
            raise RetailError(ErrorCode.NOT_FOUND,
                              f"no order with client_order_id {client_order_id!r}")
        return order

    def list_orders(self, user, status="open", limit=50):
        """The user's orders, newest first; ``status`` open, closed or all."""
        mine = [o for o in self.by_user.get(user, {}).values()
                if status == "all" or (o.open if status == "open" else not o.open)]
        mine.sort(key=lambda o: o.created_at, reverse=True)
        return mine[:limit]

    def cancel(self, user, order_id):
        """Cancel what is left of an open order (its posted child orders at the venues)."""
        order = self.order(user, order_id)
        if order.status not in ("new", "partially_filled"):
            raise RetailError(ErrorCode.NOT_CANCELABLE,
                              f"order {order_id} is {order.status} and cannot be canceled")
        order.cancel_requested = True
        for child in order.children:
            if child.leaves:
                try:
                    self.links[child.venue].cancel(child)
                except VenueDown:
                    log.warning("cancel of %s at %s waits for the venue", child.token,
                                child.venue)
        self._settle(order)
        return order

    def mark(self, symbol):
        """The price a position is valued at: the NBBO midpoint (or its one side), or None."""
        nbbo = self.book.get(symbol)
        sides = [q.price for q in (nbbo.bid, nbbo.ask) if q] if nbbo else []
        return sum(sides) // len(sides) if sides else None

    def positions(self, user):
        """The user's positions: symbol, qty, cost, avg entry, current price, market value."""
        out = []
        for symbol, p in sorted(self.accounts.get(user).positions.items()):
            price = self.mark(symbol) or p.avg_entry_price
            out.append({"symbol": symbol, "qty": p.qty, "cost_basis": p.cost,
                        "avg_entry_price": p.avg_entry_price, "current_price": price,
                        "market_value": p.qty * price,
                        "unrealized_pl": p.qty * price - p.cost})
        return out

    def account_of(self, user):
        """The user's account, with the account controls in force now."""
        if self.controls is not None:
            self.controls.refresh()
        return self.accounts.get(user)

    def account_summary(self, user):
        """Cash, buying power, market value of positions, equity and status."""
        account = self.account_of(user)
        long_value = sum(p["market_value"] for p in self.positions(user))
        return {"id": account.number, "user": user, "cash": account.cash,
                "buying_power": account.buying_power, "long_market_value": long_value,
                "equity": account.cash + long_value, "reserved": account.reserved_cash,
                "blocked": account.blocked, "restricted": sorted(account.restricted)}

    async def drain(self, timeout=10.0):
        """Wait for every routing task to finish."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
