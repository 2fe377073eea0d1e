"""Directed tests of the reference matching engine, one behaviour each (sim/ENGINE.md,
"Engine semantics"). Each asserts the exact event sequence a command produces.

Unless a test says otherwise: symbol 1 declared with reference 100, band 64 ticks
(band_low 68, band_high 131), round lot 100, breaker off, max_orders 16, max_qty 10000.
"""

import pytest
from model_driver import (
    BUY,
    NO_SLOT,
    SELL,
    Action,
    Command,
    Driver,
    E,
    R,
    ReplaceMode,
    Stp,
    Tif,
    ev,
    expect,
)
from tickwire.core.reasons import Reason
from tickwire.engine.model import ModelEngine
from tickwire.exchange.front import Exchange
from tickwire.protocol.link import ModelParams, pack_name

LOW, HIGH = 68, 131


@pytest.fixture
def d():
    d = Driver()
    d.declare()
    return d


def fresh(**params):
    d = Driver(**params)
    d.declare()
    return d


# -- DECLARE ----------------------------------------------------------------------------------

def test_declare_events():
    d = Driver()
    expect(d.declare(symbol=2, reference=500, lot=50, tick=25, breaker=9, name="ABCD"),
           ev(E.DIRECTORY, symbol=2, name=pack_name("ABCD"), qty=50, tick=25, price=500),
           ev(E.TRADING, symbol=2, halted=0, reason=R.NONE))
    book = d.book(2)
    assert (book.band_low, book.band_high) == (500 - 32, 500 - 32 + 63)


def test_band_clamped_at_one():
    d = Driver()
    d.declare(reference=10)
    assert (d.book().band_low, d.book().band_high) == (1, 64)
    expect(d.buy(100, 1), E.ACCEPT, ev(E.ADD, price=1))
    expect(d.sell(100, 64), E.ACCEPT, ev(E.ADD, price=64))
    expect(d.sell(100, 65), ev(E.REJECT, reason=R.OUT_OF_BAND))


@pytest.mark.parametrize("kw", [
    dict(symbol=0), dict(symbol=3), dict(tick=0), dict(lot=0), dict(reference=0),
])
def test_bad_declaration(kw):
    d = Driver()
    expect(d.declare(**kw), ev(E.REJECT, reason=R.BAD_DECLARATION))
    assert d.model.symbols[1] is None and d.model.symbols[2] is None
    # Nothing was declared: an order for the locate is refused.
    expect(d.buy(100, 100, symbol=kw.get("symbol", 1) or 1),
           ev(E.REJECT, reason=R.UNKNOWN_SYMBOL))


def test_duplicate_declaration(d):
    expect(d.declare(reference=120), ev(E.REJECT, reason=R.BAD_DECLARATION))
    assert d.book().reference == 100
    expect(d.declare(symbol=2), E.DIRECTORY, E.TRADING)
    expect(d.declare(symbol=3), ev(E.REJECT, reason=R.BAD_DECLARATION))  # max_symbols = 2


# -- limit orders, price-time priority -----------------------------------------------------------

@pytest.mark.parametrize("tif", [Tif.DAY, Tif.GTC])
def test_limit_rests(d, tif):
    expect(d.buy(300, 99, tif=tif, order_id=7),
           ev(E.ACCEPT, symbol=1, side=BUY, order_id=7, qty=300, remaining=300, price=99),
           ev(E.ADD, symbol=1, side=BUY, order_id=7, slot=0, qty=300, remaining=300, price=99,
              odd_lot=0))
    expect(d.sell(200, 101, tif=tif, order_id=8),
           ev(E.ACCEPT, side=SELL, order_id=8, qty=200, price=101),
           ev(E.ADD, side=SELL, order_id=8, slot=1, qty=200, price=101))
    assert (d.book().best_bid(), d.book().best_ask()) == (99, 101)


def test_slots_handed_out_lowest_first(d):
    for i in range(5):
        expect(d.buy(100, 90 + i), E.ACCEPT, ev(E.ADD, slot=i))


def test_price_time_priority(d):
    d.sell(100, 101)                        # 1, slot 0
    d.sell(100, 100)                        # 2, slot 1
    d.sell(100, 100)                        # 3, slot 2
    d.sell(100, 102)                        # 4, slot 3
    expect(d.buy(250, 102, order_id=10),
           ev(E.ACCEPT, order_id=10, qty=250),
           ev(E.EXECUTE, side=SELL, order_id=2, other_id=10, slot=1, qty=100, remaining=0,
              price=100, match=1),
           ev(E.EXECUTE, side=SELL, order_id=3, other_id=10, slot=2, qty=100, remaining=0,
              price=100, match=2),
           ev(E.EXECUTE, side=SELL, order_id=1, other_id=10, slot=0, qty=50, remaining=50,
              price=101, match=3))
    assert d.resting() == {1: (0, SELL, 101, 50), 4: (3, SELL, 102, 100)}


def test_buy_side_priority(d):
    d.buy(100, 99)                          # 1
    d.buy(100, 100)                         # 2
    d.buy(100, 100)                         # 3
    expect(d.sell(150, 95), E.ACCEPT,
           ev(E.EXECUTE, side=BUY, order_id=2, qty=100, price=100, match=1),
           ev(E.EXECUTE, side=BUY, order_id=3, qty=50, remaining=50, price=100, match=2))
    expect(d.sell(100, 95), E.ACCEPT,
           ev(E.EXECUTE, order_id=3, qty=50, remaining=0, price=100, match=3),
           ev(E.EXECUTE, order_id=1, qty=50, remaining=50, price=99, match=4))


def test_trade_at_resting_price(d):
    d.sell(100, 100)
    expect(d.buy(100, 120), E.ACCEPT, ev(E.EXECUTE, price=100, qty=100))
    d.buy(100, 100)
    expect(d.sell(100, 70), E.ACCEPT, ev(E.EXECUTE, price=100, qty=100))


def test_partial_fill_rests_remainder_in_freed_slot(d):
    d.sell(50, 100)                                         # slot 0
    expect(d.buy(120, 100, order_id=5),
           ev(E.ACCEPT, qty=120),
           ev(E.EXECUTE, order_id=1, other_id=5, slot=0, qty=50, remaining=0),
           ev(E.ADD, order_id=5, slot=0, qty=70, remaining=70, price=100, odd_lot=1))


def test_match_numbers_span_symbols(d):
    d.declare(symbol=2)
    d.sell(100, 100)
    d.sell(100, 100, symbol=2)
    expect(d.buy(100, 100), E.ACCEPT, ev(E.EXECUTE, match=1))
    expect(d.buy(100, 100, symbol=2), E.ACCEPT, ev(E.EXECUTE, symbol=2, match=2))


