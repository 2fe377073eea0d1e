"""Command streams built to hit an engine's hazards, and the coverage bins that show they did.

Not a test module. A pipelined engine goes wrong where one command touches what the one before
it touched: the same price level, the same slot, the same order, the best price of a side.
:func:`hazard_commands` builds streams that do that on purpose, back to back, in every order
of operations (add, reduce, cancel, kept / moved / crossed replace, fill, STP delete), with
adds that open a new best level and cancels that empty the best level. :func:`hazard_bins`
names what each adjacent pair of commands touched in common, from the reference model's
events alone, so the same tally works on any stream.
"""

import random
from collections import Counter

from tickwire.protocol.link import Action, Command, EventKind, ReplaceMode, Side, Tif, pack_name
from tickwire.sim.model import ExchangeModel

__all__ = ["hazard_commands", "hazard_bins", "REQUIRED_BINS"]

_E = EventKind
_OP = {_E.ADD: "add", _E.EXECUTE: "fill", _E.REDUCE: "reduce", _E.DELETE: "delete"}

#: Bins every hazard stream of a few thousand commands must hit.
REQUIRED_BINS = tuple(
    [f"same level: {a}->{b}" for a in ("add", "reduce", "delete", "fill", "replace")
     for b in ("add", "reduce", "delete", "fill", "replace")]
    + [f"same slot: {a}->{b}" for a in ("add", "delete", "fill") for b in ("add",)]
    + [f"same slot: add->{b}" for b in ("reduce", "delete", "fill", "replace")]
    + [f"same order: {a}->{b}" for a in ("add", "reduce", "replace")
       for b in ("reduce", "delete", "fill", "replace")]
    + ["best level opened by add", "best level emptied by delete", "best level emptied by fill",
       "best level emptied by replace", "best level opened by replace",
       "replace in flight: KEPT", "replace in flight: MOVED", "replace in flight: CROSSED"]
)


def _touches(events, where):
    """What a command's events touched: ``[(op, slot, order_id, level)]``; ``where`` maps a slot
    to its level ``(symbol, side, price)`` before the command and is updated."""
    out = []
    for e in events:
        if e.kind in _OP:
            level = (e.symbol, int(e.side), e.price)
            out.append((_OP[e.kind], e.slot, e.order_id, level))
            if e.kind == _E.ADD:
                where[e.slot] = level
            elif e.kind == _E.DELETE or (e.kind == _E.EXECUTE and e.remaining == 0):
                where.pop(e.slot, None)
        elif e.kind == _E.REPLACE:
            old = where.get(e.slot)
            new = (e.symbol, int(e.side), e.price)
            if old is not None:
                out.append(("replace", e.slot, e.order_id, old))
            out.append(("replace", e.slot, e.other_id, new))
            if e.mode == ReplaceMode.CROSSED:
                where.pop(e.slot, None)
            else:
                where[e.slot] = new
    return out


def hazard_bins(commands, params):
    """Coverage tally of a stream, replayed through the reference model with ``params``.

    Bins: ``same level|slot|order: a->b`` for adjacent commands touching the same price level,
    slot or order id (``a`` in the first, ``b`` in the second); ``best level opened by add /
    replace`` and ``best level emptied by delete / fill / replace`` (a side's best price
    before and after the command); ``replace in flight: MODE`` (a replace of the order the
    previous command added, reduced or replaced).
    """
    model = ExchangeModel(params)
    tally = Counter()
    where = {}
    prev = []

    def best(key):
        book = model.symbols[key[0]] if 0 < key[0] < len(model.symbols) else None
        return book.sides[key[1]].best() if book is not None else None

    for cmd in commands:
        sides = [(s, side) for s in range(1, len(model.symbols)) for side in (0, 1)
                 if model.symbols[s] is not None]
        before = {key: best(key) for key in sides}
        evs = model.process(cmd)
        cur = _touches(evs, where)
        for op, _slot, _oid, level in cur:
            key = level[:2]
            now = best(key)
            if before.get(key) == now:
                continue
            if op in ("add", "replace") and now == level[2]:
                tally[f"best level opened by {op}"] += 1
            elif op in ("delete", "fill", "replace") and before.get(key) == level[2]:
                tally[f"best level emptied by {op}"] += 1
        for a_op, a_slot, a_oid, a_level in prev:
            for b_op, b_slot, b_oid, b_level in cur:
                if a_level == b_level:
                    tally[f"same level: {a_op}->{b_op}"] += 1
                if a_slot == b_slot:
                    tally[f"same slot: {a_op}->{b_op}"] += 1
                if a_oid == b_oid and a_op != "fill":
                    tally[f"same order: {a_op}->{b_op}"] += 1
        if cmd.action == Action.REPLACE and evs[0].kind == _E.REPLACE and any(
                oid == cmd.order_id and op in ("add", "reduce", "replace")
                for op, _s, oid, _l in prev):
            tally[f"replace in flight: {ReplaceMode(evs[0].mode).name}"] += 1
        prev = cur
    return tally


