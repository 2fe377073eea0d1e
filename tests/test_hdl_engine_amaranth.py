"""The gateware matching engine (``tickwire.hdl.matching_engine``) in Amaranth's simulator against
the reference model, event for event and bit for bit.

Each directed scenario is written with the model ``Driver`` (which also asserts that the scenario
reaches the behaviour it is about); its command history is then played into the gateware with
random idle cycles on ``i_cmd`` and random backpressure on ``o_event``, and every event's bit
vector must equal the model's ``Event.to_int()``. Random streams come from the session generator
(through the host ``Exchange``) and from an adversarial generator that also sends malformed
commands (unknown actions and symbols, bad slots, invalid STP codes, out-of-band prices).
"""

import random

import pytest
from amaranth.sim import Simulator
from model_driver import BUY, SELL, Action, Command, Driver, E, R, ReplaceMode, Stp, Tif
from tickwire.exchange.front import Exchange
from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.offline.commands import apply_row
from tickwire.offline.gen import generate
from tickwire.protocol.link import Event, ModelParams, pack_name
from tickwire.sim.model import ExchangeModel

# -- harness ----------------------------------------------------------------------------------

def simulate(params, commands, seed=0, idle=0.3, stall=0.3, **engine):
    """Play ``commands`` into a MatchingEngine; return every event's bit vector, in order.

    The driver waits a random number of cycles before each command (probability ``idle`` per
    cycle), the monitor drops ``ready`` with probability ``stall``; the monitor also checks the
    stream rule that a payload offered and not taken stays offered, unchanged. ``engine``: the
    :class:`MatchingEngine`'s options.
    """
    dut = MatchingEngine(params, **engine)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
    out = []

    async def driver(ctx):
        for cmd in commands:
            while rng_in.random() < idle:
                await ctx.tick()
            ctx.set(dut.i_cmd.payload.as_value(), cmd.to_int())
            ctx.set(dut.i_cmd.valid, 1)
            await ctx.tick().until(dut.i_cmd.ready)
            ctx.set(dut.i_cmd.valid, 0)

    async def monitor(ctx):
        done = 0
        held = None
        payload = dut.o_event.payload.as_value()
        while done < len(commands):
            ready = rng_out.random() >= stall
            ctx.set(dut.o_event.ready, ready)
            _, _, valid, value = await ctx.tick().sample(dut.o_event.valid, payload)
            if held is not None:
                assert valid and value == held, "o_event changed while stalled"
            held = None
            if valid and ready:
                out.append(value)
                done += Event.from_int(value).last
            elif valid:
                held = value

    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    return out


def expected(params, commands):
    model = ExchangeModel(params)
    return [[e.to_int() for e in model.process(cmd)] for cmd in commands]


def compare(params, commands, seed=0, **kw):
    """Assert the gateware's events equal the model's; return the model's events per command."""
    want = expected(params, commands)
    got = simulate(params, commands, seed=seed, **kw)
    flat = [(i, value) for i, events in enumerate(want) for value in events]
    for n, ((i, value), hdl) in enumerate(zip(flat, got)):
        if value != hdl:
            context = "\n".join(f"  #{j}: {commands[j]}" for j in range(max(0, i - 3), i + 1))
            raise AssertionError(
                f"event {n} (command #{i}) differs\n{context}\n"
                f"  model: {Event.from_int(value)}\n  hdl:   {Event.from_int(hdl)}\n"
                f"  model events of the command: {[Event.from_int(v) for v in want[i]]}")
    assert len(got) == len(flat), f"{len(got)} events from the gateware, {len(flat)} expected"
    return want


def compare_covered(params, commands, tally, required, seed=0, **kw):
    """:func:`compare`, after asserting that the stream hit every bin of ``required`` (names
    counted in ``tally``)."""
    missing = [name for name in required if not tally[name]]
    assert not missing, f"bins not hit: {missing}"
    return compare(params, commands, seed=seed, **kw)


def check(d, seed=0):
    """Play a model Driver's whole history into the gateware and compare."""
    return compare(d.params, [cmd for cmd, _ in d.history], seed=seed)


def fresh(**params):
    d = Driver(**params)
    d.declare()
    return d


def has(events, kind, **fields):
    return any(e.kind == kind and all(getattr(e, k) == v for k, v in fields.items())
               for e in events)


# -- directed ---------------------------------------------------------------------------------

