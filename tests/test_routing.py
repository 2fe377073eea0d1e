"""The consolidated quote, the smart order router's decisions and the circuit breaker, on
quotes made here (no venue)."""

from tickwire.protocol import itch
from tickwire.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tickwire.routing.log import RoutingLog
from tickwire.routing.nbbo import ConsolidatedBook, Quote, VenueQuote
from tickwire.routing.router import BEST_PRICE, NO_LIQUIDITY, POST, SWEEP, decide


def vq(venue, bid, bid_size, ask, ask_size, since=0, protected=True):
    return VenueQuote(venue, Quote(bid, bid_size, venue) if bid else None,
                      Quote(ask, ask_size, venue) if ask else None, protected, since, since)


QUOTES = {"A": vq("A", 1824900, 500, 1825200, 500, 1),
          "B": vq("B", 1824800, 800, 1825100, 600, 2),
          "C": vq("C", 1825000, 300, 1825300, 1000, 3)}


def everyone(venue):
    return True


def test_market_buy_goes_to_the_best_ask():
    d = decide("o1", "AAPL", "buy", 100, None, "day", QUOTES, everyone)
    assert [(s.venue, s.qty, s.price, s.tif, s.reason, s.sweep) for s in d.slices] == [
        ("B", 100, 1825100, "ioc", BEST_PRICE, False)]
    record = d.record()
    assert record["selected_venue"] == "B" and record["reason"] == BEST_PRICE
    assert record["alternatives_considered"] == ["A", "C"]
    assert record["prices_at_decision"] == {"A": "182.52", "B": "182.51", "C": "182.53"}


def test_a_large_order_sweeps_best_price_first_by_displayed_size():
    d = decide("o1", "AAPL", "buy", 1500, None, "day", QUOTES, everyone)
    assert [(s.venue, s.qty, s.price, s.reason) for s in d.slices] == [
        ("B", 600, 1825100, BEST_PRICE), ("A", 500, 1825200, SWEEP), ("C", 400, 1825300, SWEEP)]
    assert all(s.sweep for s in d.slices)
    assert all(s.better_unswept == 0 for s in d.slices)


def test_sell_takes_the_best_bid_and_a_limit_stops_the_sweep():
    d = decide("o1", "AAPL", "sell", 1000, 1824900, "ioc", QUOTES, everyone)
    assert [(s.venue, s.qty, s.price) for s in d.slices] == [("C", 300, 1825000),
                                                             ("A", 500, 1824900)]
    assert d.skipped == {"B": "beyond_limit"}


def test_ties_go_to_the_venue_first_at_the_price():
    quotes = {"A": vq("A", None, 0, 1825100, 500, since=9),
              "B": vq("B", None, 0, 1825100, 500, since=4)}
    d = decide("o1", "AAPL", "buy", 700, None, "day", quotes, everyone)
    assert [(s.venue, s.qty) for s in d.slices] == [("B", 500), ("A", 200)]
    assert not any(s.sweep for s in d.slices), "one price level is not a sweep"


def test_a_venue_with_an_open_breaker_is_skipped_and_not_protected():
    d = decide("o1", "AAPL", "buy", 100, None, "day", QUOTES, lambda v: v != "B")
    assert [(s.venue, s.price) for s in d.slices] == [("A", 1825200)]
    assert d.skipped == {"B": "circuit_open"}
    assert d.slices[0].better_unswept == 0


def test_unprotected_quotes_are_not_routed_to():
    quotes = dict(QUOTES, B=vq("B", 1824800, 800, 1825100, 600, protected=False))
    d = decide("o1", "AAPL", "buy", 100, None, "day", quotes, everyone)
    assert d.slices[0].venue == "A" and d.skipped == {"B": "not_trading"}


def test_a_resting_limit_posts_the_rest_at_the_best_same_side_venue():
    d = decide("o1", "AAPL", "buy", 1000, 1825100, "day", QUOTES, everyone)
    assert [(s.venue, s.qty, s.price, s.tif, s.reason) for s in d.slices] == [
        ("B", 600, 1825100, "ioc", BEST_PRICE), ("C", 400, 1825100, "day", POST)]


