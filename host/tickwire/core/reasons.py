"""Why a request was refused or an order cancelled: one protocol-neutral vocabulary.

Every refusal in the venue names a :class:`Reason`, whoever made it: the engine (its link
reasons, same numbers), the exchange's host checks, pre-trade risk, the venue itself (engine
down) or a gateway that could not turn a client's message into a request. Each gateway maps
these to its protocol's codes (OUCH letters: :mod:`tickwire.gateways.ouch.reasons`); the core
never knows those codes.

The numbers are part of the journal format (:mod:`tickwire.core.codec`): never renumber a
member, only add new ones.
"""

import enum

from tickwire.protocol.link import REASON_TEXT
from tickwire.protocol.link import Reason as LinkReason

__all__ = ["Reason", "Origin", "engine_reason"]


class Origin(enum.Enum):
    """Who refused: the first digit of a reason's number range."""
    ENGINE = "engine"       # 1..127: the link's reason letters
    HOST = "host"           # 128..159: the exchange's own checks
    RISK = "risk"           # 160..191: pre-trade risk (SEC 15c3-5)
    VENUE = "venue"         # 192..223: the venue's state
    GATEWAY = "gateway"     # 224..255: a client message that makes no valid request


class Reason(enum.IntEnum):
    """A protocol-neutral reject or cancel reason (see the module docstring)."""
    # The engine's (values are the link's reason letters).
    UNKNOWN_SYMBOL = int(LinkReason.UNKNOWN_SYMBOL)
    HALTED = int(LinkReason.HALTED)
    OUT_OF_BAND = int(LinkReason.OUT_OF_BAND)
    BAD_QTY = int(LinkReason.BAD_QTY)
    BAD_MIN_QTY = int(LinkReason.BAD_MIN_QTY)
    BOOK_FULL = int(LinkReason.BOOK_FULL)
    BAD_DECLARATION = int(LinkReason.BAD_DECLARATION)
    USER = int(LinkReason.USER)
    IOC = int(LinkReason.IOC)
    FOK = int(LinkReason.FOK)
    MIN_QTY = int(LinkReason.MIN_QTY)
    SELF_TRADE = int(LinkReason.SELF_TRADE)
    BREAKER = int(LinkReason.BREAKER)
    EXPIRED = int(LinkReason.EXPIRED)
    NOT_FOUND = int(LinkReason.NOT_FOUND)
    NOTHING_TO_CANCEL = int(LinkReason.NOTHING_TO_CANCEL)
    OPERATOR = int(LinkReason.OPERATOR)
    # The exchange's host checks (the request never reaches the engine).
    DUPLICATE_TOKEN = 128
    UNKNOWN_TOKEN = 129
    PRICE_OFF_TICK = 130
    UNLISTED_SYMBOL = 131
    ALREADY_DECLARED = 132
    REFERENCE_OFF_TICK = 133
    # Pre-trade risk, in the order the checks run.
    KILL_SWITCH = 160
    THROTTLE = 161
    RESTRICTED = 162
    MAX_QTY = 163
    COLLAR = 164
    MAX_NOTIONAL = 165
    CREDIT = 166
    POSITION = 167
    # The venue.
    ENGINE_DOWN = 192
    # A gateway: the client's message is well formed but asks for something invalid.
    WRONG_FIRM = 224
    BAD_SIDE = 225
    MARKET_REPLACE = 226
    UNSUPPORTED = 227
    INVALID_DISPLAY = 228
    INVALID_FIELD = 229
    INVALID_QTY = 230

    @property
    def origin(self):
        return _ORIGINS[self.value >> 5] if self.value >= 128 else Origin.ENGINE

    @property
    def text(self):
        """A short English description (logs, decision log, reports)."""
        return _TEXT[self]


_ORIGINS = {4: Origin.HOST, 5: Origin.RISK, 6: Origin.VENUE, 7: Origin.GATEWAY}
_TEXT = {
    **{r: REASON_TEXT[LinkReason(r.value)] for r in Reason if r.value < 128},
    Reason.DUPLICATE_TOKEN: "duplicate token", Reason.UNKNOWN_TOKEN: "unknown token",
    Reason.PRICE_OFF_TICK: "price off the tick", Reason.UNLISTED_SYMBOL: "unknown symbol",
    Reason.ALREADY_DECLARED: "symbol already declared",
    Reason.REFERENCE_OFF_TICK: "reference price off the tick",
    Reason.KILL_SWITCH: "kill switch", Reason.THROTTLE: "order-rate throttle",
    Reason.RESTRICTED: "restricted symbol", Reason.MAX_QTY: "max order quantity",
    Reason.COLLAR: "price collar", Reason.MAX_NOTIONAL: "max order notional",
    Reason.CREDIT: "credit limit", Reason.POSITION: "position limit",
    Reason.ENGINE_DOWN: "engine down", Reason.WRONG_FIRM: "not the account's firm",
    Reason.BAD_SIDE: "invalid side", Reason.MARKET_REPLACE: "market price on a replace",
    Reason.UNSUPPORTED: "request not supported", Reason.INVALID_DISPLAY: "invalid display",
    Reason.INVALID_FIELD: "invalid field value", Reason.INVALID_QTY: "invalid quantity",
}
_BY_LINK = {int(r): r for r in Reason if r.value < 128}


def engine_reason(link_value):
    """The :class:`Reason` of an engine event's reason byte (ValueError if it has none)."""
    reason = _BY_LINK.get(link_value)
    if reason is None:
        raise ValueError(f"engine reason {link_value!r} has no neutral reason")
    return reason