def test_declare_halt_resume_system_and_malformed():
    d = Driver(max_symbols=3)
    d.declare(symbol=1, reference=100, breaker=5)
    d.declare(symbol=2, reference=20, lot=50, tick=1)                  # band clamped at 1
    assert d.book(2).band_low == 1
    for kw in (dict(symbol=1), dict(symbol=0), dict(symbol=4), dict(symbol=3, tick=0),
               dict(symbol=3, lot=0), dict(symbol=3, reference=0)):
        assert has(d.declare(**kw), E.REJECT, reason=R.BAD_DECLARATION)
    d.halt(1)
    d.halt(1)
    d.resume(1)
    d.resume(2)
    for symbol in (0, 3, 4, 0xFFFF):
        assert has(d.halt(symbol), E.REJECT, reason=R.UNKNOWN_SYMBOL)
    for code in "OSQAEC":
        d.system(code)
    d.run(Command(action=Action.NOP, order_id=7))
    d.run(Command(action=15, order_id=8, symbol=1))
    check(d)


def test_new_validation_order_and_rejects():
    d = fresh(max_qty=1000)
    d.declare(symbol=2)
    d.halt(2)
    cases = [
        (dict(symbol=0), R.UNKNOWN_SYMBOL), (dict(symbol=3), R.UNKNOWN_SYMBOL),
        (dict(symbol=2, qty=0), R.HALTED), (dict(qty=0), R.BAD_QTY),
        (dict(qty=1001), R.BAD_QTY), (dict(min_qty=101), R.BAD_MIN_QTY),
        (dict(min_qty=101, stp=3), R.BAD_MIN_QTY), (dict(stp=3), R.BAD_STP),
        (dict(stp=3, price=67), R.BAD_STP), (dict(stp=3, market=True), R.BAD_STP),
        (dict(price=67), R.OUT_OF_BAND), (dict(price=132), R.OUT_OF_BAND),
        (dict(price=0), R.OUT_OF_BAND),
    ]
    for kw, reason in cases:
        args = dict(qty=100, price=100) | kw
        assert has(d.buy(args.pop("qty"), args.pop("price"), **args), E.REJECT, reason=reason)
    for price in (68, 131):
        d.buy(100, price, tif=Tif.GTC)
        d.sell(100, price, tif=Tif.IOC)
    d.sell(1000, 131)
    d.buy(5, market=True, price=999)
    check(d, seed=1)


def test_rest_priority_partial_fills_and_multi_level_walk():
    d = fresh()
    d.declare(symbol=2)
    for price, qty in ((100, 100), (101, 50), (100, 70), (102, 30), (101, 20)):
        d.sell(qty, price)
    d.buy(99, 99, symbol=2)
    d.buy(30, 100)                                             # partial at the head
    events = d.buy(250, 102)                                   # walks three levels, rests
    assert sum(e.kind == E.EXECUTE for e in events) >= 4 and has(events, E.ADD)
    d.sell(20, 90, tif=Tif.IOC, symbol=2)                      # other symbol
    d.sell(500, market=True)
    d.buy(500, market=True)
    d.sell(60, 95)
    d.sell(60, 95, tif=Tif.GTC)
    d.buy(30, 96, tif=Tif.IOC)
    check(d, seed=2)


@pytest.mark.parametrize("tif", [Tif.FOK, Tif.DAY, Tif.IOC])
def test_fok_and_min_qty(tif):
    d = fresh()
    for price, qty, firm in ((100, 50, 1), (101, 50, 2), (101, 40, 1), (102, 100, 3),
                             (103, 100, 0)):
        d.sell(qty, price, firm=firm)
    for stp in (Stp.CANCEL_NEWEST, Stp.CANCEL_OLDEST, Stp.CANCEL_BOTH):
        for need in (90, 141, 240, 400):
            if tif == Tif.FOK:
                d.buy(need, 103, tif=tif, firm=1, stp=stp)
            else:
                d.buy(400, 102, tif=tif, firm=1, stp=stp, min_qty=need)
            d.sell(50, 100, firm=1)
            d.sell(100, 102, firm=3)
    d.buy(10, 103, tif=Tif.FOK)
    d.buy(10_000, market=True, tif=Tif.FOK)
    d.buy(10, market=True, min_qty=10)
    check(d, seed=3)