def test_no_cross_rests_both_sides(d):
    d.buy(100, 99)
    expect(d.sell(100, 100), E.ACCEPT, E.ADD)
    assert (d.book().best_bid(), d.book().best_ask()) == (99, 100)


# -- market, IOC, FOK, min qty ------------------------------------------------------------------

def test_market_walks_to_band_edge_and_never_rests(d):
    d.sell(100, 100)
    d.sell(100, 110)
    d.sell(100, HIGH)
    expect(d.buy(1000, market=True, order_id=9),
           ev(E.ACCEPT, order_id=9, qty=1000, price=0),
           ev(E.EXECUTE, order_id=1, price=100, qty=100),
           ev(E.EXECUTE, order_id=2, price=110, qty=100),
           ev(E.EXECUTE, order_id=3, price=HIGH, qty=100),
           ev(E.KILL, order_id=9, qty=700, remaining=0, reason=R.IOC, slot=NO_SLOT))
    assert d.resting() == {}


def test_market_sell_walks_to_band_low(d):
    d.buy(100, LOW)
    d.buy(100, 90)
    expect(d.sell(150, market=True, tif=Tif.GTC),
           E.ACCEPT, ev(E.EXECUTE, order_id=2, price=90), ev(E.EXECUTE, order_id=1, price=LOW,
                                                           qty=50, remaining=50))


def test_market_on_empty_book_killed(d):
    expect(d.buy(100, market=True), E.ACCEPT, ev(E.KILL, qty=100, reason=R.IOC))


def test_market_ignores_price_field(d):
    d.sell(100, 100)
    # A market order's price field is ignored (even outside the band).
    expect(d.buy(100, 5000, market=True), ev(E.ACCEPT, price=0), ev(E.EXECUTE, price=100))


def test_ioc_partial(d):
    d.sell(50, 100)
    expect(d.buy(100, 100, tif=Tif.IOC, order_id=4),
           E.ACCEPT, ev(E.EXECUTE, qty=50), ev(E.KILL, order_id=4, qty=50, reason=R.IOC,
                                               slot=NO_SLOT))
    assert d.resting() == {}


def test_ioc_no_cross(d):
    d.sell(50, 101)
    expect(d.buy(100, 100, tif=Tif.IOC), E.ACCEPT, ev(E.KILL, qty=100, reason=R.IOC))
    assert d.resting() == {1: (0, SELL, 101, 50)}


def test_fok_short_killed_untouched(d):
    d.sell(50, 100)
    d.sell(30, 101)
    d.sell(100, 102)
    before = d.resting()
    expect(d.buy(100, 101, tif=Tif.FOK, order_id=9),
           ev(E.ACCEPT, order_id=9, qty=100), ev(E.KILL, order_id=9, qty=100, reason=R.FOK))
    assert d.resting() == before
    assert d.model.match_number == 0


def test_fok_filled_across_levels(d):
    d.sell(50, 100)
    d.sell(30, 101)
    d.sell(100, 102)
    expect(d.buy(120, 102, tif=Tif.FOK),
           E.ACCEPT, ev(E.EXECUTE, order_id=1, qty=50, price=100),
           ev(E.EXECUTE, order_id=2, qty=30, price=101),
           ev(E.EXECUTE, order_id=3, qty=40, remaining=60, price=102))


def test_fok_exact(d):
    d.buy(60, 100)
    d.buy(40, 100)
    expect(d.sell(100, 100, tif=Tif.FOK), E.ACCEPT, ev(E.EXECUTE, qty=60),
           ev(E.EXECUTE, qty=40))


def test_fok_market(d):
    d.sell(50, 100)
    expect(d.buy(60, market=True, tif=Tif.FOK), E.ACCEPT, ev(E.KILL, qty=60, reason=R.FOK))
    expect(d.buy(50, market=True, tif=Tif.FOK), E.ACCEPT, ev(E.EXECUTE, qty=50))


def test_min_qty_met_rests_rest(d):
    d.sell(60, 100)
    expect(d.buy(100, 100, min_qty=50, order_id=5), E.ACCEPT,
           ev(E.EXECUTE, qty=60), ev(E.ADD, order_id=5, qty=40, slot=0, odd_lot=1))


def test_min_qty_not_met(d):
    d.sell(60, 100)
    expect(d.buy(100, 100, min_qty=70, order_id=5), E.ACCEPT,
           ev(E.KILL, order_id=5, qty=100, reason=R.MIN_QTY))
    assert d.resting() == {1: (0, SELL, 100, 60)}


def test_min_qty_with_ioc(d):
    d.sell(60, 100)
    expect(d.buy(100, 100, min_qty=60, tif=Tif.IOC), E.ACCEPT, ev(E.EXECUTE, qty=60),
           ev(E.KILL, qty=40, reason=R.IOC))


def test_min_qty_not_applied_to_resting_order(d):
    # Nothing to match: min_qty 50 cannot be met, so the order is killed...
    expect(d.buy(100, 100, min_qty=50), E.ACCEPT, ev(E.KILL, reason=R.MIN_QTY))
    # ...but a resting order that entered with min_qty fills below it later.
    d.sell(60, 100)
    d.buy(100, 100, min_qty=50, order_id=10)               # fills 60, rests 40
    expect(d.sell(10, 100), E.ACCEPT, ev(E.EXECUTE, order_id=10, qty=10, remaining=30))


def test_min_qty_equal_qty_is_valid(d):
    expect(d.buy(100, 100, min_qty=100), E.ACCEPT, ev(E.KILL, reason=R.MIN_QTY))


# -- CANCEL ----------------------------------------------------------------------------------

def test_cancel_full(d):
    d.buy(300, 99, order_id=4)
    expect(d.cancel(4, 0), ev(E.DELETE, order_id=4, slot=0, qty=300, remaining=0, price=99,
                              side=BUY, reason=R.USER))
    assert d.resting() == {}
    expect(d.cancel(4, 0), ev(E.CANCEL_REJECT, order_id=4, slot=0, reason=R.NOT_FOUND))


def test_cancel_partial_keeps_priority(d):
    d.buy(100, 100)
    d.buy(100, 100)
    expect(d.cancel(1, 0, qty=40), ev(E.REDUCE, order_id=1, slot=0, qty=60, remaining=40,
                                      price=100, reason=R.USER))
    assert d.level_ids(BUY, 100) == [1, 2]
    expect(d.sell(50, 100), E.ACCEPT, ev(E.EXECUTE, order_id=1, qty=40, remaining=0),
           ev(E.EXECUTE, order_id=2, qty=10, remaining=90))


@pytest.mark.parametrize("qty", [100, 101, 5000])
def test_cancel_nothing_to_cancel(d, qty):
    d.buy(100, 100)
    expect(d.cancel(1, 0, qty=qty), ev(E.CANCEL_REJECT, order_id=1, slot=0,
                                       reason=R.NOTHING_TO_CANCEL))
    assert d.resting() == {1: (0, BUY, 100, 100)}


