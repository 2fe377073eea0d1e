"""Nasdaq TotalView-ITCH 5.0: all 23 message types (protocols.md §1).

Every message starts with the 11-byte header ``stock_locate`` (U16), ``tracking_number`` (U16,
defaults to 0) and ``timestamp`` (U48, ns since midnight). Prices are raw integers with 4
implied decimals (8 for ``V``).

>>> raw = encode(b"D", stock_locate=1, timestamp=5, order_reference_number=7)
>>> decode(raw).order_reference_number
7
"""

import enum

from tickwire.protocol.fields import P4, P8, U16, U32, U48, U64, A, C, MessageSet, MessageSpec

__all__ = [
    "SPECS", "HEADER_LENGTH", "PRICE_MAX", "encode", "decode",
    "SystemEvent", "TradingState", "Side", "Printable", "CrossType",
]

HEADER_LENGTH = 11
PRICE_MAX = 200_000_0000
"""Largest Price(4): 200,000.0000."""

_HEADER = (U16("stock_locate"), U16("tracking_number", default=0), U48("timestamp"))

_BOOK = (U64("order_reference_number"), C("buy_sell_indicator"), U32("shares"), A("stock", 8),
         P4("price"))

_MESSAGES = [
    (b"S", "SystemEvent", [C("event_code")]),
    (b"R", "StockDirectory", [
        A("stock", 8), C("market_category"), C("financial_status_indicator"),
        U32("round_lot_size"), C("round_lots_only"), C("issue_classification"),
        A("issue_sub_type", 2), C("authenticity"), C("short_sale_threshold_indicator"),
        C("ipo_flag"), C("luld_reference_price_tier"), C("etp_flag"),
        U32("etp_leverage_factor"), C("inverse_indicator")]),
    (b"H", "StockTradingAction", [
        A("stock", 8), C("trading_state"), C("reserved", default=" "), A("reason", 4)]),
    (b"Y", "RegShoRestriction", [A("stock", 8), C("reg_sho_action")]),
    (b"L", "MarketParticipantPosition", [
        A("mpid", 4), A("stock", 8), C("primary_market_maker"), C("market_maker_mode"),
        C("market_participant_state")]),
    (b"V", "MwcbDeclineLevel", [P8("level_1"), P8("level_2"), P8("level_3")]),
    (b"W", "MwcbStatus", [C("breached_level")]),
    (b"K", "IpoQuotingPeriodUpdate", [
        A("stock", 8), U32("ipo_quotation_release_time"), C("ipo_quotation_release_qualifier"),
        P4("ipo_price")]),
    (b"J", "LuldAuctionCollar", [
        A("stock", 8), P4("auction_collar_reference_price"), P4("upper_auction_collar_price"),
        P4("lower_auction_collar_price"), U32("auction_collar_extension")]),
    (b"h", "OperationalHalt", [A("stock", 8), C("market_code"), C("operational_halt_action")]),
    (b"A", "AddOrder", [*_BOOK]),
    (b"F", "AddOrderMpid", [*_BOOK, A("attribution", 4)]),
    (b"E", "OrderExecuted", [
        U64("order_reference_number"), U32("executed_shares"), U64("match_number")]),
    (b"C", "OrderExecutedWithPrice", [
        U64("order_reference_number"), U32("executed_shares"), U64("match_number"),
        C("printable"), P4("execution_price")]),
    (b"X", "OrderCancel", [U64("order_reference_number"), U32("canceled_shares")]),
    (b"D", "OrderDelete", [U64("order_reference_number")]),
    (b"U", "OrderReplace", [
        U64("original_order_reference_number"), U64("new_order_reference_number"),
        U32("shares"), P4("price")]),
    (b"P", "Trade", [*_BOOK, U64("match_number")]),
    (b"Q", "CrossTrade", [
        U64("shares"), A("stock", 8), P4("cross_price"), U64("match_number"), C("cross_type")]),
    (b"B", "BrokenTrade", [U64("match_number")]),
    (b"I", "Noii", [
        U64("paired_shares"), U64("imbalance_shares"), C("imbalance_direction"), A("stock", 8),
        P4("far_price"), P4("near_price"), P4("current_reference_price"), C("cross_type"),
        C("price_variation_indicator")]),
    (b"N", "RetailInterest", [A("stock", 8), C("interest_flag")]),
    (b"O", "Dlcr", [
        A("stock", 8), C("open_eligibility_status"), P4("minimum_allowable_price"),
        P4("maximum_allowable_price"), P4("near_execution_price"), U64("near_execution_time"),
        P4("lower_price_range_collar"), P4("upper_price_range_collar")]),
]

SPECS = MessageSet(
    (MessageSpec(code, name, [*_HEADER, *fields]) for code, name, fields in _MESSAGES),
    "ITCH 5.0")
"""Type code (``b"A"``) to :class:`~.fields.MessageSpec`, in protocols.md §1.2 order."""

encode = SPECS.encode
decode = SPECS.decode


class SystemEvent(enum.StrEnum):
    """Event Code of ``S``."""

    START_OF_MESSAGES = "O"
    START_OF_SYSTEM_HOURS = "S"
    START_OF_MARKET_HOURS = "Q"
    END_OF_MARKET_HOURS = "M"
    END_OF_SYSTEM_HOURS = "E"
    END_OF_MESSAGES = "C"


class TradingState(enum.StrEnum):
    """Trading State of ``H``."""

    HALTED = "H"
    PAUSED = "P"
    QUOTATION_ONLY = "Q"
    TRADING = "T"


class Side(enum.StrEnum):
    """Buy/Sell Indicator of ``A``, ``F`` and ``P``."""

    BUY = "B"
    SELL = "S"


class Printable(enum.StrEnum):
    """Printable flag of ``C``."""

    PRINTABLE = "Y"
    NON_PRINTABLE = "N"


class CrossType(enum.StrEnum):
    """Cross Type of ``Q`` and ``I``."""

    OPENING = "O"
    CLOSING = "C"
    HALT_OR_IPO = "H"
    EXTENDED_TRADING_CLOSE = "A"