def test_fok_count_stops_before_breaker():
    d = Driver()
    d.declare(reference=100, breaker=3)
    d.sell(100, 102)
    d.sell(100, 104)
    assert has(d.buy(150, 104, tif=Tif.FOK), E.KILL, reason=R.FOK)
    assert has(d.buy(150, 104, min_qty=150), E.KILL, reason=R.MIN_QTY)
    events = d.buy(150, 104)
    assert has(events, E.TRADING, halted=1, reason=R.BREAKER)
    assert has(d.buy(10, 100), E.REJECT, reason=R.HALTED)
    d.cancel(2, 1)
    d.resume()
    d.buy(100, 90)
    d.sell(200, 90, tif=Tif.IOC)
    d.resume()
    d.sell(100, 95)
    check(d, seed=4)


@pytest.mark.parametrize("stp", [Stp.CANCEL_NEWEST, Stp.CANCEL_OLDEST, Stp.CANCEL_BOTH, 3])
def test_self_trade_prevention(stp):
    d = fresh()
    for qty, firm in ((50, 2), (100, 1), (100, 2), (30, 1), (40, 0)):
        d.sell(qty, 100, firm=firm)
    d.sell(100, 101, firm=1)
    d.buy(400, 101, firm=1, stp=stp)
    d.buy(100, 101, firm=0, stp=stp)
    d.buy(100, 101, firm=2, stp=stp, tif=Tif.IOC)
    d.buy(50, 105, firm=1, stp=stp, tif=Tif.FOK)
    check(d, seed=5)


def test_cancel():
    d = fresh()
    d.buy(100, 100)                                            # 1, slot 0
    d.buy(100, 100)                                            # 2, slot 1
    d.buy(100, 100)                                            # 3, slot 2
    d.buy(100, 99)                                             # 4, slot 3
    assert has(d.cancel(2, 1, qty=40), E.REDUCE, qty=60, remaining=40)
    for qty in (40, 100):
        assert has(d.cancel(2, 1, qty=qty), E.CANCEL_REJECT, reason=R.NOTHING_TO_CANCEL)
    for order_id, slot in ((9, 1), (2, 5), (2, 16), (2, 0xFFFF), (0, 7)):
        assert has(d.cancel(order_id, slot), E.CANCEL_REJECT, reason=R.NOT_FOUND)
    d.cancel(2, 1)                                             # middle of the level
    d.cancel(3, 2)                                             # tail
    d.cancel(1, 0)                                             # head and last
    for symbol in (0, 2, 3):                                   # another symbol: not found
        assert has(d.cancel(4, 3, symbol=symbol), E.CANCEL_REJECT, reason=R.NOT_FOUND)
    d.cancel(4, 3)
    d.buy(10, 100)
    d.buy(10, 100)
    d.buy(10, 100)
    d.cancel(d.next_id - 3, d.slot_of(d.next_id - 3))          # head of three
    d.sell(30, 100)
    check(d, seed=6)


def test_replace_modes():
    d = fresh()
    d.buy(100, 100)                                            # 1, slot 0
    d.buy(100, 100)                                            # 2, slot 1
    d.buy(100, 100)                                            # 3, slot 2
    d.sell(100, 105)                                           # 4, slot 3
    d.sell(50, 106)                                            # 5, slot 4
    assert has(d.replace(2, 1, 60, 100), E.REPLACE, mode=ReplaceMode.KEPT)
    assert has(d.replace(1, 0, 100, 100, new_order_id=20), E.REPLACE, mode=ReplaceMode.KEPT)
    assert has(d.replace(2, 1, 80, 100), E.REPLACE, mode=ReplaceMode.MOVED)  # size up
    d.replace(3, 2, 100, 101)                                  # middle leaves, new level
    assert has(d.replace(4, 3, 100, 101), E.REPLACE, mode=ReplaceMode.CROSSED)
    d.sell(30, 104)
    d.replace(d.next_id - 1, d.slot_of(d.next_id - 1), 500, 100)   # crosses two levels, rests
    d.buy(20, 90, firm=1)
    d.sell(20, 95, firm=1)
    d.replace(d.next_id - 1, d.slot_of(d.next_id - 1), 20, 90)     # crossed, STP kills
    for qty, price in ((0, 100), (10_001, 100), (10, 67), (10, 132)):
        d.replace(1, 0, qty, price)
    d.replace(1, 7, 10, 100)
    d.replace(99, 0, 10, 100)
    d.halt()
    d.replace(1, 0, 10, 100)
    d.cancel(1, 0, qty=1)
    d.resume()
    d.sell(10_000, market=True)
    check(d, seed=7)


