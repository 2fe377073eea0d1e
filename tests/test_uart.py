"""UART receiver and transmitter in Amaranth's simulator: loopback, line errors, divisor checks."""

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator
from tickwire.hdl.uart import UartRx, UartTx, uart_divisor


def test_divisor():
    assert uart_divisor(12e6, 3_000_000) == 4
    assert uart_divisor(48e6, 3_000_000) == 16
    assert uart_divisor(25e6, 115200) == 217
    with pytest.raises(ValueError):
        uart_divisor(12e6, 4_000_000)
    with pytest.raises(ValueError):
        uart_divisor(25e6, 3_000_000)       # 8.33 cycles per bit: 4 % off


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_loopback(divisor):
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.i_rx.eq(tx.o_tx)
    data = [0x00, 0xFF, 0x55, 0xA5, 0x01, 0x80] + list(range(0, 256, 37))
    got = []

    async def send(ctx):
        for byte in data:
            ctx.set(tx.i_data.payload, byte)
            ctx.set(tx.i_data.valid, 1)
            await ctx.tick().until(tx.i_data.ready)
        ctx.set(tx.i_data.valid, 0)

    async def receive(ctx):
        ctx.set(rx.o_data.ready, 1)
        while len(got) < len(data):
            await ctx.tick()
            if ctx.get(rx.o_data.valid):
                got.append(ctx.get(rx.o_data.payload))
            assert not ctx.get(rx.o_frame_error)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(1e-6 * divisor * 10 * (len(data) + 4))
    assert got == data


def _line_bits(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


@pytest.mark.parametrize("baud_error", [-0.03, 0.03])
def test_rx_tolerates_clock_error(baud_error):
    divisor = 16
    rx = UartRx(divisor)
    bit_time = divisor * (1 + baud_error)
    data = [0x3C, 0xC3, 0x00, 0xFF]
    got = []

    async def line(ctx):
        t = 0.0
        await ctx.tick().repeat(5)
        for byte in data:
            for bit in _line_bits(byte):
                ctx.set(rx.i_rx, bit)
                t += bit_time
                await ctx.tick().repeat(round(t))
                t -= round(t)
            ctx.set(rx.i_rx, 1)
            await ctx.tick().repeat(3)

    async def receive(ctx):
        ctx.set(rx.o_data.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(rx.o_data.valid, rx.o_data.payload):
            if valid:
                got.append(payload)

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_process(receive)
    sim.run_until(1e-6 * divisor * 11 * (len(data) + 2))
    assert got == data


def test_rx_errors():
    divisor = 4
    rx = UartRx(divisor)
    flags = {"frame": 0, "overflow": 0, "bytes": []}

    async def line(ctx):
        await ctx.tick().repeat(3)
        for byte, stop in ((0x12, 0), (0x34, 1), (0x56, 1)):
            for bit in _line_bits(byte, stop):
                ctx.set(rx.i_rx, bit)
                await ctx.tick().repeat(divisor)
            ctx.set(rx.i_rx, 1)
            await ctx.tick().repeat(divisor)

    async def watch(ctx):
        async for _, _, fe, ov in ctx.tick().sample(rx.o_frame_error, rx.o_overflow):
            flags["frame"] += fe
            flags["overflow"] += ov

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_process(watch)
    sim.run_until(1e-6 * divisor * 11 * 5)
    # 0x12 had a bad stop bit; 0x34 was never read (ready low) when 0x56 came: overflow.
    assert flags["frame"] == 1
    assert flags["overflow"] == 1