@pytest.mark.parametrize("order_id,slot", [(1, 1), (2, 0), (1, 15), (1, 16), (1, 0xFFFF)])
def test_cancel_not_found(d, order_id, slot):
    d.buy(100, 100)
    expect(d.cancel(order_id, slot), ev(E.CANCEL_REJECT, order_id=order_id, slot=slot,
                                        reason=R.NOT_FOUND))
    assert d.resting() == {1: (0, BUY, 100, 100)}


def test_cancel_after_fill_not_found(d):
    d.buy(100, 100)
    d.sell(100, 100)
    expect(d.cancel(1, 0), ev(E.CANCEL_REJECT, reason=R.NOT_FOUND))


# -- REPLACE ---------------------------------------------------------------------------------

def test_replace_kept_size_down(d):
    d.buy(100, 100)
    d.buy(100, 100)
    expect(d.replace(1, 0, 60, 100, new_order_id=3),
           ev(E.REPLACE, mode=ReplaceMode.KEPT, order_id=1, other_id=3, slot=0, qty=60,
              remaining=100, price=100, side=BUY))
    assert d.level_ids(BUY, 100) == [1, 2]
    assert d.resting()[1] == (0, BUY, 100, 60)
    # The order keeps its reference number.
    expect(d.cancel(3, 0), ev(E.CANCEL_REJECT, reason=R.NOT_FOUND))
    expect(d.sell(70, 100), E.ACCEPT, ev(E.EXECUTE, order_id=1, qty=60),
           ev(E.EXECUTE, order_id=2, qty=10))


def test_replace_kept_equal_size(d):
    d.buy(100, 100)
    d.buy(100, 100)
    expect(d.replace(1, 0, 100, 100),
           ev(E.REPLACE, mode=ReplaceMode.KEPT, order_id=1, qty=100, remaining=100))
    assert d.level_ids(BUY, 100) == [1, 2]


def test_replace_moved_size_up_loses_priority(d):
    d.buy(100, 100)
    d.buy(100, 100)
    expect(d.replace(1, 0, 150, 100, new_order_id=3),
           ev(E.REPLACE, mode=ReplaceMode.MOVED, order_id=1, other_id=3, slot=0, qty=150,
              remaining=100, price=100))
    assert d.level_ids(BUY, 100) == [2, 3]
    assert d.resting()[3] == (0, BUY, 100, 150)
    expect(d.sell(120, 100), E.ACCEPT, ev(E.EXECUTE, order_id=2, qty=100),
           ev(E.EXECUTE, order_id=3, slot=0, qty=20, remaining=130))


def test_replace_moved_price(d):
    d.buy(100, 100)
    d.buy(100, 99)
    d.sell(100, 102)
    expect(d.replace(1, 0, 50, 99, new_order_id=9),
           ev(E.REPLACE, mode=ReplaceMode.MOVED, order_id=1, other_id=9, slot=0, qty=50,
              remaining=100, price=99))
    assert d.level_ids(BUY, 99) == [2, 9]
    assert d.level_ids(BUY, 100) == []
    assert d.book().best_bid() == 99
    # Moving up to just below the ask does not cross.
    expect(d.replace(9, 0, 50, 101), ev(E.REPLACE, mode=ReplaceMode.MOVED, price=101))


def test_replace_crossed_rests_in_its_slot(d):
    d.sell(50, 101)                                         # 1, slot 0
    d.buy(100, 99)                                          # 2, slot 1
    expect(d.replace(2, 1, 100, 101, new_order_id=3),
           ev(E.REPLACE, mode=ReplaceMode.CROSSED, order_id=2, other_id=3, slot=1, qty=100,
              remaining=100, price=101),
           ev(E.EXECUTE, side=SELL, order_id=1, other_id=3, slot=0, qty=50, remaining=0,
              price=101, match=1),
           ev(E.ADD, side=BUY, order_id=3, slot=1, qty=50, remaining=50, price=101, odd_lot=1))
    assert d.resting() == {3: (1, BUY, 101, 50)}
    # Slot 0 (freed by the fill) is the next one handed out.
    expect(d.buy(100, 90), E.ACCEPT, ev(E.ADD, slot=0))


def test_replace_crossed_filled_frees_slot(d):
    d.sell(100, 101)                                        # slot 0
    d.buy(50, 99)                                           # slot 1
    expect(d.replace(2, 1, 50, 105, new_order_id=3),
           ev(E.REPLACE, mode=ReplaceMode.CROSSED, slot=1, price=105),
           ev(E.EXECUTE, order_id=1, other_id=3, qty=50, remaining=50, price=101))
    assert d.resting() == {1: (0, SELL, 101, 50)}
    expect(d.buy(100, 90), E.ACCEPT, ev(E.ADD, slot=1))


def test_replace_crossed_killed_by_stp(d):
    d.sell(100, 101, firm=7)
    d.buy(100, 99, firm=7, stp=Stp.CANCEL_NEWEST)
    expect(d.replace(2, 1, 100, 101, new_order_id=3),
           ev(E.REPLACE, mode=ReplaceMode.CROSSED),
           ev(E.KILL, order_id=3, qty=100, reason=R.SELF_TRADE, slot=NO_SLOT))
    assert d.resting() == {1: (0, SELL, 101, 100)}
    expect(d.buy(100, 90), E.ACCEPT, ev(E.ADD, slot=1))


def test_replace_crossed_uses_its_own_stp_mode(d):
    d.sell(100, 101, firm=7)                                # 1
    d.sell(100, 101, firm=8)                                # 2
    d.buy(150, 99, firm=7, stp=Stp.CANCEL_OLDEST)           # 3
    expect(d.replace(3, 2, 150, 101, new_order_id=4),
           ev(E.REPLACE, mode=ReplaceMode.CROSSED),
           ev(E.DELETE, order_id=1, reason=R.SELF_TRADE),
           ev(E.EXECUTE, order_id=2, other_id=4, qty=100),
           ev(E.ADD, order_id=4, slot=2, qty=50))


def test_replace_crossed_no_min_qty(d):
    # A crossing replace of an order that entered with min_qty matches what it can.
    d.sell(10, 101)
    d.sell(60, 100)
    d.buy(100, 100, min_qty=50)                             # fills 60, rests 40 in slot 1
    expect(d.replace(3, 1, 100, 101), ev(E.REPLACE, mode=ReplaceMode.CROSSED),
           ev(E.EXECUTE, qty=10), ev(E.ADD, qty=90, slot=1))


@pytest.mark.parametrize("qty,price,reason", [
    (0, 100, R.BAD_QTY), (10_001, 100, R.BAD_QTY), (100, LOW - 1, R.OUT_OF_BAND),
    (100, HIGH + 1, R.OUT_OF_BAND),
])
def test_replace_rejects(d, qty, price, reason):
    d.buy(100, 100)
    expect(d.replace(1, 0, qty, price, new_order_id=5),
           ev(E.REJECT, reason=reason, order_id=5, other_id=1))
    assert d.resting() == {1: (0, BUY, 100, 100)}


