"""Replacing an open order (Alpaca's ``PATCH /v2/orders/{id}``) as a cancel/replace.

A replace makes a new order (``replaces`` names the old one) from the old one's fields with
the client's changes. While it is pending the old order is ``pending_replace`` and the
account holds the larger of the two orders' needs (Alpaca's rule), so the buying power is
checked only for the difference. The posted child order at the venue holding it is then
changed one of two ways:

- the new price is not marketable against the NBBO: an OUCH Replace Order to that venue,
  so the order stays where it rests; the venue answers Replaced, or Cancel Reject / Rejected
  if the old order was filled or canceled first (the replace lost the race);
- the new price is marketable: the venue holding the order might not have the best price, so
  (Reg NMS, no trade-throughs) the child is canceled and, once the venue confirms, the new
  order goes through the smart order router like any new order; a fill that beats the cancel
  refuses the replace.

The replacing order's ``qty`` is its own (Alpaca's: a new order), so a fill of the old
order that races the replace is not taken off it; if that leaves the new order needing more
than the account held, the rest is held all the same when the venue confirms (the order is
live there), and the buying power may dip below zero until an order ends.

Either way the stream says ``pending_replace``, then ``replaced`` (the old order) and
``new`` (the new one), or ``order_replace_rejected`` (the old order) and ``rejected`` (the
new one). A retried request (the same changes, or the same ``client_order_id``) returns the
same replacing order.
"""

import asyncio
import time
import uuid

from tickwire.broker.orders import Order
from tickwire.core.money import format_dollars
from tickwire.core.retail import ErrorCode, OrderRequest, RetailError
from tickwire.routing.venues import VenueDown

__all__ = ["REPLACE_TIFS", "Replacing"]

REPLACE_TIFS = ("day", "gtc")
"""What a replaced order may rest as (an order that is replaced is posted at a venue)."""


