"""The reference model against two Python matching engines on one GTC limit + cancel stream."""

import gc
import random
import time

from tickwire.protocol.link import Action, Command, EventKind, ModelParams, Side, Tif
from tickwire.sim.model import ExchangeModel
from tickwire.util.figure import Figure

__all__ = ["book_stream", "model_orders_per_second"]


def book_stream(n, seed=7, levels=64, cancel_ratio=0.3):
    """A GTC limit + cancel stream on one symbol: [("add", id, side, price_ticks, qty) |
    ("cancel", id)]. Cancels only name orders still open, found by playing the stream into
    the reference model, so every engine sees the same valid stream."""
    rng = random.Random(seed)
    model = ExchangeModel(ModelParams(max_orders=1 << 16, band_ticks=1024))
    model.process(Command(action=Action.DECLARE, symbol=1, price=10000, qty=100, tick=100,
                          name=0x2020202020205754))
    open_ids, slot_of, ops = [], {}, []
    mid = 10000
    for order_id in range(1, n + 1):
        if open_ids and rng.random() < cancel_ratio:
            i = rng.randrange(len(open_ids))
            victim = open_ids[i]
            open_ids[i] = open_ids[-1]
            open_ids.pop()
            if victim in slot_of:
                ops.append(("cancel", victim))
                model.process(Command(action=Action.CANCEL, symbol=1, order_id=victim,
                                      slot=slot_of.pop(victim)))
                continue
        side = rng.randrange(2)
        offset = rng.randrange(-2, levels // 2)
        price = mid - offset if side == Side.BUY else mid + offset
        qty = rng.randrange(1, 11) * 100
        ops.append(("add", order_id, side, price, qty))
        for ev in model.process(Command(action=Action.NEW, symbol=1, side=side, tif=Tif.GTC,
                                        price=price, qty=qty, order_id=order_id)):
            if ev.kind == EventKind.ADD:
                slot_of[ev.order_id] = ev.slot
                open_ids.append(ev.order_id)
            elif ev.kind == EventKind.EXECUTE and ev.remaining == 0:
                slot_of.pop(ev.order_id, None)
    return ops


def _time_model(ops):
    model = ExchangeModel(ModelParams(max_orders=1 << 16, band_ticks=1024))
    process = model.process
    process(Command(action=Action.DECLARE, symbol=1, price=10000, qty=100, tick=100,
                    name=0x2020202020205754))
    slot_of = {}
    new, cancel, gtc, add = Action.NEW, Action.CANCEL, Tif.GTC, EventKind.ADD
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "add":
            cmd = Command(action=new, symbol=1, side=op[2], tif=gtc, price=op[3], qty=op[4],
                          order_id=op[1])
        else:
            cmd = Command(action=cancel, symbol=1, order_id=op[1], slot=slot_of.pop(op[1]))
        for ev in process(cmd):
            if ev.kind == add:
                slot_of[ev.order_id] = ev.slot
    return time.perf_counter() - t0


def _time_lightmatchingengine(ops):
    from lightmatchingengine.lightmatchingengine import LightMatchingEngine
    engine = LightMatchingEngine()
    ids = {}
    add, cancel = engine.add_order, engine.cancel_order
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "add":
            order, _ = add("WT", float(op[3]), op[4], 1 if op[2] == Side.BUY else 2)
            ids[op[1]] = order.order_id
        else:
            cancel(ids[op[1]], "WT")
    return time.perf_counter() - t0


def _time_pyorderbook(ops):
    import logging

    from pyorderbook import Book, Order
    from pyorderbook import Side as PSide
    logging.getLogger("pyorderbook.book").setLevel(logging.CRITICAL)
    book = Book()
    orders = {}
    bid, ask = PSide.BID, PSide.ASK
    t0 = time.perf_counter()
    for op in ops:
        if op[0] == "add":
            order = orders[op[1]] = Order(bid if op[2] == Side.BUY else ask, "WT", op[3], op[4])
            book.match(order)
        else:
            try:
                book.cancel(orders.pop(op[1]))
            except KeyError:
                pass        # it filled an order our model still had open (rare; logged off)
    return time.perf_counter() - t0


def _best_rate(fn, ops, repeat):
    best = None
    for _ in range(repeat):
        gc.collect()
        elapsed = fn(ops)
        best = elapsed if best is None else min(best, elapsed)
    return len(ops) / best


def model_orders_per_second(n=200_000, repeat=3):
    """The reference model against two Python matching engines on one GTC limit + cancel stream."""
    ops = book_stream(n)
    ours = _best_rate(_time_model, ops, repeat)
    rows = [Figure("model: GTC limit + cancel", ours, "ops/s",
                   note=f"{n} ops, one symbol, full event output; each engine's timing "
                   "includes building its inputs")]
    for peer, fn in (("lightmatchingengine", _time_lightmatchingengine),
                     ("pyorderbook", _time_pyorderbook)):
        try:
            theirs = _best_rate(fn, ops, repeat)
        except ImportError:
            rows.append(Figure(f"{peer}: GTC limit + cancel", 0, "ops/s",
                               note="not installed: pip install -e .[bench]"))
            continue
        rows.append(Figure(f"{peer}: GTC limit + cancel", theirs, "ops/s"))
        rows.append(Figure(f"model vs {peer}", ours / theirs, "x", peer=peer,
                           ratio=ours / theirs))
    return rows
