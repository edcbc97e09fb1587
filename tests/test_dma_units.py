"""BurstIssuer and BufferWalker in Amaranth's simulator against their Python definitions."""

import random

import pytest
from amaranth.sim import Simulator

from edgetrain.hw.dma.burst import BurstIssuer
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.dma.layout import Segment, split_bursts
from edgetrain.hw.dma.walk import BufferWalker


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _random_pattern(rng, bus, max_beats):
    return Descriptor(dram_addr=rng.randrange(0, 3 * 4096, bus), seg_beats=rng.randint(1, 300),
                      buf_addr=0, n0=1, seg_count=rng.randint(1, 3),
                      seg_stride=rng.randrange(0, 5000, bus), seg_count2=rng.randint(1, 3),
                      seg_stride2=rng.randrange(0, 20000, bus))


@pytest.mark.parametrize("bus,max_beats", [(4, 256), (8, 16), (16, 7)])
def test_burst_issuer_matches_split_bursts(bus, max_beats):
    rng = random.Random(bus * 1000 + max_beats)
    dut = BurstIssuer(addr_bits=32, bus_bytes=bus, max_burst_beats=max_beats)
    patterns = [_random_pattern(rng, bus, max_beats) for _ in range(12)]

    async def bench(ctx):
        for p in patterns:
            for name in ("dram_addr", "seg_beats", "seg_count", "seg_stride", "seg_count2",
                         "seg_stride2"):
                ctx.set(getattr(dut, name), getattr(p, name))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got = []
            while not ctx.get(dut.done):
                allow = rng.random() < 0.7
                ready = rng.random() < 0.7
                ctx.set(dut.allow, allow)
                ctx.set(dut.ready, ready)
                if ctx.get(dut.valid) and ready:
                    got.append((ctx.get(dut.addr), ctx.get(dut.len) + 1))
                await ctx.tick()
            want = [b for a, n in p.segments(bus)
                    for b in split_bursts(Segment(a, n), bus_bytes=bus, max_beats=max_beats)]
            assert got == want, p

    _run(dut, bench)


def _walk(p):
    for i2 in range(p.n2):
        for i1 in range(p.n1):
            for i0 in range(p.n0):
                pad = (i2 < p.pad_top or i2 >= p.n2 - p.pad_bottom or i1 < p.pad_left or
                       i1 >= p.n1 - p.pad_right)
                yield p.buf_addr + i2 * p.s2 + i1 * p.s1 + i0 * p.s0, pad


def test_buffer_walker_matches_its_definition():
    rng = random.Random(7)
    dut = BufferWalker(buf_addr_bits=12)
    walks = []
    for _ in range(15):
        n0, n1, n2 = rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 5)
        s0, s1, s2 = (rng.randint(-3, 3) for _ in range(3))
        walks.append(Descriptor(dram_addr=0, seg_beats=1, buf_addr=2000, n0=n0, n1=n1, n2=n2,
                                s0=s0, s1=s1 * n0, s2=s2 * n0 * n1,
                                pad_top=rng.randint(0, 2), pad_bottom=rng.randint(0, 2),
                                pad_left=rng.randint(0, 2), pad_right=rng.randint(0, 2)))

    async def bench(ctx):
        for p in walks:
            for name in ("n0", "n1", "n2", "s0", "s1", "s2", "pad_top", "pad_bottom",
                         "pad_left", "pad_right"):
                ctx.set(getattr(dut, name), getattr(p, name))
            ctx.set(dut.base, p.buf_addr)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got = []
            while ctx.get(dut.running):
                step = rng.random() < 0.6
                ctx.set(dut.step, step)
                if step:
                    got.append((ctx.get(dut.addr), bool(ctx.get(dut.pad))))
                await ctx.tick()
            ctx.set(dut.step, 0)
            assert got == list(_walk(p)), p

    _run(dut, bench)