def test_replace_symbol_checked_and_reject_carries_the_orders_symbol():
    d = fresh()
    d.declare(symbol=2, reference=200)
    d.buy(100, 100)                                            # 1, slot 0, symbol 1
    d.sell(100, 205, symbol=2)                                 # 2, slot 1, symbol 2
    for symbol in (0, 2, 3):
        assert has(d.replace(1, 0, 50, 100, symbol=symbol), E.CANCEL_REJECT,
                   reason=R.NOT_FOUND, symbol=symbol)
    assert has(d.replace(2, 1, 50, 205, symbol=1), E.CANCEL_REJECT, reason=R.NOT_FOUND)
    assert has(d.replace(2, 1, 0, 205, symbol=2), E.REJECT, reason=R.BAD_QTY, symbol=2)
    d.halt(2)
    assert has(d.replace(2, 1, 50, 205, symbol=2), E.REJECT, reason=R.HALTED, symbol=2)
    d.resume(2)
    assert has(d.replace(2, 1, 50, 999, symbol=2), E.REJECT, reason=R.OUT_OF_BAND, symbol=2)
    assert has(d.replace(2, 1, 50, 206, symbol=2), E.REPLACE, symbol=2)
    assert has(d.replace(1, 0, 50, 100), E.REPLACE, mode=ReplaceMode.KEPT)
    check(d, seed=9)


def test_replace_crossing_breaker_and_fill_all():
    d = Driver()
    d.declare(reference=100, breaker=2)
    d.sell(100, 101)                                           # 1, slot 0
    d.sell(100, 103)                                           # 2, slot 1
    d.buy(50, 99)                                              # 3, slot 2
    d.replace(3, 2, 50, 101)                                   # crossed, filled, slot freed
    d.buy(300, 98)
    assert has(d.replace(5, 2, 300, 103), E.TRADING, reason=R.BREAKER)
    d.resume()
    d.buy(10, 90)
    check(d, seed=8)


def test_book_full_slots_and_levels():
    d = fresh(max_orders=4)
    for i in range(4):
        d.buy(100, 90 + i)
    assert has(d.buy(100, 80), E.REJECT, reason=R.BOOK_FULL)
    assert has(d.sell(100, 93), E.REJECT, reason=R.BOOK_FULL)
    d.sell(50, 93, tif=Tif.IOC)
    d.sell(50, 93, tif=Tif.FOK)
    d.buy(100, 85)
    d.cancel(2, 1)
    d.cancel(3, 2)
    d.buy(100, 80)
    d.buy(100, 80)
    d.sell(500, market=True)
    for _ in range(5):
        d.buy(100, 90)
    check(d, seed=9)

    d = fresh(max_levels=2)
    d.buy(100, 100)
    d.buy(100, 100)
    d.buy(100, 99)
    assert has(d.buy(100, 98), E.REJECT, reason=R.BOOK_FULL)
    assert has(d.replace(1, 0, 100, 98), E.REJECT, reason=R.BOOK_FULL)
    d.replace(1, 0, 100, 99)
    d.replace(2, 1, 100, 97)
    d.sell(100, 120)
    d.sell(100, 121)
    d.sell(100, 122)
    d.buy(100, 97, tif=Tif.IOC)
    check(d, seed=10)


def test_day_expiry_in_slot_order():
    d = fresh()
    d.declare(symbol=2)
    for i in range(10):
        side = BUY if i % 2 else SELL
        price = 95 - i if side == BUY else 105 + i
        d.new(side, 100, price, tif=Tif.DAY if i % 3 else Tif.GTC, symbol=1 + i % 2)
    d.cancel(3, 2)
    d.sell(100, 110, tif=Tif.GTC)
    events = d.system("M")
    assert sum(e.kind == E.DELETE and e.reason == R.EXPIRED for e in events) >= 5
    d.system("M")                                              # nothing left to expire
    d.buy(100, 90)
    d.system("E")
    check(d, seed=11)