def test_replace_at_band_edges(d):
    d.buy(100, 100)
    expect(d.replace(1, 0, 100, LOW), ev(E.REPLACE, mode=ReplaceMode.MOVED, price=LOW))
    expect(d.replace(2, 0, 100, HIGH), ev(E.REPLACE, mode=ReplaceMode.MOVED, price=HIGH))


@pytest.mark.parametrize("symbol", [0, 2, 3])
def test_cancel_and_replace_naming_another_symbol_not_found(symbol):
    d = fresh()
    d.declare(symbol=2)
    d.buy(100, 100)
    expect(d.cancel(1, 0, symbol=symbol),
           ev(E.CANCEL_REJECT, symbol=symbol, order_id=1, slot=0, reason=R.NOT_FOUND))
    expect(d.replace(1, 0, 50, 100, symbol=symbol),
           ev(E.CANCEL_REJECT, symbol=symbol, order_id=1, slot=0, reason=R.NOT_FOUND))
    assert d.resting() == {1: (0, BUY, 100, 100)}


def test_rejected_replace_carries_the_orders_symbol():
    d = fresh()
    d.declare(symbol=2, reference=300)
    d.sell(100, 300, symbol=2)
    expect(d.replace(1, 0, 0, 300, new_order_id=9, symbol=2),
           ev(E.REJECT, symbol=2, order_id=9, other_id=1, slot=0, reason=R.BAD_QTY))


@pytest.mark.parametrize("order_id,slot", [(1, 1), (2, 0), (1, 16)])
def test_replace_not_found(d, order_id, slot):
    d.buy(100, 100)
    expect(d.replace(order_id, slot, 50, 100),
           ev(E.CANCEL_REJECT, order_id=order_id, slot=slot, reason=R.NOT_FOUND))
    assert d.resting() == {1: (0, BUY, 100, 100)}


def test_replace_book_full_on_full_side():
    d = fresh(max_levels=2)
    d.buy(100, 100)                                         # 1
    d.buy(100, 100)                                         # 2
    d.buy(100, 99)                                          # 3
    expect(d.buy(100, 98), ev(E.REJECT, reason=R.BOOK_FULL))
    # Level 100 keeps order 2: moving order 1 to a third level is refused.
    expect(d.replace(1, 0, 100, 98, new_order_id=10),
           ev(E.REJECT, reason=R.BOOK_FULL, order_id=10, other_id=1))
    # Moving to an existing level is fine.
    expect(d.replace(1, 0, 100, 99, new_order_id=11), ev(E.REPLACE, mode=ReplaceMode.MOVED))
    # Order 3... now level 99 holds [3, 11]; order 2 alone at 100 may open a new level.
    assert d.level_ids(BUY, 99) == [3, 11]
    expect(d.replace(2, 1, 100, 97, new_order_id=12), ev(E.REPLACE, mode=ReplaceMode.MOVED))
    assert sorted(d.book().sides[BUY].levels) == [97, 99]


# -- self-trade prevention --------------------------------------------------------------------

def stp_book(d):
    d.sell(50, 100, firm=2)                                 # 1, slot 0
    d.sell(100, 100, firm=1)                                # 2, slot 1
    d.sell(100, 100, firm=2)                                # 3, slot 2


@pytest.mark.parametrize("kw,reason", [
    (dict(), R.BAD_STP), (dict(firm=0), R.BAD_STP), (dict(market=True), R.BAD_STP),
    (dict(price=LOW - 1), R.BAD_STP), (dict(min_qty=101), R.BAD_MIN_QTY),
    (dict(qty=0), R.BAD_QTY),
])
def test_stp_code_3_rejected_at_validation(d, kw, reason):
    d.sell(100, 100, firm=7)
    args = dict(qty=100, price=100, firm=7, stp=3, tif=Tif.FOK) | kw
    expect(d.buy(args.pop("qty"), args.pop("price"), **args),
           ev(E.REJECT, reason=reason, symbol=1, side=BUY))
    assert d.resting() == {1: (0, SELL, 100, 100)}


def test_stp_cancel_newest(d):
    stp_book(d)
    expect(d.buy(200, 100, firm=1, stp=Stp.CANCEL_NEWEST, order_id=9), E.ACCEPT,
           ev(E.EXECUTE, order_id=1, other_id=9, qty=50),
           ev(E.KILL, order_id=9, qty=150, reason=R.SELF_TRADE))
    assert d.level_ids(SELL, 100) == [2, 3]


def test_stp_cancel_oldest(d):
    stp_book(d)
    expect(d.buy(200, 100, firm=1, stp=Stp.CANCEL_OLDEST, order_id=9), E.ACCEPT,
           ev(E.EXECUTE, order_id=1, qty=50),
           ev(E.DELETE, order_id=2, slot=1, qty=100, remaining=0, reason=R.SELF_TRADE),
           ev(E.EXECUTE, order_id=3, qty=100, slot=2),
           ev(E.ADD, order_id=9, qty=50, slot=2, odd_lot=1))


def test_stp_cancel_both(d):
    stp_book(d)
    expect(d.buy(200, 100, firm=1, stp=Stp.CANCEL_BOTH, order_id=9), E.ACCEPT,
           ev(E.EXECUTE, order_id=1, qty=50),
           ev(E.DELETE, order_id=2, reason=R.SELF_TRADE),
           ev(E.KILL, order_id=9, qty=150, reason=R.SELF_TRADE))
    assert d.level_ids(SELL, 100) == [3]


def test_stp_firm_zero_trades_with_itself(d):
    d.sell(100, 100, firm=0)
    expect(d.buy(100, 100, firm=0), E.ACCEPT, ev(E.EXECUTE, qty=100))


def test_stp_different_firms_trade(d):
    d.sell(100, 100, firm=3)
    expect(d.buy(100, 100, firm=4), E.ACCEPT, ev(E.EXECUTE, qty=100))


@pytest.mark.parametrize("stp", [Stp.CANCEL_NEWEST, Stp.CANCEL_BOTH])
def test_stp_fok_count_stops_at_own_order(d, stp):
    stp_book(d)
    before = d.resting()
    expect(d.buy(150, 100, firm=1, stp=stp, tif=Tif.FOK), E.ACCEPT,
           ev(E.KILL, qty=150, reason=R.FOK))
    assert d.resting() == before                            # no STP deletion


