"""Pre-trade risk controls (SEC rule 15c3-5), per account and per firm.

Every order entry and replace is checked against the limits of its account and of its firm
(:class:`~tickwire.accounts.config.Limits`), in this order, the first failure giving the
(protocol-neutral) reject reason:

===================  ================  ===================================================
check                reason            rule
===================  ================  ===================================================
kill switch          ``KILL_SWITCH``   the account or its firm is killed (reject-all)
order-rate throttle  ``THROTTLE``      more than ``max_orders_per_sec`` (token bucket)
restricted list      ``RESTRICTED``    symbol on the exchange's, firm's or account's list
max order qty        ``MAX_QTY``       shares above ``max_order_qty`` (safety threshold)
price collar         ``COLLAR``        limit price more than ``collar_bp`` from the reference
max order notional   ``MAX_NOTIONAL``  the order's notional above ``max_order_notional``
credit limit         ``CREDIT``        open + executed + this order above ``credit_limit``
position limit       ``POSITION``      worst-case position in the symbol above the limit
===================  ================  ===================================================

Money is integers throughout: prices and notionals in 1/10000 $ (shares × price), the collar
in basis points.

The reference price is the symbol's last trade, or its declared reference. Exposure is kept
from the exchange's reports (:meth:`RiskManager.on_report`): open orders (price × open shares;
market orders at the reference), executed $ (both sides, gross) and net positions. Cancels are
never refused. The kill switch (:meth:`RiskManager.set_kill`) blocks new orders; cancelling the
open ones is the sequencer's part.

Every decision is appended to the decision log, one compact JSON object a line (UTF-8;
encoded by msgspec, about a tenth of ``json.dumps``'s cost on the order path)::

    {"time":1716900000.123,"ts":34200000001000,"account":"alice","firm":"F01","op":"new",
    "token":"T1","symbol":"AAPL","side":"B","qty":100,"price":1502500,"ok":false,
    "reason":"credit","text":"firm F01: exposure ..."}

(one line in the file; a kill switch change is ``{"time":…,"ts":…,"op":"kill","account"`` or
``"firm":NAME,"on":true|false}``).
"""

import time
from collections import defaultdict
from typing import NamedTuple

import msgspec

from tickwire.accounts.config import Limits
from tickwire.core.money import format_dollars, format_price
from tickwire.core.reasons import Reason

__all__ = ["RiskManager", "Decision"]


class Decision(NamedTuple):
    """A risk decision: ``ok``, and if not, the reason and a text."""
    ok: bool
    reason: Reason | None = None
    text: str = ""


_OK = Decision(True)
_NO_LIMITS = Limits()
_JSON = msgspec.json.Encoder()


class _Exposure:
    __slots__ = ("open_notional", "executed_notional", "positions", "open_qty")

    def __init__(self):
        self.open_notional = 0          # 1/10000 $
        self.executed_notional = 0
        self.positions = defaultdict(int)       # symbol -> net shares
        self.open_qty = defaultdict(int)        # (symbol, side) -> open shares


