"""The engine's NIL-terminated order links (``tickwire.hdl.level_lists``) under commands aimed at
them, back to back.

Every command follows an add to the same price level and touches that level's only, head,
middle or tail order (the tail being the order just added, whose NIL ``next`` link is written in
the cycle after the add while the next command reads it): a cancel, a reduce, a kept or moved
replace, or a fill from the other side. Every position is hit for every operation, every event
equals the model's, and an engine whose lists drop the deferred NIL write is caught.
"""

import random
from collections import Counter

import pytest
from test_formal import NoDeferredNil
from test_hdl_engine_amaranth import compare, compare_covered
from tickwire.hdl import matching_engine
from tickwire.protocol.link import Action, Command, ModelParams, Side, Tif, pack_name
from tickwire.sim.model import ExchangeModel

#: Few slots, so that a slot comes back with the links of its last life; few levels, so that
#: they are deep.
LINKS = ModelParams(max_orders=12, max_symbols=1, band_ticks=16, max_qty=5000)

OPERATIONS = ("cancel", "reduce", "kept replace", "moved replace", "fill")
POSITIONS = ("only", "head", "middle", "tail")
#: Every operation at every position (a fill always takes the head, or the only order).
REQUIRED = [f"{op}: {pos}" for op in OPERATIONS[:-1] for pos in POSITIONS] + \
    ["fill: only", "fill: head"]

REFERENCE = 100


def link_commands(n, seed, params=LINKS):
    """``(commands, tally)``: ``n`` commands that alternate an add to one of four levels (two a
    side, none crossing) with an operation on an order of that level; ``tally`` counts
    ``"operation: position"``."""
    rng = random.Random(seed)
    model = ExchangeModel(params)
    out, tally = [], Counter()
    order_id = 0

    def send(cmd):
        cmd.seq, cmd.timestamp = len(out) + 1, 1000 + len(out)
        out.append(cmd)
        return model.process(cmd)

    def new_id():
        nonlocal order_id
        order_id += 1
        return order_id

    send(Command(action=Action.DECLARE, symbol=1, price=REFERENCE, qty=100, tick=100,
                 name=pack_name("L1")))
    book = model.symbols[1]
    prices = {Side.BUY: (REFERENCE - 2, REFERENCE - 1), Side.SELL: (REFERENCE + 1, REFERENCE + 2)}
    while len(out) < n:
        live = [o for o in model.slots if o is not None]
        if len(live) >= params.max_orders - 1:
            victim = rng.choice(live)
            send(Command(action=Action.CANCEL, symbol=1, order_id=victim.order_id,
                         slot=victim.slot))
            continue
        side = rng.choice((Side.BUY, Side.SELL))
        price = rng.choice(prices[side])
        send(Command(action=Action.NEW, symbol=1, side=side, tif=Tif.GTC, price=price,
                     qty=rng.choice((50, 100, 200)), order_id=new_id()))
        fifo = list(book.sides[side].levels[price].values())
        op = rng.choice(OPERATIONS)
        index = 0 if op == "fill" else rng.randrange(len(fifo))
        target = fifo[index]
        position = "only" if len(fifo) == 1 else "head" if index == 0 else \
            "tail" if index == len(fifo) - 1 else "middle"
        tally[f"{op}: {position}"] += 1
        if op in ("cancel", "reduce"):
            send(Command(action=Action.CANCEL, symbol=1, order_id=target.order_id,
                         slot=target.slot, qty=0 if op == "cancel" else target.qty // 2))
        elif op == "fill":
            send(Command(action=Action.NEW, symbol=1, side=side ^ 1, tif=Tif.IOC, price=price,
                         qty=rng.choice((target.qty, target.qty + 50)), order_id=new_id()))
        else:
            # Kept: fewer shares at the same price. Moved: more shares (to the level's tail) or
            # the side's other level.
            other = prices[side][0] if price == prices[side][1] else prices[side][1]
            kept = op == "kept replace"
            send(Command(action=Action.REPLACE, symbol=1, order_id=target.order_id,
                         slot=target.slot, new_order_id=new_id(),
                         price=price if kept or rng.random() < 0.5 else other,
                         qty=target.qty // 2 if kept else target.qty + 10))
    return out, tally


@pytest.mark.parametrize("seed,stall,engine", [
    (1, 0.0, {}), (2, 0.3, {}), (3, 0.0, {"best_price": False}),
    (4, 0.0, {"order_register": True})])
def test_link_hazards_match_the_model(seed, stall, engine):
    commands, tally = link_commands(1200, seed)
    compare_covered(LINKS, commands, tally, REQUIRED, seed=seed, idle=0.0, stall=stall,
                    **engine)


def test_a_lost_nil_link_is_caught(monkeypatch):
    monkeypatch.setattr(matching_engine, "LevelLists", NoDeferredNil)
    commands, _ = link_commands(400, 5)
    with pytest.raises(AssertionError, match="differs|events from the gateware"):
        compare(LINKS, commands, seed=5, idle=0.0, stall=0.0)
