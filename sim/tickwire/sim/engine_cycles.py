"""Cycle figures of the gateware matching engine, measured in Amaranth's simulator.

:func:`hdl_engine_cycles` plays small command sequences into
:class:`~tickwire.hdl.matching_engine.MatchingEngine` (``o_event`` always ready, commands
offered back to back) and measures, per command, its *interval* (the cycles it occupies the
engine: the sustained issue rate) and its *latency* (cycles from its start to the edge that
hands out its first event); see :func:`measure`.
"""

from amaranth.sim import Simulator
from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.protocol.link import Action, Command, Event, ModelParams, Side, Tif, pack_name

__all__ = ["hdl_engine_cycles", "measure"]

_DEFAULT = ModelParams(max_orders=64, max_symbols=2, band_ticks=64, max_qty=1_000_000)


def measure(params, commands, **engine):
    """[(interval, latency)] per command (cycles; ``None`` for the first command); ``engine``:
    the :class:`MatchingEngine`'s options.

    Commands are offered back to back (``i_cmd.valid`` never drops) and ``o_event`` is always
    ready. The engine keeps a command on ``i_cmd`` while it runs and takes it (``ready``) in its
    last cycle, so command ``i`` occupies the cycles from the edge that took command ``i − 1``
    to the edge that takes it: its interval, the sustained issue rate of that command in its
    context. Its latency counts from the first of those cycles (the one a command-registering
    design would spend taking it) to the edge that hands out its first event.
    """
    dut = MatchingEngine(params, **engine)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    taken, first = [], {}

    async def driver(ctx):
        ctx.set(dut.o_event.ready, 1)
        cycle = 0
        for seq, cmd in enumerate(commands, 1):
            cmd.seq, cmd.timestamp = seq, 1000 + seq
            ctx.set(dut.i_cmd.payload.as_value(), cmd.to_int())
            ctx.set(dut.i_cmd.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.i_cmd.ready)
                cycle += 1
                if ready:
                    taken.append(cycle)
                    break
        ctx.set(dut.i_cmd.valid, 0)

    async def monitor(ctx):
        cycle, done = 0, 0
        payload = dut.o_event.payload.as_value()
        while done < len(commands):
            _, _, valid, value = await ctx.tick().sample(dut.o_event.valid, payload)
            cycle += 1
            if valid:
                event = Event.from_int(value)
                first.setdefault(event.seq, cycle)
                done += event.last

    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    out = [(None, None)]
    for i in range(1, len(taken)):
        out.append((taken[i] - taken[i - 1], first[i + 1] - taken[i - 1] - 1))
    return out


def _declare(symbol=1, reference=100):
    return Command(action=Action.DECLARE, symbol=symbol, price=reference, qty=100, tick=100,
                   name=pack_name(f"S{symbol}"))


def _new(side, qty, price, order_id, tif=Tif.DAY, market=0):
    return Command(action=Action.NEW, symbol=1, side=side, price=price, qty=qty,
                   order_id=order_id, tif=tif, market=market)


def _sustained(params, warmup, run, engine):
    """Cycles per command of ``run`` played back to back after ``warmup`` (mean interval)."""
    r = measure(params, warmup + run + [Command(action=Action.NOP)], **engine)
    intervals = [i for i, _ in r[len(warmup):len(warmup) + len(run)]]
    return sum(intervals) / len(intervals)


def hdl_engine_cycles(params=_DEFAULT, fills=8, burst=8, **engine):
    """Cycle figures of the engine built with options ``engine``, as a dict (cycles;
    ``*_latency``: first event's latency).

    ``add``: a non-crossing limit order that rests; ``add_sustained``: mean interval of
    ``burst`` such adds back to back (half open a level, half join one); ``cancel``: a full
    cancel; ``cancel_sustained``: ``burst`` full cancels back to back; ``reduce_sustained``,
    ``replace_kept_sustained``: the same for REDUCE and KEPT replaces; ``reject``: a NEW refused
    at validation; ``fill_in_level``: each further fill of a market order walking one price
    level; ``fill_new_level``: each further fill when every resting order sits on its own level;
    ``fok_count_per_order``: the FOK pre-count per resting order counted;
    ``first_event_latency``: the worst latency to the first event of an add, a cancel, a reject
    and a crossing NEW.
    """
    base = [_declare()]
    end = Command(action=Action.NOP)
    # Non-crossing add, cancel, reject.
    seq = base + [_new(Side.BUY, 100, 90, 1), _new(Side.BUY, 100, 91, 2),
                  Command(action=Action.CANCEL, symbol=1, order_id=1, slot=0),
                  _new(Side.BUY, 0, 90, 3), end]
    r = measure(params, seq, **engine)
    add, add2, cancel, reject = r[1], r[2], r[3], r[4]

    adds = [_new(Side.BUY if i % 2 else Side.SELL, 100, (90 - i // 4) if i % 2 else
                 (110 + i // 4), 100 + i) for i in range(burst)]
    add_sustained = _sustained(params, base, adds, engine)
    # The adds rest in slots 0 .. burst-1 in order.
    cancels = [Command(action=Action.CANCEL, symbol=1, order_id=100 + i, slot=i)
               for i in range(burst)]
    cancel_sustained = _sustained(params, base + adds, cancels, engine)
    reduces = [Command(action=Action.CANCEL, symbol=1, order_id=100 + i, slot=i, qty=50)
               for i in range(burst)]
    reduce_sustained = _sustained(params, base + adds, reduces, engine)
    kept = [Command(action=Action.REPLACE, symbol=1, order_id=100 + i, slot=i, qty=60,
                    new_order_id=200 + i, price=adds[i].price) for i in range(burst)]
    kept_sustained = _sustained(params, base + adds, kept, engine)

    def sweep(levels, n, tif=Tif.IOC):
        cmds = base + [_new(Side.BUY, 100, 95 - (i if levels else 0), 10 + i) for i in range(n)]
        cmds += [_new(Side.SELL, 100 * n, 68, 99, tif=tif), end]
        return measure(params, cmds, **engine)[-2]

    one, many = sweep(False, 1), sweep(False, fills)
    one_l, many_l = sweep(True, 1), sweep(True, fills)
    fok_one, fok_many = sweep(False, 1, Tif.FOK), sweep(False, fills, Tif.FOK)
    per = fills - 1
    return {
        "add": add2[0], "add_latency": add2[1],
        "first_add": add[0],
        "add_sustained": add_sustained,
        "cancel": cancel[0], "cancel_latency": cancel[1],
        "cancel_sustained": cancel_sustained,
        "reduce_sustained": reduce_sustained,
        "replace_kept_sustained": kept_sustained,
        "reject": reject[0], "reject_latency": reject[1],
        "market_1_fill": one[0], "market_1_fill_latency": one[1],
        "fill_in_level": (many[0] - one[0]) / per,
        "fill_new_level": (many_l[0] - one_l[0]) / per,
        "fok_count_per_order": ((fok_many[0] - fok_one[0]) - (many[0] - one[0])) / per,
        "first_event_latency": max(add2[1], cancel[1], reject[1], one[1]),
    }


if __name__ == "__main__":
    for key, value in hdl_engine_cycles().items():
        print(f"{key:24} {value}")