def test_expiry_on_full_book():
    d = fresh(max_orders=16)
    for i in range(16):
        d.buy(10, 70 + i % 8, tif=Tif.DAY if i != 7 else Tif.GTC)
    d.system("M")
    for i in range(16):
        d.sell(10, 120 - i % 4, tif=Tif.DAY)
    d.system("M")
    check(d, seed=12)


def test_odd_lots():
    d = fresh()
    d.buy(99, 100)
    d.buy(100, 100)
    d.buy(150, 99)
    d.sell(120, 100)
    d.sell(1, 101)
    check(d, seed=13)


# -- random -----------------------------------------------------------------------------------

class Recorder:
    """An engine for ``Exchange`` that runs the model and records every command."""

    def __init__(self, params):
        self.params = params
        self.model = ExchangeModel(params)
        self.commands = []

    def process(self, cmd):
        self.commands.append(cmd)
        return self.model.process(cmd)


def session_commands(orders, seed, symbols, params):
    """A generated session (``tickwire.gen``) as engine commands, closed with M, E, C."""
    rows = generate(orders, seed=seed, symbols=symbols, params=params)
    recorder = Recorder(params)
    exchange = Exchange(recorder)
    for code in "OSQ":
        exchange.system(code, rows[0].time)
    for row in rows:
        apply_row(exchange, row)
    for code in "MEC":
        exchange.system(code, exchange.timestamp)
    return recorder.commands