def test_stp_fok_count_skips_own_order_under_cancel_oldest(d):
    stp_book(d)
    expect(d.buy(150, 100, firm=1, stp=Stp.CANCEL_OLDEST, tif=Tif.FOK), E.ACCEPT,
           ev(E.EXECUTE, order_id=1, qty=50),
           ev(E.DELETE, order_id=2, reason=R.SELF_TRADE),
           ev(E.EXECUTE, order_id=3, qty=100))
    assert d.resting() == {}
    # 151 is more than the other firms hold: killed, and firm 1's order not deleted.
    stp_book(d)
    before = d.resting()
    expect(d.buy(151, 100, firm=1, stp=Stp.CANCEL_OLDEST, tif=Tif.FOK), E.ACCEPT,
           ev(E.KILL, qty=151, reason=R.FOK))
    assert d.resting() == before


def test_stp_min_qty_count(d):
    stp_book(d)
    expect(d.buy(200, 100, firm=1, min_qty=60, stp=Stp.CANCEL_NEWEST), E.ACCEPT,
           ev(E.KILL, qty=200, reason=R.MIN_QTY))
    expect(d.buy(200, 100, firm=1, min_qty=50, stp=Stp.CANCEL_NEWEST), E.ACCEPT,
           ev(E.EXECUTE, order_id=1, qty=50), ev(E.KILL, qty=150, reason=R.SELF_TRADE))


# -- band ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("side", [BUY, SELL])
@pytest.mark.parametrize("price", [LOW, HIGH])
def test_band_edges_accepted(d, side, price):
    expect(d.new(side, 100, price), E.ACCEPT, ev(E.ADD, price=price))


@pytest.mark.parametrize("side", [BUY, SELL])
@pytest.mark.parametrize("price", [LOW - 1, HIGH + 1, 0])
@pytest.mark.parametrize("tif", [Tif.DAY, Tif.IOC, Tif.FOK])
def test_out_of_band_rejected(d, side, price, tif):
    expect(d.new(side, 100, price, tif=tif, order_id=3),
           ev(E.REJECT, reason=R.OUT_OF_BAND, order_id=3, symbol=1))
    assert d.resting() == {}


# -- halt / resume ----------------------------------------------------------------------------

def test_halt_rejects_new_and_replace_allows_cancel(d):
    d.buy(100, 100)                                         # 1
    d.buy(100, 99)                                          # 2
    expect(d.halt(), ev(E.TRADING, symbol=1, halted=1, reason=R.OPERATOR))
    expect(d.sell(100, 100, order_id=5), ev(E.REJECT, reason=R.HALTED, order_id=5))
    expect(d.sell(100, market=True), ev(E.REJECT, reason=R.HALTED))
    expect(d.replace(1, 0, 50, 100, new_order_id=7),
           ev(E.REJECT, reason=R.HALTED, order_id=7, other_id=1))
    expect(d.cancel(2, 1, qty=40), ev(E.REDUCE, qty=60, remaining=40))
    expect(d.cancel(1, 0), ev(E.DELETE, order_id=1, reason=R.USER))
    expect(d.halt(), ev(E.TRADING, halted=1, reason=R.OPERATOR))      # even if unchanged
    expect(d.resume(), ev(E.TRADING, symbol=1, halted=0, reason=R.OPERATOR))
    expect(d.resume(), ev(E.TRADING, halted=0, reason=R.OPERATOR))
    expect(d.sell(100, 99), E.ACCEPT, ev(E.EXECUTE, order_id=2, qty=40), ev(E.ADD, qty=60))


def test_halt_is_per_symbol(d):
    d.declare(symbol=2)
    d.halt(2)
    expect(d.buy(100, 100), E.ACCEPT, E.ADD)
    expect(d.buy(100, 100, symbol=2), ev(E.REJECT, reason=R.HALTED))


@pytest.mark.parametrize("symbol", [0, 2, 3, 0xFFFF])
def test_halt_resume_unknown_symbol(d, symbol):
    expect(d.halt(symbol), ev(E.REJECT, reason=R.UNKNOWN_SYMBOL))
    expect(d.resume(symbol), ev(E.REJECT, reason=R.UNKNOWN_SYMBOL))


# -- circuit breaker ----------------------------------------------------------------------------

def breaker_book(breaker=5):
    d = Driver()
    d.declare(reference=100, breaker=breaker)
    d.sell(100, 103)                                        # 1
    d.sell(100, 105)                                        # 2: |105 - 100| = 5, allowed
    d.sell(100, 106)                                        # 3: 6 ticks away, trips
    return d


def test_breaker_trips_before_trade_and_halts():
    d = breaker_book()
    expect(d.buy(250, 110, order_id=9), E.ACCEPT,
           ev(E.EXECUTE, order_id=1, price=103, qty=100),
           ev(E.EXECUTE, order_id=2, price=105, qty=100),
           ev(E.TRADING, symbol=1, halted=1, reason=R.BREAKER),
           ev(E.KILL, order_id=9, qty=50, reason=R.BREAKER, slot=NO_SLOT))
    assert d.book().halted
    assert d.resting() == {3: (2, SELL, 106, 100)}
    expect(d.buy(100, 90), ev(E.REJECT, reason=R.HALTED))
    d.resume()
    expect(d.buy(100, 90), E.ACCEPT, E.ADD)


def test_breaker_sell_side():
    d = Driver()
    d.declare(reference=100, breaker=5)
    d.buy(100, 95)
    d.buy(100, 94)
    expect(d.sell(300, market=True), E.ACCEPT, ev(E.EXECUTE, price=95),
           ev(E.TRADING, halted=1, reason=R.BREAKER), ev(E.KILL, qty=200, reason=R.BREAKER))


def test_breaker_trip_with_nothing_traded():
    d = breaker_book()
    d.cancel(1, 0)
    d.cancel(2, 1)
    expect(d.buy(100, 106), E.ACCEPT, ev(E.TRADING, halted=1, reason=R.BREAKER),
           ev(E.KILL, qty=100, reason=R.BREAKER))


def test_breaker_fok_short_killed_without_halt():
    d = breaker_book()
    before = d.resting()
    expect(d.buy(250, 110, tif=Tif.FOK), E.ACCEPT, ev(E.KILL, qty=250, reason=R.FOK))
    assert not d.book().halted and d.resting() == before
    expect(d.buy(200, 110, tif=Tif.FOK), E.ACCEPT, ev(E.EXECUTE, price=103),
           ev(E.EXECUTE, price=105))
    assert not d.book().halted


def test_breaker_min_qty_short_killed_without_halt():
    d = breaker_book()
    expect(d.buy(300, 110, min_qty=201), E.ACCEPT, ev(E.KILL, qty=300, reason=R.MIN_QTY))
    assert not d.book().halted


def test_breaker_off_when_zero(d):
    d.sell(100, HIGH)
    expect(d.buy(100, HIGH), E.ACCEPT, ev(E.EXECUTE, price=HIGH))