class Replacing:
    """The replace half of :class:`~tickwire.broker.service.Broker` (a mixin: it uses the
    broker's orders, accounts, links, book, audit and stream)."""

    def replace(self, user, order_id, change, received_ns=None, trace_id=None):
        """Replace ``order_id`` with the changes of ``change`` (a
        :class:`~tickwire.core.retail.ReplaceRequest`); returns the replacing order.

        Raises RetailError with nothing changed if it is refused.
        """
        order = self.order(user, order_id)
        again = self._same_replace(user, order, change)
        if again is not None:
            return again
        child = self._replaceable(order)
        account = self.account_of(user)
        request = OrderRequest(
            order.symbol, change.qty or order.leaves, order.side, order.type,
            change.time_in_force or order.time_in_force,
            change.limit_price if change.limit_price is not None else order.limit_price,
            change.client_order_id or str(uuid.uuid4()))
        if request.time_in_force not in REPLACE_TIFS:
            raise RetailError(ErrorCode.INVALID, "a replaced order rests at a venue: "
                              f"time_in_force must be one of {', '.join(REPLACE_TIFS)}")
        self._validate(request)
        reserve_price = self._reserve_price(request)
        self.accounts.check(account, request.symbol, request.side, request.qty, reserve_price,
                            held=order.reserved)
        risk = self._risk(request, reserve_price)
        need = request.qty * reserve_price if request.side == "buy" else request.qty
        new = Order(user, request.symbol, request.qty, request.side, request.type,
                    request.time_in_force, request.limit_price, request.client_order_id,
                    request, reserve_price, replaces=order.id)
        new.change, new.updated_at = change, new.created_at
        new.via_router = self._marketable(request)
        link = self.links[child.venue]
        try:
            if new.via_router:
                link.cancel(child)
            else:
                replacement = link.replace(child, new, request.qty, request.limit_price,
                                           request.time_in_force)
                replacement.nbbo = self._nbbo_prices(request.symbol)
        except VenueDown as exc:
            raise RetailError(ErrorCode.NO_ROUTE, f"{exc}; the order is unchanged") from None
        # From here on nothing can refuse: the account holds the larger need of the two.
        new.reserved = max(0, need - order.reserved)
        self.accounts.hold(account, new.symbol, new.side, new.reserved)
        self.by_user[user][new.client_order_id] = self.orders[new.id] = new
        order.replacing = new
        self.audit.record("ORDER_REPLACE_REQUESTED", order, received_ns, trace_id,
                          replacement={"order_id": new.id, "qty": new.qty,
                                       "limit_price": format_dollars(new.limit_price),
                                       "time_in_force": new.time_in_force,
                                       "how": "route" if new.via_router else "venue_replace",
                                       "venue": child.venue},
                          risk_check=risk)
        self._set_status(order, "pending_replace", "pending_replace")
        return new

    def _same_replace(self, user, order, change):
        """The replacing order of a retried request, or None; 409 for a reused
        ``client_order_id`` with other changes."""
        coid = change.client_order_id
        mine = self.by_user.get(user, {})
        if coid is not None and coid in mine:
            existing = mine[coid]
            if existing.replaces == order.id and existing.change == change:
                return existing
            raise RetailError(ErrorCode.CONFLICT,
                              f"client_order_id {coid!r} was used for a different order")
        latest = order.replacing or self.orders.get(order.replaced_by)
        if latest is not None and latest.change == change:
            return latest
        return None

    def _replaceable(self, order):
        """The order's posted child order, or RetailError saying why it cannot be replaced."""
        if order.replacing is not None:
            raise RetailError(ErrorCode.NOT_REPLACEABLE,
                              f"order {order.id} has a replace pending already")
        if order.status not in ("new", "partially_filled") or order.cancel_requested:
            raise RetailError(ErrorCode.NOT_REPLACEABLE,
                              f"order {order.id} is {order.status} and cannot be replaced")
        posted = [c for c in order.children if c.leaves]
        if not order.routed or len(posted) != 1 or posted[0].tif not in REPLACE_TIFS:
            raise RetailError(ErrorCode.NOT_REPLACEABLE,
                              f"order {order.id} is still being routed; try again")
        return posted[0]

    def _marketable(self, request):
        nbbo = self.book.get(request.symbol)
        if nbbo is None:
            return False
        if request.side == "buy":
            return nbbo.ask is not None and request.limit_price >= nbbo.ask.price
        return nbbo.bid is not None and request.limit_price <= nbbo.bid.price

    def _nbbo_prices(self, symbol):
        nbbo = self.book.get(symbol)
        if nbbo is None:
            return (None, None)
        return (nbbo.bid.price if nbbo.bid else None, nbbo.ask.price if nbbo.ask else None)

    # -- the venue's answers ----------------------------------------------------------------

    def on_replaced(self, child, replacement):
        """The venue replaced ``child``: the replacing order now rests there."""
        new = replacement.parent
        new.children.append(replacement)
        new.routed = True
        self._replace_done(self.orders[new.replaces], new)

    def on_replace_rejected(self, child, replacement, reason):
        """The venue refused the replace (the old order stands, if it still lives)."""
        new = replacement.parent
        self._replace_refused(self.orders[new.replaces], new, reason)

    def _replaced_by_router(self, order, child):
        """The old order's child has ended while its replacement waits for the cancel."""
        new = order.replacing
        if child.reason == "canceled" and order.leaves:
            self._replace_done(order, new)
            task = asyncio.get_running_loop().create_task(self._route(new))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self._replace_refused(order, new, f"too late to replace: the order was "
                                  f"{child.reason} first")

    def _replace_done(self, order, new):
        account = self.accounts.get(order.user)
        need = new.qty * new.reserve_price if new.side == "buy" else new.qty
        pool = order.reserved + new.reserved
        if need > pool:
            self.accounts.hold(account, new.symbol, new.side, need - pool)
        else:
            self.accounts.release(account, new.symbol, new.side, pool - need)
        order.reserved, new.reserved = 0, need
        order.replacing, order.replaced_by = None, new.id
        order.replaced_at = time.time_ns()
        self.audit.record("ORDER_REPLACED", order, replaced_by=new.id)
        self._set_status(order, "replaced", "replaced")
        self._set_status(new, "new", "new")

    def _replace_refused(self, order, new, reason):
        order.replacing = None
        self._release(new)
        self.audit.record("ORDER_REPLACE_REJECTED", order, replacement=new.id, reason=reason)
        if order.status == "pending_replace":
            order.status = "partially_filled" if order.filled_qty else "new"
        self._set_status(order, order.status, "order_replace_rejected")
        new.failed_at = time.time_ns()
        new.reject_reason = reason
        self._set_status(new, "rejected", "rejected")
