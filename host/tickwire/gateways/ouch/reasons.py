"""The neutral reasons (:class:`~tickwire.core.reasons.Reason`) as OUCH 4.2 codes.

Every reason maps to one Reject Reason (``J`` Rejected) and, for cancels, one Cancel Reason
(``C`` Canceled); a reason missing from a table gets that table's default.
"""

from tickwire.core.reasons import Reason as R

__all__ = ["REJECT_CODES", "CANCEL_CODES", "reject_code", "cancel_code"]

#: Reason → OUCH Reject Reason.
REJECT_CODES = {
    # the engine's
    R.UNKNOWN_SYMBOL: "S", R.HALTED: "H", R.OUT_OF_BAND: "X", R.BAD_QTY: "Z",
    R.BAD_MIN_QTY: "N", R.BOOK_FULL: "O",
    # the exchange's host checks
    R.DUPLICATE_TOKEN: "O", R.UNKNOWN_TOKEN: "O", R.PRICE_OFF_TICK: "X",
    R.UNLISTED_SYMBOL: "S", R.ALREADY_DECLARED: "O", R.REFERENCE_OFF_TICK: "O",
    # pre-trade risk
    R.KILL_SWITCH: "a", R.THROTTLE: "O", R.RESTRICTED: "c", R.MAX_QTY: "Z", R.COLLAR: "X",
    R.MAX_NOTIONAL: "n", R.CREDIT: "n", R.POSITION: "m",
    # the venue, the gateway
    R.ENGINE_DOWN: "C", R.WRONG_FIRM: "O", R.BAD_SIDE: "O", R.MARKET_REPLACE: "X",
    R.UNSUPPORTED: "O", R.INVALID_DISPLAY: "D", R.INVALID_FIELD: "O", R.INVALID_QTY: "O",
}
DEFAULT_REJECT_CODE = "O"

#: Reason → OUCH Cancel Reason.
CANCEL_CODES = {
    R.USER: "U", R.IOC: "I", R.FOK: "I", R.MIN_QTY: "I", R.SELF_TRADE: "Q", R.BREAKER: "H",
    R.EXPIRED: "E", R.HALTED: "H", R.OPERATOR: "S", R.KILL_SWITCH: "S",
}
DEFAULT_CANCEL_CODE = "Z"


def reject_code(reason):
    return REJECT_CODES.get(reason, DEFAULT_REJECT_CODE)


def cancel_code(reason):
    return CANCEL_CODES.get(reason, DEFAULT_CANCEL_CODE)
