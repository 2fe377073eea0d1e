"""Cycle figures of the gateware matching engine, measured in Amaranth's simulator.

:func:`hdl_engine_cycles` plays small command sequences into
:class:`~tickwire.hdl.matching_engine.MatchingEngine` (``o_event`` always ready, commands
offered back to back) and measures, per command, its *interval* (cycles from the edge that takes
it to the first edge that could take the next one) and its *latency* (cycles from the edge that
takes its only input beat to the edge that hands out its first event).
"""

from amaranth.sim import Simulator

from ..hdl.matching_engine import MatchingEngine
from ..protocol.link import Action, Command, Event, Side, Tif, pack_name
from .model import ModelParams

__all__ = ["hdl_engine_cycles", "measure"]

_DEFAULT = ModelParams(max_orders=64, max_symbols=2, band_ticks=64, max_qty=1_000_000)


def measure(params, commands):
    """[(interval, latency)] per command (cycles)."""
    dut = MatchingEngine(params)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    out = []

    async def bench(ctx):
        ctx.set(dut.o_event.ready, 1)
        payload = dut.o_event.payload.as_value()
        for seq, cmd in enumerate(commands, 1):
            cmd.seq, cmd.timestamp = seq, 1000 + seq
            ctx.set(dut.i_cmd.payload.as_value(), cmd.to_int())
            ctx.set(dut.i_cmd.valid, 1)
            await ctx.tick().until(dut.i_cmd.ready)
            ctx.set(dut.i_cmd.valid, 0)
            cycles, latency, finished = 0, None, False
            while True:
                _, _, valid, value, ready = await ctx.tick().sample(
                    dut.o_event.valid, payload, dut.i_cmd.ready)
                cycles += 1
                if valid and latency is None:
                    latency = cycles
                if valid and Event.from_int(value).last:
                    finished = True
                if ready and finished:
                    break
            out.append((cycles, latency))

    sim.add_testbench(bench)
    sim.run()
    return out


def _declare(symbol=1, reference=100):
    return Command(action=Action.DECLARE, symbol=symbol, price=reference, qty=100, tick=100,
                   name=pack_name(f"S{symbol}"))


def _new(side, qty, price, order_id, tif=Tif.DAY, market=0):
    return Command(action=Action.NEW, symbol=1, side=side, price=price, qty=qty,
                   order_id=order_id, tif=tif, market=market)


def hdl_engine_cycles(params=_DEFAULT, fills=8):
    """Cycle figures of the engine, as a dict (cycles; ``*_latency``: first event's latency).

    ``add``: a non-crossing limit order that rests; ``cancel``: a full cancel; ``reject``: a
    NEW refused at validation; ``fill_in_level``: each further fill of a market order walking
    one price level; ``fill_new_level``: each further fill when every resting order sits on its
    own level; ``fok_count_per_order``: the FOK pre-count per resting order counted.
    """
    base = [_declare()]
    # Non-crossing add, cancel, reject.
    seq = base + [_new(Side.BUY, 100, 90, 1), _new(Side.BUY, 100, 91, 2),
                  Command(action=Action.CANCEL, symbol=1, order_id=1, slot=0),
                  _new(Side.BUY, 0, 90, 3)]
    r = measure(params, seq)
    add, add2, cancel, reject = r[1], r[2], r[3], r[4]

    def sweep(levels, n, tif=Tif.IOC):
        cmds = base + [_new(Side.BUY, 100, 95 - (i if levels else 0), 10 + i) for i in range(n)]
        cmds.append(_new(Side.SELL, 100 * n, 68, 99, tif=tif))
        return measure(params, cmds)[-1]

    one, many = sweep(False, 1), sweep(False, fills)
    one_l, many_l = sweep(True, 1), sweep(True, fills)
    fok_one, fok_many = sweep(False, 1, Tif.FOK), sweep(False, fills, Tif.FOK)
    per = fills - 1
    return {
        "add": add2[0], "add_latency": add2[1],
        "first_add": add[0],
        "cancel": cancel[0], "cancel_latency": cancel[1],
        "reject": reject[0], "reject_latency": reject[1],
        "market_1_fill": one[0], "market_1_fill_latency": one[1],
        "fill_in_level": (many[0] - one[0]) / per,
        "fill_new_level": (many_l[0] - one_l[0]) / per,
        "fok_count_per_order": ((fok_many[0] - fok_one[0]) - (many[0] - one[0])) / per,
    }


if __name__ == "__main__":
    for key, value in hdl_engine_cycles().items():
        print(f"{key:24} {value}")