def adversarial_commands(n, seed, params):
    """Random commands that go everywhere, valid or not, aimed at live orders most of the time."""
    rng = random.Random(seed)
    model = ExchangeModel(params)
    out = []
    order_id = 0
    references = {}

    def send(cmd):
        cmd.seq, cmd.timestamp = len(out) + 1, 1000 + 3 * len(out)
        out.append(cmd)
        model.process(cmd)

    for locate in range(1, params.max_symbols + 1):
        references[locate] = rng.randrange(10, 400)
        send(Command(action=Action.DECLARE, symbol=locate, price=references[locate],
                     qty=rng.choice((1, 10, 100)), tick=100, name=pack_name(f"S{locate}"),
                     breaker=rng.choice((0, 0, 4, 12, params.band_ticks // 3))))
    half = params.band_ticks // 2
    while len(out) < n:
        r = rng.random()
        live = [o for o in model.slots if o is not None]
        symbol = rng.randrange(1, params.max_symbols + 1) if rng.random() < 0.97 \
            else rng.choice((0, params.max_symbols + 1))
        ref = references.get(symbol, 100)
        price = max(0, ref + rng.randrange(-half - 3, half + 4)) if rng.random() < 0.1 \
            else max(1, ref + int(rng.gauss(0, half / 4)))
        if r < 0.55:
            order_id += 1
            qty = rng.choice((rng.randrange(1, 300), rng.randrange(1, 3000), 0,
                              params.max_qty, params.max_qty + 1)) \
                if rng.random() < 0.05 else rng.randrange(1, 400)
            send(Command(action=Action.NEW, symbol=symbol, side=rng.randrange(2),
                         tif=rng.choice((0, 0, 1, 1, 2, 3)), market=int(rng.random() < 0.05),
                         stp=rng.choice((0, 1, 2, 3)) if rng.random() < 0.9 else 3,
                         firm=rng.randrange(4), price=price, qty=qty,
                         min_qty=rng.randrange(0, qty + 50) if rng.random() < 0.1 else 0,
                         order_id=order_id))
        elif r < 0.93:
            order = rng.choice(live) if live and rng.random() < 0.9 else None
            slot = order.slot if order else rng.choice((rng.randrange(params.max_orders),
                                                        params.max_orders, 0xFFFF))
            oid = order.order_id if order else rng.randrange(order_id + 2)
            open_qty = order.qty if order else 100
            # Mostly the order's own symbol (another one is refused as NOT_FOUND).
            if order and rng.random() < 0.9:
                symbol = order.symbol
                price = max(1, references[symbol] + int(rng.gauss(0, half / 4)))
            if r < 0.75:
                send(Command(action=Action.CANCEL, symbol=symbol, order_id=oid, slot=slot,
                             qty=rng.choice((0, 0, rng.randrange(0, open_qty + 2)))))
            else:
                order_id += 1
                if order and rng.random() < 0.4:
                    price = order.price
                send(Command(action=Action.REPLACE, symbol=symbol, order_id=oid, slot=slot,
                             new_order_id=order_id, price=price,
                             qty=rng.choice((rng.randrange(1, open_qty + 1),
                                             rng.randrange(1, 400), 0))))
        elif r < 0.97:
            send(Command(action=rng.choice((Action.HALT, Action.RESUME, Action.RESUME)),
                         symbol=symbol))
        elif r < 0.99:
            send(Command(action=Action.SYSTEM, code=ord(rng.choice("OSQMMEC"))))
        else:
            send(Command(action=rng.choice((Action.NOP, Action.DECLARE, 8, 15)),
                         symbol=symbol, price=price, qty=100, tick=1, order_id=order_id))
    return out


SMALL = ModelParams(max_orders=16, max_symbols=2, band_ticks=16, max_qty=5000)
MEDIUM = ModelParams(max_orders=64, max_symbols=3, band_ticks=64, max_qty=100_000)
TIGHT = ModelParams(max_orders=32, max_symbols=4, band_ticks=32, max_qty=1000, max_levels=4)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_session(seed):
    params = MEDIUM if seed != 2 else SMALL
    commands = session_commands(600, seed, 3 if params is MEDIUM else 2, params)
    compare(params, commands, seed=seed)


@pytest.mark.parametrize("params,seed", [(SMALL, 11), (MEDIUM, 12), (TIGHT, 13), (TIGHT, 14)])
def test_random_adversarial(params, seed):
    compare(params, adversarial_commands(1200, seed, params), seed=seed)


def test_without_best_price_registers():
    """The engine as the iCEBreaker builds it (``best_price=False``: every NEW searches)."""
    compare(TIGHT, adversarial_commands(1200, 15, TIGHT), seed=15, best_price=False)


@pytest.mark.parametrize("params,seed", [(TIGHT, 21), (MEDIUM, 22)])
def test_order_ram_output_register(params, seed):
    """The engine as the ULX3S builds it (``order_register=True``: an order read takes a cycle
    more, through the ``*_READ`` states), against the model."""
    compare(params, adversarial_commands(1200, seed, params), seed=seed, order_register=True)


# -- engine transport --------------------------------------------------------------------------

def test_replay_amaranth_engine_writes_the_model_pcap(tmp_path):
    from tickwire.offline.commands import write_command_file
    from tickwire.offline.replay import replay

    params = ModelParams(max_orders=128, max_symbols=4, band_ticks=128, max_qty=1_000_000)
    path = tmp_path / "day.csv"
    write_command_file(path, generate(300, seed=5, symbols=3, params=params))
    for engine in ("model", "amaranth"):
        replay(str(path), engine=engine, pcap_path=str(tmp_path / f"{engine}.pcap"),
               reports_path=str(tmp_path / f"{engine}.jsonl"), params=params)
    assert (tmp_path / "model.pcap").read_bytes() == (tmp_path / "amaranth.pcap").read_bytes()
    assert (tmp_path / "model.jsonl").read_text() == (tmp_path / "amaranth.jsonl").read_text()


# -- occupancy map ------------------------------------------------------------------------------

@pytest.mark.parametrize("symbols,band,word,seed", [(2, 16, None, 1), (1, 40, 8, 2),
                                                    (3, 64, None, 3), (2, 100, 16, 4)])
def test_occupancy_map_search_and_update(symbols, band, word, seed):
    """The block-RAM occupancy map against a set of bits: random sets and clears (some in the same
    cycle as a search, as the engine does: a clear strictly before where it looks), searches from
    random offsets in both directions, the result held for a few cycles, and the counts (which
    follow an update one cycle later than its read)."""
    from tickwire.hdl.occupancy_map import OccupancyMap

    dut = OccupancyMap(symbols, band, word)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    rng = random.Random(seed)
    bits = {(s, side): set() for s in range(symbols) for side in (0, 1)}

    def best(book, side, start, after):
        if side:        # ask: lowest >= start (> with after)
            found = [o for o in bits[book] if o > start - (not after)]
            return min(found) if found else None
        found = [o for o in bits[book] if o < start + (not after)]
        return max(found) if found else None

    async def bench(ctx):
        for _ in range(1500):
            sym, side = rng.randrange(symbols), rng.randrange(2)
            book = (sym, side)
            search = rng.random() < 0.5
            start, after = rng.randrange(band), rng.randrange(2)
            update = None
            if search and bits[book] and rng.random() < 0.5:
                # A clear the engine may do with a search: strictly before where it looks
                # (the engine clears the level it walked and searches after it).
                behind = [o for o in bits[book]
                          if (o < start + after if side else o > start - after)]
                if behind:
                    update = (sym, side, rng.choice(behind), 0)
            elif not search:
                usym, uside = rng.randrange(symbols), rng.randrange(2)
                offset = rng.randrange(band)
                update = (usym, uside, offset, int(offset not in bits[(usym, uside)]))
            # The counts change with the write-back: one tick after the update they still
            # show the sets before it.
            before = {key: len(members) for key, members in bits.items()}
            if update:
                usym, uside, offset, value = update
                ctx.set(dut.update.en, 1)
                ctx.set(dut.update.sym, usym)
                ctx.set(dut.update.side, uside)
                ctx.set(dut.update.offset, offset)
                ctx.set(dut.update.value, value)
                (bits[(usym, uside)].add if value else bits[(usym, uside)].discard)(offset)
            if search:
                ctx.set(dut.search.start, 1)
                ctx.set(dut.search.sym, sym)
                ctx.set(dut.search.side, side)
                ctx.set(dut.search.origin, start)
                ctx.set(dut.search.after, after)
            await ctx.tick()
            ctx.set(dut.update.en, 0)
            ctx.set(dut.search.start, 0)
            if search:
                want = best(book, side, start, after)
                assert not ctx.get(dut.search.valid)
                await ctx.tick()                    # cycle B: the result is registered
                for _ in range(rng.randrange(1, 3)):
                    assert ctx.get(dut.search.valid)
                    found, offset = ctx.get(dut.search.found), ctx.get(dut.search.offset)
                    assert (offset if found else None) == want, (book, start, after, bits[book])
                    await ctx.tick()
            for (s, sd), members in bits.items():
                ctx.set(dut.probe.sym, s)
                ctx.set(dut.probe.side, sd)
                stale = update is not None and not search
                assert ctx.get(dut.probe.count) == (before[(s, sd)] if stale else len(members))
            if update and not search:
                await ctx.tick()
                for (s, sd), members in bits.items():
                    ctx.set(dut.probe.sym, s)
                    ctx.set(dut.probe.side, sd)
                    assert ctx.get(dut.probe.count) == len(members)

    sim.add_testbench(bench)
    sim.run()


def test_spram_level_table_elaborates_to_sb_spram256ka():
    """``spram=True`` puts the level table in iCE40UP5K SPRAMs (one 16-bit block for the 9-bit
    heads, one for the 10-bit tails with their occupied bits), instead of the simulation model
    used everywhere else."""
    from amaranth.back import rtlil

    params = ModelParams(max_orders=512, max_symbols=2, band_ticks=1024, max_qty=1_000_000)
    text = rtlil.convert(MatchingEngine(params, spram=True), name="engine")
    assert text.count("cell \\SB_SPRAM256KA ") == 2
    assert "SB_SPRAM256KA" not in rtlil.convert(MatchingEngine(params), name="engine")


# -- hazard streams ------------------------------------------------------------------------------

HAZARD = ModelParams(max_orders=32, max_symbols=2, band_ticks=64, max_qty=5000)


@pytest.mark.parametrize("seed,idle,stall", [(2, 0.0, 0.0), (3, 0.0, 0.3), (5, 0.1, 0.1)])
def test_hazard_stream(seed, idle, stall):
    """Commands aimed at the previous command's level, slot and order, offered back to back;
    every hazard bin is hit and every event equals the model's."""
    from hazards import REQUIRED_BINS, hazard_bins, hazard_commands

    commands = hazard_commands(1500, seed, HAZARD)
    bins = hazard_bins(commands, HAZARD)
    missing = [name for name in REQUIRED_BINS if not bins.get(name)]
    assert not missing, f"hazard bins not hit: {missing}"
    compare(HAZARD, commands, seed=seed, idle=idle, stall=stall)


@pytest.mark.parametrize("seed,stall", [(7, 0.0), (8, 0.3)])
def test_hazard_stream_order_register(seed, stall):
    """The hazard streams, back to back, with the order RAM's output register."""
    from hazards import hazard_commands

    compare(HAZARD, hazard_commands(1500, seed, HAZARD), seed=seed, idle=0.0, stall=stall,
            order_register=True)