class _Bucket:
    __slots__ = ("rate", "depth", "tokens", "stamp")

    def __init__(self, rate, depth, now):
        self.rate, self.depth, self.tokens, self.stamp = rate, depth, float(depth), now

    def take(self, now):
        self.tokens = min(self.depth, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RiskManager:
    """Pre-trade checks and exposure bookkeeping.

    Parameters
    ----------
    config : Config
        Accounts (with their limits), firm limits and the exchange's restricted list.
    decision_log : str or file, optional
        Path (opened for append) or text file of the JSON-lines decision log.
    clock : callable
        Seconds, monotonic (the throttle's time).
    """

    def __init__(self, config, decision_log=None, clock=time.monotonic):
        self.config = config
        self.clock = clock
        self._own_log = isinstance(decision_log, str)
        self.log = open(decision_log, "a", encoding="utf-8") if self._own_log else decision_log
        self.killed = set()                  # ("account", name) / ("firm", name)
        self.accounts = defaultdict(_Exposure)
        self.firms = defaultdict(_Exposure)
        self.orders = {}                     # (firm, token) -> [account, symbol, side, qty, px]
        self.last = {}                       # symbol -> last trade price (1/10000 $)
        self._buckets = {}
        self._estimates = {}                 # (firm, token) -> price used for a market order
        self.decisions = 0
        self.rejects = defaultdict(int)

    # -- checks ----------------------------------------------------------------------------

    def check_new(self, account, token, symbol, side, qty, price, reference, ts=0, op="new",
                  replacing=None):
        """Check an order entry (or, with ``replacing`` = (firm, token), a replace).

        Parameters
        ----------
        account : Account
        side : str
            ``"B"`` or ``"S"``.
        price : int or None
            1/10000 $; None for a market order.
        reference : int or None
            The symbol's declared reference (1/10000 $), None if unknown.
        """
        decision = self._check(account, symbol, side, qty, price, reference, replacing)
        if decision.ok and price is None:
            self._estimates[account.firm, token] = self.last.get(symbol, reference) or 0
        self._record(account, op, token, symbol, side, qty, price, ts, decision)
        return decision

    def _check(self, account, symbol, side, qty, price, reference, replacing):
        firm = account.firm
        if ("account", account.username) in self.killed or ("firm", firm) in self.killed:
            return Decision(False, Reason.KILL_SWITCH, "kill switch")
        firm_limits = self.config.firms.get(firm, _NO_LIMITS)
        levels = ((account.limits, self.accounts[account.username], f"account {account.username}"),
                  (firm_limits, self.firms[firm], f"firm {firm}"))
        now = self.clock()
        for limits, _, who in levels:
            if limits.max_orders_per_sec:
                key = who
                bucket = self._buckets.get(key)
                if bucket is None:
                    depth = limits.burst or max(1, int(limits.max_orders_per_sec))
                    bucket = self._buckets[key] = _Bucket(limits.max_orders_per_sec, depth, now)
                if not bucket.take(now):
                    return Decision(False, Reason.THROTTLE,
                                    f"{who}: over {limits.max_orders_per_sec:g} orders/s")
        if symbol in self.config.restricted:
            return Decision(False, Reason.RESTRICTED, f"{symbol} is restricted")
        ref = self.last.get(symbol, reference)
        px = price if price is not None else ref
        notional = qty * (px or 0)
        old = self.orders.get(replacing) if replacing else None
        old_notional = old[3] * old[4] if old else 0
        old_qty = old[3] if old else 0
        for limits, exp, who in levels:
            if symbol in limits.restricted:
                return Decision(False, Reason.RESTRICTED, f"{who}: {symbol} is restricted")
            if limits.max_order_qty is not None and qty > limits.max_order_qty:
                return Decision(False, Reason.MAX_QTY,
                                f"{who}: {qty} shares above {limits.max_order_qty}")
            if limits.collar_bp is not None and price is not None and ref:
                if abs(price - ref) * 10000 > limits.collar_bp * ref:
                    return Decision(False, Reason.COLLAR,
                                    f"{who}: price {format_price(price)} outside "
                                    f"{limits.collar_bp} bp of {format_price(ref)}")
            if limits.max_order_notional is not None and notional > limits.max_order_notional:
                return Decision(False, Reason.MAX_NOTIONAL,
                                f"{who}: ${format_dollars(notional)} above "
                                f"${format_dollars(limits.max_order_notional)}")
            if limits.credit_limit is not None:
                total = exp.open_notional + exp.executed_notional + notional - old_notional
                if total > limits.credit_limit:
                    return Decision(False, Reason.CREDIT,
                                    f"{who}: exposure ${format_dollars(total)} above credit "
                                    f"limit ${format_dollars(limits.credit_limit)}")
            if limits.max_position is not None:
                pos = exp.positions[symbol]
                if side == "B":
                    worst = pos + exp.open_qty[symbol, "B"] + qty - old_qty
                else:
                    worst = pos - exp.open_qty[symbol, "S"] - qty + old_qty
                if abs(worst) > limits.max_position:
                    return Decision(False, Reason.POSITION,
                                    f"{who}: position {worst:+d} in {symbol} beyond "
                                    f"{limits.max_position}")
        return _OK

    def record_reject(self, account, op, token, symbol, reason, text, ts=0):
        """Log a decision taken elsewhere (e.g. the engine is down)."""
        self._record(account, op, token, symbol, None, None, None, ts,
                     Decision(False, reason, text))

    # -- kill switch ----------------------------------------------------------------------

    def set_kill(self, scope, name, on=True, ts=0):
        """Engage (or release) the kill switch of an ``"account"`` or a ``"firm"``."""
        if scope not in ("account", "firm"):
            raise ValueError(f"kill switch scope {scope!r} is not account or firm")
        (self.killed.add if on else self.killed.discard)((scope, name))
        if self.log is not None:
            self._write({"time": time.time(), "ts": ts, "op": "kill", scope: name, "on": on})

    # -- exposure --------------------------------------------------------------------------

    def on_report(self, account, report):
        """Update exposure from one exchange :class:`~tickwire.exchange.Report` of ``account``."""
        kind = report.type
        key = (report.firm, report.token)
        if kind == "accepted":
            price = report.price or self._estimates.pop(key, 0)
            self._open(account, report.symbol, report.side, key, report.qty, price)
        elif kind == "executed":
            order = self.orders.get(key)
            if report.price:
                self.last[report.symbol] = report.price
            if order is None:
                return
            acc, symbol, side = order[0], order[1], order[2]
            self._reduce(key, report.qty)
            for exp in (self.accounts[acc], self.firms[report.firm]):
                exp.executed_notional += report.qty * report.price
                exp.positions[symbol] += report.qty if side == "B" else -report.qty
        elif kind == "canceled":
            if key in self.orders:
                self._reduce(key, report.qty)
        elif kind == "replaced":
            old = (report.firm, report.previous_token)
            order = self.orders.get(old)
            if order is not None:
                self._reduce(old, order[3])
                self._open(order[0], order[1], order[2], key, report.qty, report.price)

    def _open(self, account, symbol, side, key, qty, price):
        self.orders[key] = [account, symbol, side, qty, price]
        for exp in (self.accounts[account], self.firms[key[0]]):
            exp.open_notional += qty * price
            exp.open_qty[symbol, side] += qty

    def _reduce(self, key, qty):
        order = self.orders[key]
        qty = min(qty, order[3])
        order[3] -= qty
        for exp in (self.accounts[order[0]], self.firms[key[0]]):
            exp.open_notional -= qty * order[4]
            exp.open_qty[order[1], order[2]] -= qty
        if not order[3]:
            del self.orders[key]

    def position(self, account, symbol):
        return self.accounts[account].positions[symbol]

    def exposure(self, account):
        """{"open": notional, "executed": notional, "positions": {symbol: shares}} of an
        account (notionals in 1/10000 $)."""
        exp = self.accounts[account]
        return {"open": exp.open_notional, "executed": exp.executed_notional,
                "positions": {s: q for s, q in sorted(exp.positions.items()) if q}}

    # -- log -------------------------------------------------------------------------------

    def _record(self, account, op, token, symbol, side, qty, price, ts, decision):
        self.decisions += 1
        if not decision.ok:
            self.rejects[decision.reason.name.lower()] += 1
        if self.log is None:
            return
        entry = {"time": round(time.time(), 6), "ts": ts, "account": account.username,
                 "firm": account.firm, "op": op, "token": token, "symbol": symbol,
                 "side": side, "qty": qty, "price": price, "ok": decision.ok}
        if not decision.ok:
            entry["reason"], entry["text"] = decision.reason.name.lower(), decision.text
        self._write(entry)

    def _write(self, entry):
        self.log.write(_JSON.encode(entry).decode() + "\n")

    def flush(self):
        if self.log is not None:
            self.log.flush()

    def close(self):
        if self.log is not None:
            self.log.flush()
            if self._own_log:
                self.log.close()
            self.log = None

