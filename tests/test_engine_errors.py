"""A malformed descriptor raises the engine's ``error`` and leaves it idle, never hung."""

import random

import pytest
from amaranth.sim import Simulator

from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.descriptor import MODES, LayerShape, descriptor_fields, pack_descriptor
from edgetrain.hw.engine.tile import ConvEngineTile

# T = 2 keeps the simulation quick; max_kernel = 5 leaves room in the 3-bit kernel field for
# kernels above the maximum.
CFG = AcceleratorConfig(tm=2, tn=2, max_kernel=5, max_channels=4, max_size=6, max_batch=2,
                        input_depth=128, weight_depth=64, output_depth=128)
GOOD = descriptor_fields(CFG, "fp", LayerShape(n=1, c=3, h=4, w=4, m=2, k=3, pad=1))
STRIDE2 = descriptor_fields(CFG, "fp", LayerShape(n=1, c=3, h=5, w=5, m=2, k=3, stride=2,
                                                   pad=1))
BP = descriptor_fields(CFG, "bp", LayerShape(n=1, c=3, h=4, w=4, m=2, k=3, pad=1))
BATCH2 = descriptor_fields(CFG, "fp", LayerShape(n=2, c=3, h=4, w=4, m=2, k=3, pad=1))
MAX_RUN_CYCLES = 2000
MAX_CHECK_CYCLES = 100  # the check takes a few dozen cycles (ConvEngine.check_cycles)


def _beyond(**limits):
    """Return a descriptor maker for a build with larger ``limits`` than ``CFG``."""
    return lambda mode, layer: descriptor_fields(CFG.replace(**limits), mode, layer)


def _run(bench, cfg=CFG):
    dut = ConvEngineTile(config=cfg)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def testbench(ctx):
        await bench(ctx, dut)
    sim.add_testbench(testbench)
    sim.run()


async def _offer(ctx, dut, fields):
    """Hand one descriptor to the idle engine; return once it is accepted."""
    assert ctx.get(dut.desc.ready), "the engine is not idle"
    ctx.set(dut.desc.payload.as_value(), pack_descriptor(CFG, fields))
    ctx.set(dut.desc.valid, 1)
    await ctx.tick()
    ctx.set(dut.desc.valid, 0)


async def _refused(ctx, dut):
    """Wait, while the engine checks the accepted descriptor, until busy falls."""
    for _ in range(MAX_CHECK_CYCLES):
        assert not ctx.get(dut.grad.valid), "a refused descriptor emitted a WU result"
        if not ctx.get(dut.busy):
            return
        await ctx.tick()
    pytest.fail(f"a malformed descriptor kept busy high for {MAX_CHECK_CYCLES} cycles")


async def _run_good(ctx, dut, fields):
    """Run a good descriptor: busy rises, error stays low, busy falls within the bound."""
    await _offer(ctx, dut, fields)
    assert ctx.get(dut.busy) and not ctx.get(dut.error)
    for _ in range(MAX_RUN_CYCLES):
        await ctx.tick()
        assert not ctx.get(dut.error)
        if not ctx.get(dut.busy):
            return
    pytest.fail(f"busy still high after {MAX_RUN_CYCLES} cycles: {fields}")


BAD = {
    "all-zero": {name: 0 for name in GOOD},
    "batch 0": GOOD | {"batch": 0},
    "kernel 0": GOOD | {"kernel": 0, "pad": 0},
    "kernel above max": GOOD | {"kernel": 6},
    "pad == kernel": GOOD | {"pad": 3},
    "out_h 0": GOOD | {"out_h": 0},
    "red_ch 0": GOOD | {"red_ch": 0},
    "out_tiles too many": GOOD | {"out_tiles": 2},    # out_ch 2 is one tile of T = 2
    "red_tiles too few": GOOD | {"red_tiles": 1},     # red_ch 3 needs two tiles
    # Limits: descriptors of layers that are valid only for a larger build, so no other
    # check fires; each field still fits its bit width.
    "batch above max": _beyond(max_batch=3)("fp", LayerShape(n=3, c=3, h=4, w=4, m=2, k=3)),
    "out_ch above max": _beyond(max_channels=5)("fp", LayerShape(n=1, c=3, h=4, w=4, m=5, k=3)),
    "red_ch above max": _beyond(max_channels=5)("wu", LayerShape(n=1, c=5, h=4, w=4, m=2, k=3)),
    "in_h above max": _beyond(max_size=7)("fp", LayerShape(n=1, c=1, h=7, w=4, m=2, k=3)),
    "bp out_w above max": _beyond(max_size=7)("bp", LayerShape(n=1, c=1, h=4, w=7, m=2, k=3)),
    # Geometry: the output side must be (in + 2 pad - K) // stride + 1 (BP: roles swapped).
    "out_h too small": GOOD | {"out_h": 3},
    "out_w too large": GOOD | {"out_w": 5},
    "stride2 flipped": GOOD | {"stride2": 1},
    "stride 2 in_w too small": STRIDE2 | {"in_w": 4},  # (4 + 2 - 3) // 2 + 1 = 2, not 3
    "bp in_h wrong": BP | {"in_h": 3},                 # BP in_h is the FP output side, 4
    # Extents: the last row of a run must lie inside each buffer (act, out 128; weight 64).
    "act_plane past act buffer": GOOD | {"act_plane": 113},    # 113 + 4 * 4 > 128
    "act_n past act buffer": BATCH2 | {"act_n": 100},          # 100 + 16 + 16 > 128
    "out_n past out buffer": BATCH2 | {"out_n": 120},          # 120 + 4 * 4 > 128
    "w_red past weight buffer": GOOD | {"w_red": 60},          # 60 + 3 * 3 > 64
    "bp w_out past weight buffer": BP | {"w_out": 60},         # 60 + 3 * 3 > 64
}