def test_breaker_crossed_replace():
    d = breaker_book()
    d.buy(300, 100)                                         # 4, slot 3
    expect(d.replace(4, 3, 300, 110, new_order_id=5),
           ev(E.REPLACE, mode=ReplaceMode.CROSSED), ev(E.EXECUTE, price=103),
           ev(E.EXECUTE, price=105), ev(E.TRADING, halted=1, reason=R.BREAKER),
           ev(E.KILL, order_id=5, qty=100, reason=R.BREAKER))
    assert d.slot_of(5) is None


def test_resting_order_may_sit_beyond_breaker():
    d = Driver()
    d.declare(reference=100, breaker=5)
    # Resting is not checked against the breaker; the trade price is.
    expect(d.buy(100, 110), E.ACCEPT, ev(E.ADD, price=110))
    expect(d.sell(100, 100), E.ACCEPT, ev(E.TRADING, halted=1, reason=R.BREAKER),
           ev(E.KILL, qty=100, reason=R.BREAKER))
    assert d.resting() == {1: (0, BUY, 110, 100)}


# -- odd lots -------------------------------------------------------------------------------------

@pytest.mark.parametrize("qty,odd", [(1, 1), (99, 1), (100, 0), (250, 0)])
def test_odd_lot_flag(d, qty, odd):
    expect(d.buy(qty, 100), E.ACCEPT, ev(E.ADD, odd_lot=odd, qty=qty))


def test_odd_lot_matches_like_any_order(d):
    d.sell(10, 100)
    d.sell(100, 100)
    expect(d.buy(50, 100), E.ACCEPT, ev(E.EXECUTE, order_id=1, qty=10),
           ev(E.EXECUTE, order_id=2, qty=40))


# -- capacity --------------------------------------------------------------------------------------

def test_book_full_then_slots_reused_lifo():
    d = fresh(max_orders=4)
    for i in range(4):
        expect(d.buy(100, 90 + i, order_id=i + 1), E.ACCEPT, ev(E.ADD, slot=i))
    for tif in (Tif.DAY, Tif.GTC):
        expect(d.buy(100, 80, tif=tif, order_id=50), ev(E.REJECT, reason=R.BOOK_FULL,
                                                         order_id=50))
    # Checked before matching, even if the order would fill completely.
    expect(d.sell(100, 93), ev(E.REJECT, reason=R.BOOK_FULL))
    assert d.model.live_orders() == 4
    # IOC, FOK and market orders never rest, so they still trade.
    expect(d.sell(50, 93, tif=Tif.IOC), E.ACCEPT, ev(E.EXECUTE, order_id=4, qty=50,
                                                     remaining=50))
    expect(d.sell(50, 93, tif=Tif.FOK), E.ACCEPT, ev(E.EXECUTE, order_id=4, slot=3,
                                                     remaining=0))
    # The filled order's slot (3) is the one the next resting order takes.
    expect(d.buy(100, 85, order_id=60), E.ACCEPT, ev(E.ADD, order_id=60, slot=3))
    expect(d.buy(100, 85), ev(E.REJECT, reason=R.BOOK_FULL))
    # Cancel slots 1 then 2: reused 2 first, then 1.
    d.cancel(2, 1)
    d.cancel(3, 2)
    expect(d.buy(100, 80, order_id=70), E.ACCEPT, ev(E.ADD, order_id=70, slot=2))
    expect(d.buy(100, 80, order_id=71), E.ACCEPT, ev(E.ADD, order_id=71, slot=1))
    expect(d.buy(100, 80), ev(E.REJECT, reason=R.BOOK_FULL))
    assert {o.slot for o in d.model.slots if o} == {0, 1, 2, 3}
    assert d.resting() == {1: (0, BUY, 90, 100), 71: (1, BUY, 80, 100),
                           70: (2, BUY, 80, 100), 60: (3, BUY, 85, 100)}
    expect(d.sell(500, market=True), E.ACCEPT,
           ev(E.EXECUTE, order_id=1, slot=0), ev(E.EXECUTE, order_id=60, slot=3),
           ev(E.EXECUTE, order_id=70, slot=2), ev(E.EXECUTE, order_id=71, slot=1),
           ev(E.KILL, qty=100, reason=R.IOC))
    # Freed in the order 0, 3, 2, 1: the stack hands them back 1, 2, 3, 0.
    assert [d.buy(100, 90)[-1].slot for _ in range(4)] == [1, 2, 3, 0]


def test_book_full_shared_across_symbols():
    d = fresh(max_orders=2)
    d.declare(symbol=2)
    d.buy(100, 100)
    d.sell(100, 110, symbol=2)
    expect(d.buy(100, 100, symbol=2), ev(E.REJECT, reason=R.BOOK_FULL))
    expect(d.buy(100, 110, symbol=2, tif=Tif.IOC), E.ACCEPT, ev(E.EXECUTE, slot=1, symbol=2))
    expect(d.buy(100, 100, symbol=2), E.ACCEPT, ev(E.ADD, slot=1, symbol=2))


def test_max_levels():
    d = fresh(max_levels=3)
    d.declare(symbol=2)
    for p in (100, 99, 98):
        expect(d.buy(100, p), E.ACCEPT, E.ADD)
    expect(d.buy(100, 97), ev(E.REJECT, reason=R.BOOK_FULL))
    expect(d.buy(100, 101, tif=Tif.DAY), ev(E.REJECT, reason=R.BOOK_FULL))
    expect(d.buy(100, 99), E.ACCEPT, ev(E.ADD, price=99))           # existing level
    expect(d.buy(100, 97, tif=Tif.IOC), E.ACCEPT, ev(E.KILL, reason=R.IOC))
    for p in (110, 111, 112):                                        # sides are separate
        expect(d.sell(100, p), E.ACCEPT, E.ADD)
    expect(d.sell(100, 113), ev(E.REJECT, reason=R.BOOK_FULL))
    expect(d.buy(100, 97, symbol=2), E.ACCEPT, E.ADD)                # symbols are separate
    d.cancel(3, 2)                                                    # level 98 empties
    expect(d.buy(100, 97), E.ACCEPT, ev(E.ADD, price=97))


def test_max_levels_rejects_crossing_new_level():
    d = fresh(max_levels=1)
    d.buy(100, 99)
    d.sell(100, 100)
    # A buy at 100 would fill completely, but opens a second bid level: refused before matching.
    expect(d.buy(100, 100), ev(E.REJECT, reason=R.BOOK_FULL))


