"""The engine's walker moving from price level to price level (``MatchingEngine(lookahead=...)``)
under commands aimed at the level boundary, back to back.

Each round rests a few contra levels of one to three orders and sends one aggressor at them:
a sweep that empties one, two or many levels, often exactly (its last fill empties a level),
or stops at its limit with a level beyond it (the walker's speculative read of that level's
head is then dropped); an STP firm on the first order of a later level; a walk into the
breaker; a FOK or minimum-quantity order whose pre-count spans levels; a replace that crosses
several levels. The round's leftovers are cancelled. Every bin is hit, every event equals the
model's, with and without backpressure, best-price registers and the order RAM's output
register, and engines that use a wrong speculative read are caught.
"""

import random
from collections import Counter

import pytest
from test_hdl_engine_amaranth import compare, compare_covered
from tickwire.hdl import engine_control, matching_engine
from tickwire.hdl.level_table import LevelTable
from tickwire.hdl.walk_ahead import WalkAhead
from tickwire.protocol.link import (
    Action,
    Command,
    EventKind,
    ModelParams,
    Reason,
    ReplaceMode,
    Side,
    Tif,
    pack_name,
)
from tickwire.sim.model import ExchangeModel

WALKS = ModelParams(max_orders=24, max_symbols=2, band_ticks=32, max_qty=5000)
REFERENCE = 100
#: Symbol 2 has a breaker this many dollars-in-ticks from its reference (prices are in ticks).
BREAKER = 6

REQUIRED = ("empties 1 level", "empties 2 levels", "empties 3+ levels",
            "last fill empties a level", "stops at the limit, a level beyond",
            "empties the side", "ends inside a level", "STP delete at a level's head",
            "STP stop at a level's head", "breaker at the next level",
            "pre-count over levels: killed", "pre-count over levels: filled",
            "crossing replace over levels")

_E = EventKind


def walk_commands(n, seed, params=WALKS):
    """``(commands, tally)``: about ``n`` commands in rounds of rest-then-aggress; ``tally``
    counts the bins of :data:`REQUIRED` the aggressors hit (from the model's events)."""
    rng = random.Random(seed)
    model = ExchangeModel(params)
    out, tally = [], Counter()
    ids = iter(range(1, 1 << 30))

    def send(cmd):
        cmd.seq, cmd.timestamp = len(out) + 1, 1000 + len(out)
        out.append(cmd)
        return model.process(cmd)

    for sym, breaker in ((1, 0), (2, BREAKER)):
        send(Command(action=Action.DECLARE, symbol=sym, price=REFERENCE, qty=100, tick=100,
                     breaker=breaker, name=pack_name(f"W{sym}")))
    while len(out) < n:
        sym, side = rng.choice((1, 2)), rng.choice((Side.BUY, Side.SELL))
        away = 1 if side == Side.SELL else -1           # the resting side's prices grow away
        prices, price = [], REFERENCE + away * rng.randrange(0, 3)
        for _ in range(rng.choice((1, 2, 3, 5, 8))):
            prices.append(price)
            price += away * rng.choice((1, 1, 2))
        firms = []
        for p in prices:
            for _ in range(rng.choice((1, 1, 2, 3))):
                firm = rng.choice((0, 0, 1, 2))
                firms.append(firm)
                send(Command(action=Action.NEW, symbol=sym, side=side, tif=Tif.GTC, price=p,
                             qty=rng.choice((50, 100)), firm=firm, order_id=next(ids)))
        book = model.symbols[sym].sides[side]
        depth = [sum(o.qty for o in book.levels[p].values()) for p in prices if p in book.levels]
        cumulative = [sum(depth[:i + 1]) for i in range(len(depth))] or [100]
        qty = rng.choice(cumulative) + rng.choice((0, 0, 0, 25, -25))
        limit = rng.choice(prices + [prices[-1] + away * 3])
        kind = rng.choice(("sweep", "sweep", "stp", "fok", "min", "replace"))
        contra = side ^ 1
        fields = {"symbol": sym, "side": contra, "price": limit, "qty": max(1, qty),
                  "tif": rng.choice((Tif.IOC, Tif.DAY, Tif.GTC)), "order_id": next(ids)}
        if kind == "stp":
            fields.update(firm=rng.choice(firms[1:] or firms) or 1, stp=rng.randrange(3))
        elif kind == "fok":
            fields.update(tif=Tif.FOK, qty=max(1, qty + rng.choice((0, 25))))
        elif kind == "min":
            fields.update(min_qty=min(max(1, qty), rng.choice(cumulative) + 25))
        before = dict(book.levels)
        if kind == "replace":
            mine = next(ids)
            send(Command(action=Action.NEW, symbol=sym, side=contra, tif=Tif.GTC,
                         price=REFERENCE - away * 8, qty=50, order_id=mine))
            slot = next(o.slot for o in model.slots if o is not None and o.order_id == mine)
            events = send(Command(action=Action.REPLACE, symbol=sym, order_id=mine, slot=slot,
                                  new_order_id=fields["order_id"], price=limit,
                                  qty=fields["qty"]))
        else:
            events = send(Command(action=Action.NEW, **fields))
        _tally(tally, kind, events, before, book.levels, limit, away)
        for o in [o for o in model.slots if o is not None]:
            send(Command(action=Action.CANCEL, symbol=o.symbol, order_id=o.order_id,
                         slot=o.slot))
        if model.symbols[sym].halted:
            send(Command(action=Action.RESUME, symbol=sym))
    return out, tally