@pytest.mark.parametrize("name", BAD)
def test_bad_descriptor_sets_error_and_stays_idle(name):
    async def bench(ctx, dut):
        ctx.set(dut.grad.ready, 1)
        await _offer(ctx, dut, BAD[name])
        await _refused(ctx, dut)
        for _ in range(20):
            assert ctx.get(dut.error), "error did not rise"
            assert not ctx.get(dut.busy), "a malformed descriptor started the engine"
            assert ctx.get(dut.desc.ready), "the engine is not idle"
            await ctx.tick()
        await _run_good(ctx, dut, GOOD)     # a good descriptor clears error and runs
        assert ctx.get(dut.desc.ready) and not ctx.get(dut.error)
    _run(bench)


def test_valid_descriptors_never_set_error():
    rng = random.Random(3)
    layers = []
    while len(layers) < 8:
        k = rng.randint(1, 3)
        lay = LayerShape(n=rng.randint(1, 2), c=rng.randint(1, 4), h=rng.randint(k, 4),
                         w=rng.randint(k, 4), m=rng.randint(1, 4), k=k,
                         stride=rng.randint(1, 2), pad=rng.randint(0, k - 1))
        layers.append(lay)

    async def bench(ctx, dut):
        ctx.set(dut.grad.ready, 1)
        for i, lay in enumerate(layers):
            await _run_good(ctx, dut, descriptor_fields(CFG, MODES[i % 4], lay))
    _run(bench)


def test_stochastic_descriptor_is_refused_without_stochastic_rounding():
    # A build without the random generators rounds to nearest only: stochastic=1 is malformed.
    async def bench(ctx, dut):
        ctx.set(dut.grad.ready, 1)
        await _offer(ctx, dut, GOOD | {"stochastic": 1})
        await _refused(ctx, dut)
        assert ctx.get(dut.error) and ctx.get(dut.desc.ready)
        await _run_good(ctx, dut, GOOD | {"stochastic": 0})
    _run(bench, CFG.replace(stochastic_rounding=False))


async def _host(ctx, port, rows=None, *, count=0):
    """Write ``rows`` through host port ``port``, or read ``count`` rows back.

    Each request is held until the port is ready (the tile keeps its buffers one cycle
    after ``busy`` falls)."""
    ctx.set(port.w_en if rows is not None else port.r_en, 1)
    out = []
    for a in range(count if rows is None else len(rows)):
        ctx.set(port.addr, a)
        if rows is not None:
            ctx.set(port.w_data, rows[a])
        while not ctx.get(port.ready):
            await ctx.tick()
        await ctx.tick()
        out.append(ctx.get(port.r_data))
    ctx.set(port.w_en, 0)
    ctx.set(port.r_en, 0)
    return out


# Refused only by the buffer extents, the slowest rule: the run they start computes results
# before the verdict, and none may leave the engine.
LATE_BAD = {
    "fp out_n past out buffer": descriptor_fields(
        CFG, "fp", LayerShape(n=2, c=2, h=4, w=4, m=2, k=1)) | {"out_n": 120},
    "wu w_red past weight buffer": descriptor_fields(
        CFG, "wu", LayerShape(n=1, c=3, h=3, w=3, m=2, k=3, pad=1)) | {"w_red": 63},
}


@pytest.mark.parametrize("name", LATE_BAD)
def test_refused_run_writes_nothing(name):
    pattern = [(0x5A5A5A5 * (a + 1)) & ((1 << 34) - 1) for a in range(64)]

    async def bench(ctx, dut):
        ctx.set(dut.grad.ready, 1)
        await _host(ctx, dut.host_out, pattern)
        await _offer(ctx, dut, LATE_BAD[name])
        await _refused(ctx, dut)
        assert ctx.get(dut.error)
        assert [ctx.get(dut.counters[f]) for f in ("busy_cycles", "macs", "stall_cycles")] == \
            [0, 0, 0], "a refused run left counts"
        assert await _host(ctx, dut.host_out, count=len(pattern)) == pattern
    _run(bench)