def test_book_full_does_not_corrupt():
    d = fresh(max_orders=3)
    d.buy(100, 100)                                         # 1, slot 0
    d.sell(100, 101)                                        # 2, slot 1
    d.sell(100, 102)                                        # 3, slot 2
    for _ in range(3):
        expect(d.sell(100, 103), ev(E.REJECT, reason=R.BOOK_FULL))
    expect(d.buy(100, 101, tif=Tif.IOC), E.ACCEPT, ev(E.EXECUTE, order_id=2, slot=1))
    expect(d.sell(100, 103, order_id=10), E.ACCEPT, ev(E.ADD, slot=1, order_id=10))
    expect(d.sell(100, 103), ev(E.REJECT, reason=R.BOOK_FULL))
    assert d.resting() == {1: (0, BUY, 100, 100), 10: (1, SELL, 103, 100),
                           3: (2, SELL, 102, 100)}
    assert d.level_ids(SELL, 103) == [10]
    expect(d.buy(200, 103, tif=Tif.IOC), E.ACCEPT, ev(E.EXECUTE, order_id=3, price=102),
           ev(E.EXECUTE, order_id=10, price=103))


# -- SYSTEM ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", "OSQEC")
def test_system_event(d, code):
    d.buy(100, 100)
    expect(d.system(code), ev(E.SYSTEM, code=ord(code)))
    assert len(d.resting()) == 1


def test_system_m_expires_day_in_slot_order(d):
    d.declare(symbol=2)
    d.buy(100, 100)                                         # 1 DAY slot 0
    d.sell(100, 110, tif=Tif.GTC)                           # 2 GTC slot 1
    d.buy(100, 90, symbol=2)                                # 3 DAY slot 2
    d.cancel(1, 0)
    d.sell(100, 120)                                        # 4 DAY slot 0
    d.buy(100, 95, tif=Tif.GTC, symbol=2)                   # 5 GTC slot 3
    d.buy(100, 96)                                          # 6 DAY slot 4
    expect(d.system("M"), ev(E.SYSTEM, code=ord("M")),
           ev(E.DELETE, order_id=4, slot=0, qty=100, remaining=0, reason=R.EXPIRED, price=120),
           ev(E.DELETE, order_id=3, slot=2, symbol=2, reason=R.EXPIRED),
           ev(E.DELETE, order_id=6, slot=4, reason=R.EXPIRED))
    assert d.resting() == {2: (1, SELL, 110, 100), 5: (3, BUY, 95, 100)}
    # Expired slots are pushed in ascending order: the highest comes back first.
    assert [d.buy(100, 80)[-1].slot for _ in range(3)] == [4, 2, 0]
    expect(d.system("M"), E.SYSTEM, E.DELETE, E.DELETE, E.DELETE)


# -- validation order, bad values --------------------------------------------------------------

@pytest.mark.parametrize("symbol", [0, 2, 3, 0xFFFF])
def test_new_unknown_symbol(d, symbol):
    expect(d.buy(100, 100, symbol=symbol, order_id=4),
           ev(E.REJECT, reason=R.UNKNOWN_SYMBOL, order_id=4))


@pytest.mark.parametrize("qty", [0, 10_001])
def test_new_bad_qty(d, qty):
    expect(d.buy(qty, 100), ev(E.REJECT, reason=R.BAD_QTY))
    expect(d.buy(qty, market=True), ev(E.REJECT, reason=R.BAD_QTY))


def test_new_max_qty_ok(d):
    expect(d.buy(10_000, 100), ev(E.ACCEPT, qty=10_000), ev(E.ADD, qty=10_000))


def test_new_bad_min_qty(d):
    expect(d.buy(100, 100, min_qty=101), ev(E.REJECT, reason=R.BAD_MIN_QTY))


def test_validation_order():
    d = fresh(max_orders=1)
    d.buy(100, 100)                                         # book full from now on
    # Each row breaks every check from its reason on; the first failing check wins.
    expect(d.buy(0, 1000, min_qty=5, symbol=2), ev(E.REJECT, reason=R.UNKNOWN_SYMBOL))
    d.halt()
    expect(d.buy(0, 1000, min_qty=5), ev(E.REJECT, reason=R.HALTED))
    d.resume()
    expect(d.buy(0, 1000, min_qty=5), ev(E.REJECT, reason=R.BAD_QTY))
    expect(d.buy(4, 1000, min_qty=5), ev(E.REJECT, reason=R.BAD_MIN_QTY))
    expect(d.buy(5, 1000, min_qty=5), ev(E.REJECT, reason=R.OUT_OF_BAND))
    expect(d.buy(5, 100, min_qty=5), ev(E.REJECT, reason=R.BOOK_FULL))


def test_replace_validation_order(d):
    d.buy(100, 100)
    d.halt()
    expect(d.replace(1, 0, 0, 1000), ev(E.REJECT, reason=R.HALTED))
    expect(d.replace(1, 1, 0, 1000), ev(E.CANCEL_REJECT, reason=R.NOT_FOUND))
    d.resume()
    expect(d.replace(1, 0, 0, 1000), ev(E.REJECT, reason=R.BAD_QTY))


def test_unknown_action_rejected(d):
    expect(d.run(Command(action=Action.NOP)), ev(E.REJECT, reason=R.NONE))


def test_every_reject_reason_is_reachable():
    """Every reason a REJECT / CANCEL_REJECT / KILL / DELETE / REDUCE can carry, produced once."""
    seen = set()
    d = Driver(max_orders=2, max_levels=1)
    record = lambda events: seen.update(e.reason for e in events  # noqa: E731
                                        if e.kind in (E.REJECT, E.CANCEL_REJECT, E.KILL,
                                                      E.DELETE, E.REDUCE, E.TRADING))
    record(d.declare(reference=100, breaker=3))
    record(d.declare(symbol=0))
    record(d.buy(100, 100, symbol=2))
    record(d.buy(0, 100))
    record(d.buy(10, 100, min_qty=11))
    record(d.buy(10, 1000))
    record(d.buy(100, 100, order_id=100))                   # slot 0
    record(d.buy(100, 99))                                  # new bid level on a full side
    record(d.sell(100, 110, tif=Tif.IOC))
    record(d.sell(200, 100, tif=Tif.FOK))
    record(d.sell(200, 100, min_qty=150))
    record(d.cancel(100, 0, qty=40))
    record(d.cancel(100, 0, qty=40))
    record(d.cancel(100, 1))
    record(d.sell(100, 102, firm=5, order_id=101))          # slot 1, within the breaker
    record(d.buy(10, 102, firm=5, tif=Tif.IOC))
    record(d.system("M"))
    d.sell(100, 104)                                        # 4 ticks away: trips at 3
    record(d.buy(100, 104))
    record(d.buy(100, 100))
    record(d.run(Command(action=Action.NOP)))
    record(d.resume())
    record(d.buy(100, 100, stp=3))
    expected = {R.BAD_DECLARATION, R.UNKNOWN_SYMBOL, R.BAD_QTY, R.BAD_MIN_QTY, R.OUT_OF_BAND,
                R.BOOK_FULL, R.IOC, R.FOK, R.MIN_QTY, R.USER, R.NOTHING_TO_CANCEL, R.NOT_FOUND,
                R.SELF_TRADE, R.EXPIRED, R.BREAKER, R.HALTED, R.NONE, R.OPERATOR,
                R.BAD_STP}
    assert expected - seen == set()
    assert set(R) - seen == set()