def hazard_commands(n, seed, params, symbols=2):
    """``n`` commands (seq and timestamp set) aimed at the last command's level, slot and order.

    Prices stay within a few ticks of each symbol's reference so levels are shared and best
    levels open and empty often; a few firms with every STP mode make STP deletes.
    """
    rng = random.Random(seed)
    model = ExchangeModel(params)
    out = []
    order_id = [0]
    refs = {s: 100 + 50 * s for s in range(1, symbols + 1)}

    def send(cmd):
        cmd.seq, cmd.timestamp = len(out) + 1, 1000 + 2 * len(out)
        out.append(cmd)
        return model.process(cmd)

    def next_id():
        order_id[0] += 1
        return order_id[0]

    for s in refs:
        send(Command(action=Action.DECLARE, symbol=s, price=refs[s], qty=100, tick=100,
                     name=pack_name(f"H{s}")))
    last = None               # (symbol, side, price, slot, order_id) of the last touched order
    last_level = None         # (symbol, side, price) of the last order touched

    def live():
        return [o for o in model.slots if o is not None]

    while len(out) < n:
        orders = live()
        r = rng.random()
        target = None
        if last is not None and model.slots[last[3]] is not None \
                and model.slots[last[3]].order_id == last[4]:
            target = model.slots[last[3]]
        elif orders:
            # Another order of the level just touched, if any (a delete or fill left it).
            near = [o for o in orders if (o.symbol, o.side, o.price) == last_level]
            if near and rng.random() < 0.6:
                target = rng.choice(near)
            elif rng.random() < 0.5:
                target = rng.choice(orders)
        sym = target.symbol if target else rng.choice(list(refs))
        side = target.side if target else rng.randrange(2)
        book = model.symbols[sym]
        if target is not None and r < 0.2:
            price = target.price
        else:
            best_own = book.sides[side].best()
            best_contra = book.sides[side ^ 1].best()
            choices = [refs[sym] + rng.randrange(-3, 4)]
            if best_own is not None:
                better = best_own + (1 if side == Side.BUY else -1)
                choices += [best_own, better]
            if best_contra is not None:
                choices += [best_contra]
            price = rng.choice(choices)
        qty = rng.choice((1, 50, 100, 100, 200, 300))
        firm = rng.choice((0, 0, 1, 2))
        if target is None or r < 0.35:
            events = send(Command(action=Action.NEW, symbol=sym, side=side,
                                  tif=rng.choice((Tif.DAY, Tif.GTC, Tif.GTC, Tif.IOC, Tif.FOK)),
                                  stp=rng.randrange(3), firm=firm, price=price, qty=qty,
                                  order_id=next_id()))
        elif r < 0.5:
            # Cross the target: fills at its level (or STP-deletes it).
            events = send(Command(action=Action.NEW, symbol=sym, side=side ^ 1,
                                  tif=rng.choice((Tif.IOC, Tif.DAY)), stp=rng.randrange(3),
                                  firm=rng.choice((0, target.firm)), price=target.price,
                                  qty=rng.choice((target.qty, max(1, target.qty // 2),
                                                  target.qty + 50)),
                                  order_id=next_id()))
        elif r < 0.65:
            events = send(Command(action=Action.CANCEL, symbol=sym, order_id=target.order_id,
                                  slot=target.slot,
                                  qty=rng.choice((0, 0, max(0, target.qty - 10)))))
        else:
            new_price = rng.choice((target.price, target.price, price,
                                    (book.sides[side ^ 1].best() or price)))
            events = send(Command(action=Action.REPLACE, symbol=sym, order_id=target.order_id,
                                  slot=target.slot, new_order_id=next_id(), price=new_price,
                                  qty=rng.choice((max(1, target.qty - 20), target.qty,
                                                  target.qty + 30))))
        last = None
        for e in events:
            if e.kind in _OP or e.kind == _E.REPLACE:
                last_level = (e.symbol, e.side, e.price)
            if e.kind == _E.ADD:
                last = (e.symbol, e.side, e.price, e.slot, e.order_id)
            elif e.kind in (_E.REDUCE, _E.EXECUTE) and e.remaining:
                last = (e.symbol, e.side, e.price, e.slot, e.order_id)
            elif e.kind == _E.REPLACE and e.mode != ReplaceMode.CROSSED:
                last = (e.symbol, e.side, e.price, e.slot, e.other_id)
        if len(live()) > params.max_orders - 2 and rng.random() < 0.5:
            victim = rng.choice(live())
            send(Command(action=Action.CANCEL, symbol=victim.symbol, order_id=victim.order_id,
                         slot=victim.slot))
    return out[:n]
