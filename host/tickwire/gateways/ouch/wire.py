"""Nasdaq OUCH 4.2 order entry messages (protocols.md §4).

``U``, ``M`` and ``N`` mean different messages in each direction, so there are two tables:
:data:`INBOUND` (client to exchange, inside SoupBinTCP ``U``) and :data:`OUTBOUND` (exchange to
client, inside SoupBinTCP ``S``, each starting with a U64 ``timestamp`` in ns since midnight).
"""

import enum

from tickwire.protocol.fields import P4, U32, U64, A, C, MessageSet, MessageSpec

__all__ = [
    "INBOUND", "OUTBOUND", "encode_inbound", "decode_inbound", "encode_outbound",
    "decode_outbound", "MARKET_PRICE", "ANSWER_TOKEN",
    "TimeInForce", "Side", "Display", "Capacity", "CrossType", "OrderState", "EventCode",
    "CancelReason", "RejectReason", "BrokenTradeReason", "LiquidityFlag",
]

MARKET_PRICE = 0x7FFF_FFFF
"""Price shown as "Market" by Wireshark."""

_TOKEN = A("order_token", 14)
_ORDER = (C("buy_sell_indicator"), U32("shares"), A("stock", 8), P4("price"),
          U32("time_in_force"), A("firm", 4), C("display"))
_ACCEPTED = (*_ORDER, U64("order_reference_number"), C("capacity"),
             C("intermarket_sweep_eligibility"), U32("minimum_quantity"), C("cross_type"),
             C("order_state"))
_EXECUTION = (_TOKEN, U32("executed_shares"), P4("execution_price"), C("liquidity_flag"),
              U64("match_number"))

INBOUND = MessageSet([
    MessageSpec(b"O", "EnterOrder", [
        _TOKEN, *_ORDER, C("capacity"), C("intermarket_sweep_eligibility"),
        U32("minimum_quantity"), C("cross_type"), C("customer_type", default=" ")]),
    MessageSpec(b"U", "ReplaceOrder", [
        A("existing_order_token", 14), A("replacement_order_token", 14), U32("shares"),
        P4("price"), U32("time_in_force"), C("display"), C("intermarket_sweep_eligibility"),
        U32("minimum_quantity")]),
    MessageSpec(b"X", "CancelOrder", [_TOKEN, U32("shares")]),
    MessageSpec(b"M", "ModifyOrder", [_TOKEN, C("buy_sell_indicator"), U32("shares")]),
    MessageSpec(b"N", "TradeNow", [_TOKEN]),
], "OUCH 4.2 inbound")

_OUTBOUND = [
    (b"S", "SystemEvent", [C("event_code")]),
    (b"A", "Accepted", [_TOKEN, *_ACCEPTED, C("bbo_weight_indicator")]),
    (b"U", "Replaced", [A("replacement_order_token", 14), *_ACCEPTED,
                        A("previous_order_token", 14), C("bbo_weight_indicator")]),
    (b"C", "Canceled", [_TOKEN, U32("decrement_shares"), C("cancel_reason")]),
    (b"D", "AiqCanceled", [
        _TOKEN, U32("decrement_shares"), C("cancel_reason"),
        U32("quantity_prevented_from_trading"), P4("execution_price"), C("liquidity_flag")]),
    (b"E", "Executed", [*_EXECUTION]),
    (b"B", "BrokenTrade", [_TOKEN, U64("match_number"), C("broken_trade_reason")]),
    (b"G", "ExecutedWithReferencePrice", [
        *_EXECUTION, P4("reference_price"), C("reference_price_type")]),
    (b"F", "TradeCorrection", [*_EXECUTION, C("trade_correction_reason")]),
    (b"J", "Rejected", [_TOKEN, C("reject_reason")]),
    (b"P", "CancelPending", [_TOKEN]),
    (b"I", "CancelReject", [_TOKEN]),
    (b"T", "OrderPriorityUpdate", [
        _TOKEN, P4("price"), C("display"), U64("order_reference_number")]),
    (b"M", "OrderModified", [_TOKEN, C("buy_sell_indicator"), U32("shares")]),
    (b"N", "SequencedTradeNow", [_TOKEN]),
    (b"K", "PriceCorrection", [
        _TOKEN, U64("match_number"), P4("new_execution_price"), C("price_correction_reason")]),
]

OUTBOUND = MessageSet(
    (MessageSpec(code, name, [U64("timestamp"), *fields]) for code, name, fields in _OUTBOUND),
    "OUCH 4.2 outbound")

_TOKEN_AT = OUTBOUND[b"A"].offsets["order_token"]
#: Where an answer (Accepted, Canceled, Rejected, Cancel Reject; a Replaced's replacement
#: token) carries its order token: for readers that time answers without decoding them.
ANSWER_TOKEN = slice(_TOKEN_AT, _TOKEN_AT + _TOKEN.length)

encode_inbound = INBOUND.encode
decode_inbound = INBOUND.decode
encode_outbound = OUTBOUND.encode
decode_outbound = OUTBOUND.decode


class TimeInForce(enum.IntEnum):
    """Special Time in Force values; any other value is a lifetime in seconds."""

    IMMEDIATE_OR_CANCEL = 0
    MARKET_HOURS = 99998
    SYSTEM_HOURS = 99999


