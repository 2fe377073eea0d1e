"""Serial link figures from simulation: what the link carries at its baud rate.

The transmit path (:class:`~tickwire.hdl.link_layer.LinkLayer` and a bit-level
:class:`~tickwire.hdl.uart.UartTx`) runs in Amaranth's simulator with an endless supply of
event records or MoldUDP64 packets; the time from the first start bit to the last stop bit
gives frames per second at the configured baud and the share of the line rate (10 bits per
byte, 8N1) that is payload.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from tickwire.hdl.link_layer import LinkLayer
from tickwire.hdl.uart import UartTx
from tickwire.protocol.link import EVENT_BYTES, Event, EventKind
from tickwire.util.figure import Figure

__all__ = ["link_figures", "measure_tx"]


def measure_tx(kind="event", frames=12, baud=3_000_000, divisor=4, packet_bytes=400):
    """Simulate sending ``frames`` event frames (or MoldUDP64 packets of ``packet_bytes``).

    Returns ``(seconds at baud, payload bytes, wire bytes)``.
    """
    m = Module()
    m.submodules.link = link = LinkLayer(heartbeat_cycles=1 << 20, initial_allowance=0xFFFF)
    m.submodules.tx = tx = UartTx(divisor)
    wiring.connect(m, link.o_tx, tx.i_data)
    clk_freq = baud * divisor
    result = {}
    event = Event(seq=0x01020304, timestamp=123456789, kind=EventKind.ADD, symbol=1,
                  order_id=77, qty=100, price=10000).to_int()
    packet = bytes((i * 7 + 1) & 0xFF for i in range(packet_bytes))

    async def source(ctx):
        if kind == "event":
            ctx.set(link.i_event.payload.as_value(), event)
            ctx.set(link.i_event.valid, 1)
            sent = 0
            while sent < frames:
                sent += ctx.get(link.i_event.ready)
                await ctx.tick()
            ctx.set(link.i_event.valid, 0)
        else:
            for _ in range(frames):
                for i, byte in enumerate(packet):
                    ctx.set(link.i_mold.payload, {"data": byte, "last": i == len(packet) - 1})
                    ctx.set(link.i_mold.valid, 1)
                    while not ctx.get(link.i_mold.ready):
                        await ctx.tick()
                    await ctx.tick()
            ctx.set(link.i_mold.valid, 0)

    async def line(ctx):
        start = end = None
        cycle = wire = delimiters = 0
        while True:
            valid, ready = ctx.get(tx.i_data.valid), ctx.get(tx.i_data.ready)
            byte, busy = ctx.get(tx.i_data.payload), ctx.get(tx.o_busy)
            await ctx.tick()
            cycle += 1
            if busy:
                end = cycle
            if valid and ready:
                wire += 1
                start = cycle if start is None else start
                delimiters += byte == 0
            elif delimiters == frames and not busy:
                result["cycles"] = end - start + 1
                result["wire"] = wire
                return

    sim = Simulator(m)
    sim.add_clock(1 / clk_freq)
    sim.add_testbench(source)
    sim.add_testbench(line)
    sim.run()
    payload = frames * (EVENT_BYTES if kind == "event" else packet_bytes)
    return result["cycles"] / clk_freq, payload, result["wire"]


def link_figures(baud=3_000_000):
    """``Figure`` rows: event frames/s and MoldUDP64 payload rate at ``baud``, vs line rate."""
    line_bytes = baud / 10
    rows = []
    seconds, payload, wire = measure_tx("event", baud=baud)
    rows.append(Figure(f"link events at {baud / 1e6:g} Mbaud", round(12 / seconds), "events/s",
                       peer=f"line {line_bytes / 1e3:g} kB/s",
                       ratio=round(payload / seconds / line_bytes, 3),
                       note=f"{wire / 12:.1f} wire bytes per {EVENT_BYTES}-byte event; "
                            f"ratio = payload share of line rate"))
    seconds, payload, wire = measure_tx("mold", frames=3, baud=baud)
    rows.append(Figure(f"link MoldUDP64 at {baud / 1e6:g} Mbaud",
                       round(payload / seconds / 1e3, 1), "kB/s",
                       peer=f"line {line_bytes / 1e3:g} kB/s",
                       ratio=round(payload / seconds / line_bytes, 3),
                       note="400-byte packets"))
    return rows