# -- Exchange (host front) ------------------------------------------------------------------------

PRICE = 1_000_000            # $100.00


def exchange(**params):
    merged = dict(max_orders=64, max_symbols=4, band_ticks=256, max_qty=100_000)
    merged.update(params)
    ex = Exchange(ModelEngine(ModelParams(**merged)))
    return ex


def test_exchange_duplicate_token_per_firm():
    ex = exchange()
    ex.declare("AAA", PRICE, 1)
    [r] = ex.new_order("F1", "t1", "AAA", BUY, 100, PRICE - 100, 2)
    assert (r.type, r.firm, r.token, r.qty, r.price) == ("accepted", "F1", "t1", 100, PRICE - 100)
    [r] = ex.new_order("F1", "t1", "AAA", BUY, 100, PRICE - 100, 3)
    assert (r.type, r.reason) == ("rejected", Reason.DUPLICATE_TOKEN)
    [r] = ex.new_order("F2", "t1", "AAA", SELL, 100, PRICE + 100, 4)
    assert (r.type, r.firm) == ("accepted", "F2")
    # A token stays used after its order is gone.
    ex.cancel("F2", "t1", 5)
    [r] = ex.new_order("F2", "t1", "AAA", SELL, 100, PRICE + 100, 6)
    assert r.reason == Reason.DUPLICATE_TOKEN


def test_exchange_cancel_unknown_token():
    ex = exchange()
    ex.declare("AAA", PRICE, 1)
    [r] = ex.cancel("F1", "nope", 2)
    assert (r.type, r.reason) == ("cancel_rejected", Reason.UNKNOWN_TOKEN)
    [r] = ex.replace("F1", "nope", "t2", 100, PRICE, 3)
    assert (r.type, r.reason) == ("cancel_rejected", Reason.UNKNOWN_TOKEN)
    assert ex.seq == 1                      # only the declaration reached the engine


def test_exchange_price_off_tick():
    ex = exchange()
    ex.declare("AAA", PRICE, 1)
    [r] = ex.new_order("F1", "t1", "AAA", BUY, 100, PRICE + 37, 2)
    assert (r.type, r.reason) == ("rejected", Reason.PRICE_OFF_TICK)
    ex.new_order("F1", "t2", "AAA", BUY, 100, PRICE, 3)
    [r] = ex.replace("F1", "t2", "t3", 100, PRICE + 1, 4)
    assert (r.type, r.reason) == ("rejected", Reason.PRICE_OFF_TICK)


def test_exchange_auto_declares_symbol():
    events = []
    ex = Exchange(ModelEngine(ModelParams(max_orders=64, max_symbols=4, band_ticks=256)),
                  listeners=[events.extend])
    ex.declare("AAA", PRICE, 1)
    [r] = ex.new_order("F1", "t1", "BBB", BUY, 100, 523_400, 2)
    assert r.type == "accepted"
    info = ex.symbols["BBB"]
    assert (info.locate, info.tick, info.lot, info.reference, info.breaker) == \
        (2, 100, 100, 5234, int(5234 * 5 / 100))
    dirs = [e for e in events if e.kind == E.DIRECTORY]
    assert [(e.symbol, e.price, e.name) for e in dirs] == \
        [(1, 10_000, pack_name("AAA")), (2, 5234, pack_name("BBB"))]
    [r] = ex.new_order("F1", "t2", "CCC", BUY, 100, None, 3)
    assert (r.type, r.reason) == ("rejected", Reason.UNLISTED_SYMBOL)


def test_exchange_fill_reports_both_sides():
    ex = exchange()
    ex.declare("AAA", PRICE, 1)
    ex.new_order("F1", "s1", "AAA", SELL, 100, PRICE, 2)
    reports = ex.new_order("F2", "b1", "AAA", BUY, 150, PRICE + 200, 3, tif=Tif.IOC)
    assert [r.type for r in reports] == ["accepted", "executed", "executed", "canceled"]
    a, r1, r2, k = reports
    assert (r1.firm, r1.token, r1.side, r1.liquidity, r1.qty, r1.price, r1.leaves, r1.match) \
        == ("F1", "s1", "S", "A", 100, PRICE, 0, 1)
    assert (r2.firm, r2.token, r2.side, r2.liquidity, r2.qty, r2.price, r2.leaves, r2.match) \
        == ("F2", "b1", "B", "R", 100, PRICE, 50, 1)
    assert (k.firm, k.token, k.qty, k.leaves, k.reason) == ("F2", "b1", 50, 0, Reason.IOC)
    # Both orders are closed: their tokens are unknown to cancel.
    assert ex.cancel("F1", "s1", 4)[0].reason == Reason.UNKNOWN_TOKEN
    assert ex.orders == {}


def test_exchange_same_firm_stp_group():
    ex = exchange()
    ex.declare("AAA", PRICE, 1)
    ex.new_order("F1", "s1", "AAA", SELL, 100, PRICE, 2)
    reports = ex.new_order("F1", "b1", "AAA", BUY, 100, PRICE, 3)
    assert [(r.type, r.reason) for r in reports] == [("accepted", None), ("canceled", Reason.SELF_TRADE)]
    reports = ex.new_order("F2", "b1", "AAA", BUY, 100, PRICE, 4)
    assert [r.type for r in reports] == ["accepted", "executed", "executed"]


def test_exchange_replace_keeps_token_map():
    ex = exchange()
    ex.declare("AAA", PRICE, 1)
    ex.new_order("F1", "b1", "AAA", BUY, 200, PRICE - 100, 2)
    [r] = ex.replace("F1", "b1", "b2", 100, PRICE - 100, 3)          # KEPT
    assert (r.type, r.token, r.new_token, r.qty, r.previous_token) == \
        ("replaced", "b2", "b2", 100, "b1")
    assert ex.orders[("F1", "b2")].order_id == 1
    [r] = ex.replace("F1", "b2", "b3", 300, PRICE - 200, 4)          # MOVED: a new order id
    assert (r.type, r.qty, r.price, r.order_id) == ("replaced", 300, PRICE - 200, 3)
    assert ex.cancel("F1", "b2", 5)[0].reason == Reason.UNKNOWN_TOKEN
    [r] = ex.cancel("F1", "b3", 6, qty=100)
    assert (r.type, r.token, r.qty, r.leaves) == ("canceled", "b3", 200, 100)
    # A replace the engine refuses (outside the band) leaves the original standing.
    [r] = ex.replace("F1", "b3", "b4", 100, PRICE * 2, 7)
    assert (r.type, r.token, r.reason) == ("rejected", "b4", Reason.OUT_OF_BAND)
    assert ("F1", "b3") in ex.orders