def _tally(tally, kind, events, before, after, limit, away):
    """The bins one aggressor hit: ``before`` / ``after`` are its contra side's levels, whose
    prices grow ``away`` (±1) from the aggressor's side."""
    walked = [e for e in events if e.kind == _E.EXECUTE
              or (e.kind == _E.DELETE and e.reason == Reason.SELF_TRADE)]
    emptied = [p for p in before if p not in after]
    prices = list(dict.fromkeys(e.price for e in walked))
    if emptied:
        tally[f"empties {min(len(emptied), 3)}{'+' if len(emptied) >= 3 else ''} "
              f"level{'s' if len(emptied) > 1 else ''}"] += 1
    fills = [e for e in events if e.kind == _E.EXECUTE]
    if fills and fills[-1].last and fills[-1].price in emptied:
        tally["last fill empties a level"] += 1
    if emptied and not after:
        tally["empties the side"] += 1
    if walked and walked[-1].price in after:
        tally["ends inside a level"] += 1
    left = events[-1].kind in (_E.ADD, _E.KILL) and events[-1].reason != Reason.SELF_TRADE
    if emptied and left and any((p - limit) * away > 0 for p in after):
        tally["stops at the limit, a level beyond"] += 1
    for i, e in enumerate(walked):
        if e.kind == _E.DELETE and i and walked[i - 1].price != e.price:
            tally["STP delete at a level's head"] += 1
    if emptied and events[-1].kind == _E.KILL and events[-1].reason == Reason.SELF_TRADE \
            and walked and walked[-1].price in emptied:
        tally["STP stop at a level's head"] += 1
    if fills and any(e.kind == _E.TRADING and e.reason == Reason.BREAKER for e in events):
        tally["breaker at the next level"] += 1
    if kind in ("fok", "min") and len(before) >= 2:
        killed = any(e.kind == _E.KILL and e.reason in (Reason.FOK, Reason.MIN_QTY)
                     for e in events)
        if killed or len(prices) >= 2:
            tally[f"pre-count over levels: {'killed' if killed else 'filled'}"] += 1
    if kind == "replace" and len(prices) >= 2 and any(
            e.kind == _E.REPLACE and e.mode == ReplaceMode.CROSSED for e in events):
        tally["crossing replace over levels"] += 1


ENGINES = [
    pytest.param(1, 0.0, {}, id="back to back"),
    pytest.param(2, 0.3, {}, id="backpressure"),
    pytest.param(3, 0.0, {"best_price": False}, id="no best-price registers"),
    pytest.param(4, 0.0, {"order_register": True}, id="order register"),
    pytest.param(5, 0.3, {"order_register": True, "best_price": False},
                 id="order register, backpressure"),
    pytest.param(6, 0.2, {"lookahead": False}, id="without the look ahead"),
]


@pytest.mark.parametrize("seed,stall,engine", ENGINES)
def test_level_walks_match_the_model(seed, stall, engine):
    commands, tally = walk_commands(2500, seed)
    compare_covered(WALKS, commands, tally, REQUIRED, seed=seed, idle=0.0, stall=stall,
                    **engine)


class GoesOnIntoNothing(WalkAhead):
    """Says a next level exists whatever the search found: the walker does not drop a look
    beyond the side's last level."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.sync += self.found.eq(1)
        return m


class HeadsWrittenWhileRead(LevelTable):
    """Ignores ``head_read``: the walker's speculative read of the next level's head reads the
    current level's word instead."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.port.head_read.eq(0)
        return m


@pytest.mark.parametrize("module,name,mutant,engine", [
    (engine_control, "WalkAhead", GoesOnIntoNothing, {}),
    (engine_control, "WalkAhead", GoesOnIntoNothing, {"order_register": True}),
    (matching_engine, "LevelTable", HeadsWrittenWhileRead, {}),
])
def test_a_wrong_speculative_read_is_caught(monkeypatch, module, name, mutant, engine):
    monkeypatch.setattr(module, name, mutant)
    commands, _ = walk_commands(600, 9)
    with pytest.raises(AssertionError, match="differs|events from the gateware"):
        compare(WALKS, commands, seed=9, idle=0.0, stall=0.0, **engine)

