"""Exchange reports → OUCH 4.2 outbound messages (the bytes inside SoupBinTCP ``S`` packets).

=================  =====================================================================
report             OUCH message
=================  =====================================================================
accepted           ``A`` Accepted: the order as entered (side, TIF, display, capacity,
                   minimum quantity, cross type as the client sent them), the ITCH order
                   reference number, order state ``L``
replaced           ``U`` Replaced: the replacement's token, shares and price, its new
                   reference number, the previous token
executed           ``E`` Executed: shares, price, liquidity ``A`` (resting) / ``R``
                   (aggressor), match number
canceled           ``C`` Canceled: decrement shares, reason from :data:`CANCEL_REASONS`
                   (kill-switch cancels: ``S`` supervisory)
rejected           ``J`` Rejected: reason from :data:`REJECT_REASONS` (engine reasons) or
                   :data:`HOST_REJECT_REASONS` (the host's); risk rejects carry their own
cancel_rejected    ``I`` Cancel Reject
=================  =====================================================================

Timestamps are the command's (ns since midnight), so a replay rebuilds the same bytes.
"""

from tickwire.gateways.ouch import wire as ouch
from tickwire.protocol.link import Reason

__all__ = ["CANCEL_REASONS", "REJECT_REASONS", "HOST_REJECT_REASONS", "report_message",
           "system_event", "rejected", "cancel_reject"]

#: link Reason letter → OUCH Cancel Reason
CANCEL_REASONS = {
    chr(Reason.USER): "U", chr(Reason.IOC): "I", chr(Reason.FOK): "I", chr(Reason.MIN_QTY): "I",
    chr(Reason.SELF_TRADE): "Q", chr(Reason.BREAKER): "H", chr(Reason.EXPIRED): "E",
    chr(Reason.HALTED): "H", chr(Reason.OPERATOR): "S",
}
#: link Reason letter → OUCH Reject Reason
REJECT_REASONS = {
    chr(Reason.UNKNOWN_SYMBOL): "S", chr(Reason.HALTED): "H", chr(Reason.OUT_OF_BAND): "X",
    chr(Reason.BAD_QTY): "Z", chr(Reason.BAD_MIN_QTY): "N", chr(Reason.BOOK_FULL): "O",
}
#: Exchange host-reject text → OUCH Reject Reason
HOST_REJECT_REASONS = {
    "duplicate token": "O", "price off the tick": "X", "unknown symbol": "S",
    "unknown token": "O",
}

_ACCEPTED = ouch.OUTBOUND[b"A"].encode
_EXECUTED = ouch.OUTBOUND[b"E"].encode
_CANCELED = ouch.OUTBOUND[b"C"].encode
_REJECTED = ouch.OUTBOUND[b"J"].encode


def _order_fields(meta, shares, price):
    return dict(
        buy_sell_indicator=meta["side"], shares=shares, stock=meta["symbol"],
        price=ouch.MARKET_PRICE if price is None else price, time_in_force=meta["tif"],
        firm=meta["firm"], display=meta["display"], capacity=meta["capacity"],
        intermarket_sweep_eligibility=meta["ise"], minimum_quantity=meta["min_qty"],
        cross_type=meta["cross"], order_state="L", bbo_weight_indicator=" ")


def report_message(report, meta, kill=False):
    """OUCH outbound bytes for one :class:`~tickwire.exchange.Report`.

    Parameters
    ----------
    meta : dict
        The order as entered (keys side, symbol, tif, firm, display, capacity, ise, min_qty,
        cross, price: 1/10000 $ or None for market).
    kill : bool
        The report is a cancel made by the kill switch.
    """
    kind, ts = report.type, report.timestamp
    if kind == "accepted":
        price = meta["price"]
        return _ACCEPTED(
            timestamp=ts, order_token=report.token, order_reference_number=report.order_id,
            buy_sell_indicator=meta["side"], shares=report.qty, stock=meta["symbol"],
            price=ouch.MARKET_PRICE if price is None else price, time_in_force=meta["tif"],
            firm=meta["firm"], display=meta["display"], capacity=meta["capacity"],
            intermarket_sweep_eligibility=meta["ise"], minimum_quantity=meta["min_qty"],
            cross_type=meta["cross"], order_state="L", bbo_weight_indicator=" ")
    if kind == "executed":
        return _EXECUTED(timestamp=ts, order_token=report.token, executed_shares=report.qty,
                         execution_price=report.price, liquidity_flag=report.liquidity,
                         match_number=report.match)
    if kind == "canceled":
        reason = "S" if kill else CANCEL_REASONS.get(report.reason, "Z")
        return _CANCELED(timestamp=ts, order_token=report.token, decrement_shares=report.qty,
                         cancel_reason=reason)
    if kind == "replaced":
        return ouch.encode_outbound(
            b"U", timestamp=ts, replacement_order_token=report.token,
            order_reference_number=report.order_id,
            previous_order_token=report.extra.get("previous_token", ""),
            **_order_fields(meta, report.qty, report.price))
    if kind == "rejected":
        if report.reason == "host":
            reason = HOST_REJECT_REASONS.get(report.extra.get("text"), "O")
        else:
            reason = REJECT_REASONS.get(report.reason, "O")
        return rejected(ts, report.token, reason)
    if kind == "cancel_rejected":
        return cancel_reject(ts, report.token)
    raise ValueError(f"no OUCH message for report type {kind!r}")


def rejected(ts, token, reason):
    return _REJECTED(timestamp=ts, order_token=token, reject_reason=reason)


def cancel_reject(ts, token):
    return ouch.encode_outbound(b"I", timestamp=ts, order_token=token)


def system_event(ts, code):
    """OUCH ``S`` System Event (``"S"`` start of day, ``"E"`` end of day)."""
    return ouch.encode_outbound(b"S", timestamp=ts, event_code=code)
