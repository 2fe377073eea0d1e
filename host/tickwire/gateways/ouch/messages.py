"""Neutral reports → OUCH 4.2 outbound messages (the bytes inside SoupBinTCP ``S`` packets).

=================  =====================================================================
report             OUCH message
=================  =====================================================================
accepted           ``A`` Accepted: the order as entered (side, TIF, display, capacity,
                   minimum quantity, cross type as the client sent them: an
                   :class:`Entered`), the ITCH order reference number, order state ``L``
replaced           ``U`` Replaced: the replacement's token, shares and price, its new
                   reference number, the previous token
executed           ``E`` Executed: shares, price, liquidity ``A`` (resting) / ``R``
                   (aggressor), match number
canceled           ``C`` Canceled: decrement shares, reason from
                   :data:`~tickwire.gateways.ouch.reasons.CANCEL_CODES`
rejected           ``J`` Rejected: reason from
                   :data:`~tickwire.gateways.ouch.reasons.REJECT_CODES`
cancel_rejected    ``I`` Cancel Reject
system             ``S`` System Event (``S`` start of day, ``E`` end of day)
=================  =====================================================================

Timestamps are the request's (ns since midnight), so a replay rebuilds the same bytes.
"""

from dataclasses import dataclass

from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.reasons import cancel_code, reject_code

__all__ = ["Entered", "report_message", "rejected", "cancel_reject", "system_event"]

_ACCEPTED = ouch.OUTBOUND[b"A"].encode
_EXECUTED = ouch.OUTBOUND[b"E"].encode
_CANCELED = ouch.OUTBOUND[b"C"].encode
_REJECTED = ouch.OUTBOUND[b"J"].encode
_REPLACED = ouch.OUTBOUND[b"U"].encode


@dataclass(frozen=True, slots=True)
class Entered:
    """An order as its client entered it: what Accepted and Replaced echo back."""
    side: str
    tif: int
    display: str
    capacity: str
    ise: str
    min_qty: int
    cross: str
    symbol: str
    firm: str


def report_message(report, entered=None, price=None):
    """OUCH outbound bytes for one :class:`~tickwire.core.reports.Report`.

    Parameters
    ----------
    entered : Entered
        ``accepted``, ``replaced``: the order as entered.
    price : int
        ``accepted``: the price as entered (``MARKET_PRICE`` for a market order).
    """
    # Each message's fields spelled out: a dict of the entered fields merged in with ** cost
    # ~1 µs per Accepted.
    kind, ts = report.type, report.timestamp
    if kind == "executed":
        return _EXECUTED(timestamp=ts, order_token=report.token, executed_shares=report.qty,
                         execution_price=report.price, liquidity_flag=report.liquidity,
                         match_number=report.match)
    if kind == "accepted":
        return _ACCEPTED(
            timestamp=ts, order_token=report.token, buy_sell_indicator=entered.side,
            shares=report.qty, stock=entered.symbol, price=price, time_in_force=entered.tif,
            firm=entered.firm, display=entered.display, order_reference_number=report.order_id,
            capacity=entered.capacity, intermarket_sweep_eligibility=entered.ise,
            minimum_quantity=entered.min_qty, cross_type=entered.cross, order_state="L",
            bbo_weight_indicator=" ")
    if kind == "canceled":
        return _CANCELED(timestamp=ts, order_token=report.token, decrement_shares=report.qty,
                         cancel_reason=cancel_code(report.reason))
    if kind == "replaced":
        return _REPLACED(
            timestamp=ts, replacement_order_token=report.token, buy_sell_indicator=entered.side,
            shares=report.qty, stock=entered.symbol, price=report.price,
            time_in_force=entered.tif, firm=entered.firm, display=entered.display,
            order_reference_number=report.order_id, capacity=entered.capacity,
            intermarket_sweep_eligibility=entered.ise, minimum_quantity=entered.min_qty,
            cross_type=entered.cross, order_state="L",
            previous_order_token=report.previous_token or "", bbo_weight_indicator=" ")
    if kind == "rejected":
        return rejected(ts, report.token, reject_code(report.reason))
    if kind == "cancel_rejected":
        return cancel_reject(ts, report.token)
    if kind == "system":
        return system_event(ts, report.code)
    raise ValueError(f"no OUCH message for report type {kind!r}")


def rejected(ts, token, reason):
    return _REJECTED(timestamp=ts, order_token=token, reject_reason=reason)


def cancel_reject(ts, token):
    return ouch.encode_outbound(b"I", timestamp=ts, order_token=token)


def system_event(ts, code):
    """OUCH ``S`` System Event (``"S"`` start of day, ``"E"`` end of day)."""
    return ouch.encode_outbound(b"S", timestamp=ts, event_code=code)
