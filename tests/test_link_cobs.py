"""COBS encoder/decoder gateware against the host's codec (``tickwire.serial_link``)."""

import random

from amaranth.hdl import Module
from amaranth.sim import Simulator
from tickwire.engine.serial import cobs_decode, cobs_encode
from tickwire.hdl.link_cobs import CobsDecoder, CobsEncoder

FRAMES = [b"\x11", b"\x00", b"\x00\x00", b"\x11\x22\x00\x33", bytes(range(1, 255)),
          bytes(range(255)), bytes(range(1, 256)), bytes([7]) * 254 + b"\x00",
          bytes([7]) * 600]


def _random_frames(n, seed=3):
    rng = random.Random(seed)
    return [bytes(rng.choice([0, rng.randrange(256)]) for _ in range(rng.randrange(1, 300)))
            for _ in range(n)]


def test_encoder_matches_host_codec():
    frames = FRAMES + _random_frames(8)
    enc = CobsEncoder()
    out = bytearray()

    async def send(ctx):
        rng = random.Random(1)
        for frame in frames:
            for i, byte in enumerate(frame):
                ctx.set(enc.i_frame.payload, {"data": byte, "last": i == len(frame) - 1})
                ctx.set(enc.i_frame.valid, 1)
                await ctx.tick().until(enc.i_frame.ready)
                ctx.set(enc.i_frame.valid, 0)
                if rng.random() < 0.2:
                    await ctx.tick()

    async def receive(ctx):
        rng = random.Random(2)
        while out.count(0) < len(frames):
            ready = rng.random() < 0.7
            ctx.set(enc.o_byte.ready, ready)
            valid, byte = ctx.get(enc.o_byte.valid), ctx.get(enc.o_byte.payload)
            await ctx.tick()
            if ready and valid:
                out.append(byte)

    sim = Simulator(enc)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(0.05)
    assert bytes(out) == b"".join(cobs_encode(f) + b"\x00" for f in frames)


def test_decoder_matches_host_codec():
    frames = FRAMES + _random_frames(8, seed=5)
    wire = b"\x00\x00" + b"".join(cobs_encode(f) + b"\x00\x00" for f in frames)
    # A frame with a block running past its end: decoded with an error.
    wire += b"\x05\x11\x22\x00"
    dec = CobsDecoder()
    got, errors, current = [], [], bytearray()

    async def send(ctx):
        for byte in wire:
            ctx.set(dec.i_byte.payload, byte)
            ctx.set(dec.i_byte.valid, 1)
            await ctx.tick().until(dec.i_byte.ready)
        ctx.set(dec.i_byte.valid, 0)

    async def receive(ctx):
        rng = random.Random(4)
        while len(got) < len(frames) + 1:
            ready = rng.random() < 0.6
            ctx.set(dec.o_data.ready, ready)
            valid, beat = ctx.get(dec.o_data.valid), ctx.get(dec.o_data.payload)
            await ctx.tick()
            if ready and valid:
                if beat.end:
                    got.append(bytes(current))
                    errors.append(beat.error)
                    current.clear()
                else:
                    current.append(beat.data)

    sim = Simulator(dec)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(0.05)
    assert got[:-1] == frames
    assert errors == [0] * len(frames) + [1]
    assert all(cobs_decode(cobs_encode(f)) == f for f in frames)


def test_encoder_decoder_chain():
    m = Module()
    m.submodules.enc = enc = CobsEncoder()
    m.submodules.dec = dec = CobsDecoder()
    m.d.comb += [dec.i_byte.valid.eq(enc.o_byte.valid), dec.i_byte.payload.eq(enc.o_byte.payload),
                 enc.o_byte.ready.eq(dec.i_byte.ready)]
    frames = _random_frames(5, seed=9)
    got, current = [], bytearray()

    async def send(ctx):
        for frame in frames:
            for i, byte in enumerate(frame):
                ctx.set(enc.i_frame.payload, {"data": byte, "last": i == len(frame) - 1})
                ctx.set(enc.i_frame.valid, 1)
                await ctx.tick().until(enc.i_frame.ready)
        ctx.set(enc.i_frame.valid, 0)

    async def receive(ctx):
        ctx.set(dec.o_data.ready, 1)
        while len(got) < len(frames):
            valid, beat = ctx.get(dec.o_data.valid), ctx.get(dec.o_data.payload)
            await ctx.tick()
            if valid:
                if beat.end:
                    assert not beat.error
                    got.append(bytes(current))
                    current.clear()
                else:
                    current.append(beat.data)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(0.05)
    assert got == frames