class Side(enum.StrEnum):
    BUY = "B"
    SELL = "S"
    SELL_SHORT = "T"
    SELL_SHORT_EXEMPT = "E"


class Display(enum.StrEnum):
    ATTRIBUTABLE = "A"
    ANONYMOUS = "Y"
    NON_DISPLAY = "N"
    POST_ONLY = "P"
    IMBALANCE_ONLY = "I"
    MIDPOINT_PEG = "M"
    MIDPOINT_PEG_POST_ONLY = "W"
    POST_ONLY_ATTRIBUTABLE = "L"
    RETAIL_ORDER_TYPE_1 = "O"
    RETAIL_ORDER_TYPE_2 = "T"
    RETAIL_PRICE_IMPROVEMENT = "Q"


class Capacity(enum.StrEnum):
    AGENCY = "A"
    PRINCIPAL = "P"
    RISKLESS = "R"
    OTHER = "O"


class CrossType(enum.StrEnum):
    NO_CROSS = "N"
    OPENING = "O"
    CLOSING = "C"
    HALT_OR_IPO = "H"
    SUPPLEMENTAL = "S"
    RETAIL = "R"


class OrderState(enum.StrEnum):
    LIVE = "L"
    DEAD = "D"


class EventCode(enum.StrEnum):
    """Event Code of outbound ``S``."""

    START_OF_DAY = "S"
    END_OF_DAY = "E"


class CancelReason(enum.StrEnum):
    """Cancel Reason of ``C`` and ``D``."""

    USER_REQUESTED = "U"
    IMMEDIATE_OR_CANCEL = "I"
    TIMEOUT = "T"
    SUPERVISORY = "S"
    REGULATORY_RESTRICTION = "D"
    SELF_MATCH_PREVENTION = "Q"
    SYSTEM_CANCEL = "Z"
    CROSS_CANCELED = "C"
    HALTED = "H"
    OPEN_PROTECTION = "X"
    CLOSED = "E"
    MARKET_COLLARS = "K"


class RejectReason(enum.StrEnum):
    """Reject Reason of ``J``."""

    TEST_MODE = "T"
    HALTED = "H"
    SHARES_EXCEED_SAFETY_THRESHOLD = "Z"
    INVALID_STOCK = "S"
    INVALID_DISPLAY_TYPE = "D"
    NASDAQ_CLOSED = "C"
    CLEARING_TYPE_NOT_AUTHORIZED = "L"
    OUTSIDE_CLEARING_TYPE_TIMES = "M"
    NOT_ALLOWED_IN_CROSS = "R"
    INVALID_PRICE = "X"
    INVALID_MINIMUM_QUANTITY = "N"
    OTHER = "O"
    INVALID_MIDPOINT_POST_ONLY_PRICE = "W"
    REJECT_ALL_ENABLED = "a"
    EASY_TO_BORROW = "b"
    RESTRICTED_SYMBOL = "c"
    ISO_RESTRICTION = "d"
    ODD_LOT_RESTRICTION = "e"
    MIDPOINT_RESTRICTION = "f"
    PRE_MARKET_RESTRICTION = "g"
    POST_MARKET_RESTRICTION = "h"
    SHORT_SALE_RESTRICTION = "i"
    ON_OPEN_RESTRICTION = "j"
    ON_CLOSE_RESTRICTION = "k"
    TWO_SIDED_QUOTE = "l"
    SHARES_LIMIT_EXCEEDED = "m"
    DOLLAR_VALUE_LIMIT_EXCEEDED = "n"


class BrokenTradeReason(enum.StrEnum):
    """Broken Trade Reason of ``B`` (also Price Correction Reason of ``K``)."""

    ERRONEOUS = "E"
    CONSENT = "C"
    SUPERVISORY = "S"
    EXTERNAL = "X"


class LiquidityFlag(enum.StrEnum):
    """Liquidity Flag of executions (tshark 4.0 wording)."""

    ADDED = "A"
    REMOVED = "R"
    OPENING_CROSS = "O"
    OPENING_CROSS_IMBALANCE_ONLY = "M"
    CLOSING_CROSS = "C"
    CLOSING_CROSS_IMBALANCE_ONLY = "L"
    HALT_OR_IPO_CROSS = "H"
    HALT_CROSS = "K"
    NON_DISPLAYED_ADDING = "J"
    ADDED_POST_ONLY = "W"
    ADDED_MIDPOINT = "k"
    REMOVED_MIDPOINT = "m"
    SUPPLEMENTAL_EXECUTION = "0"
    DISPLAYED_IMPROVING_NBBO = "7"
    DISPLAYED_SETTING_QBBO = "8"
    RETAIL_REMOVED = "d"
    RETAIL_ADDED_DISPLAYED = "e"
    RETAIL_ADDED_NON_DISPLAYED = "f"
    RPI_PROVIDES_LIQUIDITY = "j"
    RETAIL_REMOVES_RPI = "r"
    RETAIL_REMOVES_PRICE_IMPROVING = "t"
    GROUP_A_ADDED_DISPLAYED = "4"
    GROUP_A_ADDED_NON_DISPLAYED = "5"
    GROUP_A_REMOVED = "6"
    GROUP_A_ADDED_MIDPOINT = "g"