def test_fok_goes_whole_to_one_venue_or_nowhere():
    d = decide("o1", "AAPL", "buy", 600, None, "fok", QUOTES, everyone)
    assert [(s.venue, s.qty, s.tif) for s in d.slices] == [("B", 600, "fok")]
    d = decide("o1", "AAPL", "buy", 700, None, "fok", QUOTES, everyone)
    assert d.slices == () and d.reason == NO_LIQUIDITY


def test_no_quote_no_route():
    d = decide("o1", "AAPL", "buy", 100, None, "ioc", {}, everyone)
    assert d.slices == () and d.reason == NO_LIQUIDITY


def test_the_log_counts_a_trade_through_and_price_improvement():
    log = RoutingLog()
    log.fill("o1", "A", "buy", 100, 1825000, 1824900, 1825100, 1825100)
    log.fill("o2", "A", "buy", 100, 1825100, 1824900, 1825100, 1825100)
    log.fill("o3", "A", "buy", 100, 1825100, 1824900, 1825100, 1825100, better_unswept=200)
    q = log.quality()
    assert q["volume"] == 300 and q["price_improved_fills"] == 1
    assert q["price_improvement"] == "1.00" and q["trade_throughs"] == 1


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_circuit_breaker_opens_half_opens_and_closes():
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, reset_after=5, clock=clock)
    assert breaker.allow() and breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == OPEN and not breaker.allow() and not breaker.available()
    clock.now = 5
    assert breaker.state == HALF_OPEN and breaker.available()
    assert breaker.allow() and not breaker.allow(), "one trial only"
    breaker.failure()
    assert breaker.state == OPEN
    clock.now = 10
    assert breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.trip()
    assert breaker.state == OPEN and breaker.trips == 2, "closed → open twice"


def test_consolidated_book_from_itch_messages():
    book = ConsolidatedBook(["A", "B"])
    seen = []
    book.on_nbbo = seen.append
    for venue in ("A", "B"):
        book.apply(venue, itch.encode(b"S", stock_locate=0, timestamp=1, event_code="Q"))
        book.apply(venue, itch.encode(
            b"R", stock_locate=1, timestamp=1, stock="AAPL", market_category="Q",
            financial_status_indicator="N", round_lot_size=100, round_lots_only="N",
            issue_classification="C", issue_sub_type="Z", authenticity="P",
            short_sale_threshold_indicator="N", ipo_flag="N", luld_reference_price_tier="1",
            etp_flag="N", etp_leverage_factor=0, inverse_indicator="N"))
    add = dict(stock_locate=1, timestamp=2, stock="AAPL")
    book.apply("A", itch.encode(b"A", order_reference_number=1, buy_sell_indicator="S",
                                shares=500, price=1825200, **add))
    book.apply("B", itch.encode(b"A", order_reference_number=1, buy_sell_indicator="S",
                                shares=700, price=1825100, **add))
    book.apply("A", itch.encode(b"A", order_reference_number=2, buy_sell_indicator="B",
                                shares=500, price=1824900, **add))
    nbbo = book.get("AAPL")
    assert nbbo.ask == Quote(1825100, 700, "B") and nbbo.bid == Quote(1824900, 500, "A")
    book.apply("B", itch.encode(b"D", stock_locate=1, timestamp=3, order_reference_number=1))
    assert book.get("AAPL").ask == Quote(1825200, 500, "A")
    book.apply("A", itch.encode(b"H", stock_locate=1, timestamp=4, stock="AAPL",
                                trading_state="H", reason="T3"))
    assert book.get("AAPL").ask is None and not book.halted("AAPL")
    book.apply("B", itch.encode(b"H", stock_locate=1, timestamp=4, stock="AAPL",
                                trading_state="H", reason="T3"))
    assert book.halted("AAPL")
    assert book.market_open() and book.known("AAPL") and not book.known("MSFT")
    assert len(seen) == book.updates >= 4
