"""The address generator against a Python loop nest written from its docstring.

Random descriptors of every mode (stride 1 and 2, kernels 1 to 5, padding, channel counts
that are not multiples of T, sometimes random row strides) run in the Amaranth simulator with
``en`` randomly low; the whole tap stream must equal the model's, tap for tap and field for
field, with no bubble once the first tap is out.
"""

import random

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from edgetrain.errors import ConfigError
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.addrgen import AddressGenerator, TapLayout
from edgetrain.hw.engine.descriptor import (
    MODES,
    DescriptorLayout,
    LayerShape,
    descriptor_fields,
    pack_descriptor)

CONFIGS = {
    # The engine's small test build: T = 4, K up to 5.
    "t4": AcceleratorConfig(tm=4, tn=4, max_kernel=5, max_channels=8, max_size=10,
                            max_batch=2, input_depth=512, weight_depth=128, output_depth=512),
    # T = 3 (lane counts by shift-add) and depths that are not powers of two.
    "t3": AcceleratorConfig(tm=3, tn=3, max_kernel=5, max_channels=7, max_size=9,
                            max_batch=3, input_depth=296, weight_depth=100, output_depth=392,
                            refresh=("none", "none", "none")),
    # Nearest rounding only: no element index is generated (a 0-bit idx); the shallow
    # pipeline (no P stage).
    "t2-nearest": AcceleratorConfig(tm=2, tn=2, max_kernel=5, max_channels=6, max_size=9,
                                    max_batch=2, input_depth=512, weight_depth=128,
                                    output_depth=512, stochastic_rounding=False,
                                    pipeline="shallow"),
}
STRIDE_FIELDS = ("act_n", "act_plane", "out_n", "out_plane", "w_out", "w_red", "idx_n",
                 "idx_tile")


def model_taps(cfg, f):
    """Return the taps of descriptor fields ``f``: the loop nest of the module docstring."""
    mode, k, pad, t = MODES[f["mode"]], f["kernel"], f["pad"], cfg.tm
    bp, s = mode == "bp", 2 if f["stride2"] else 1
    widths = {name: Shape.cast(fld.shape).width for name, fld in TapLayout(cfg)}

    def kernel_taps(pos):
        if not bp or s == 1:
            return list(range(k))
        r = (pos + pad) % s
        return list(range(r, k, s)) or [r]     # r >= K: one null tap

    def coord(o, kk):
        return (o + pad - kk) // s if bp else o * s - pad + kk

    def tap(n, ot, rt, oy, ox, ky, kx):
        real = ky < k and kx < k
        iy, ix = coord(oy, ky), coord(ox, kx)
        inb = real and 0 <= iy < f["in_h"] and 0 <= ix < f["in_w"]
        pixel = oy * f["out_w"] + ox
        fields = dict(
            act_addr=n * f["act_n"] + rt * f["act_plane"] + (iy * f["in_w"] + ix if inb else 0),
            out_addr=n * f["out_n"] + ot * f["out_plane"] + pixel,
            w_addr=ot * f["w_out"] + rt * f["w_red"] + (ky * k + kx if real else 0),
            idx=n * f["idx_n"] + ot * f["idx_tile"] + pixel,
            inb=int(inb), real=int(real),
            out_lanes=min(t, f["out_ch"] - ot * t), red_lanes=min(t, f["red_ch"] - rt * t))
        return {name: v % (1 << widths[name]) for name, v in fields.items()}

    rng = range
    if mode in ("fp", "bp"):
        outer = [(n, ot, oy, ox) for n in rng(f["batch"]) for ot in rng(f["out_tiles"])
                 for oy in rng(f["out_h"]) for ox in rng(f["out_w"])]
        reductions = [[tap(n, ot, rt, oy, ox, ky, kx) for rt in rng(f["red_tiles"])
                       for ky in kernel_taps(oy) for kx in kernel_taps(ox)]
                      for n, ot, oy, ox in outer]
    else:
        outer = [(ot, rt, ky, kx) for ot in rng(f["out_tiles"]) for rt in rng(f["red_tiles"])
                 for ky in rng(k) for kx in rng(k)]
        reductions = [[tap(n, ot, rt, oy, ox, ky, kx) for n in rng(f["batch"])
                       for oy in rng(f["out_h"]) for ox in rng(f["out_w"])]
                      for ot, rt, ky, kx in outer]
    taps = []
    for red in reductions:
        for i, tp in enumerate(red):
            taps.append(tp | dict(first=int(i == 0), last=int(i == len(red) - 1), done=0))
    taps[-1]["done"] = 1
    return taps


def random_descriptor(cfg, rng):
    """Return descriptor fields of a random small layer; sometimes random row strides."""
    k = rng.choice([1, 2, 3, 3, 4, 5, 5])
    mode = rng.choice(MODES)
    while True:
        side = range(k, min(cfg.max_size, k + 4) + 1)
        layer = LayerShape(n=rng.randint(1, cfg.max_batch), c=rng.randint(1, cfg.max_channels),
                           h=rng.choice(side), w=rng.choice(side),
                           m=rng.randint(1, cfg.max_channels), k=k,
                           stride=rng.choice([1, 2]), pad=rng.randint(0, k - 1))
        try:
            f = descriptor_fields(cfg, mode, layer)
            break
        except ConfigError:     # output above max_size or a buffer overflow: draw again
            continue
    if rng.random() < 0.4:
        layout = dict(DescriptorLayout(cfg))
        for name in STRIDE_FIELDS:
            f[name] = rng.randrange(1 << Shape.cast(layout[name].shape).width)
    return f


def run_generator(cfg, descriptors, seed):
    """Run ``descriptors`` one after another; return the tap stream of each."""
    dut = AddressGenerator(config=cfg)
    names = [name for name, _ in TapLayout(cfg)]
    streams = []

    async def bench(ctx):
        rng = random.Random(seed)
        for f in descriptors:
            ctx.set(dut.desc.as_value(), pack_descriptor(cfg, f))
            ctx.set(dut.start, 1)
            ctx.set(dut.en, rng.random() < 0.5)
            await ctx.tick()
            ctx.set(dut.start, 0)
            taps, enabled, started = [], 0, False
            while ctx.get(dut.running) or ctx.get(dut.tap_valid) or not started:
                en = rng.random() < 0.7
                ctx.set(dut.en, en)
                valid = ctx.get(dut.tap_valid)
                if en and not valid:
                    assert not started, f"bubble after {len(taps)} taps: {f}"
                    enabled += 1
                if en and valid:
                    if not started:
                        assert enabled == dut.first_tap_cycles, f"first tap after {enabled}"
                    started = True
                    tap = ctx.get(dut.tap)
                    taps.append({name: int(getattr(tap, name)) for name in names})
                await ctx.tick()
                assert len(taps) < 20000, "the run does not end"
            streams.append(taps)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return streams


def _compare(cfg, f, got):
    want = model_taps(cfg, f)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, (f"tap {i} of {len(want)} differs: got {g}, want {w}; "
                        f"descriptor {f}")
    assert len(got) == len(want), f"{len(got)} taps, want {len(want)}; descriptor {f}"


def test_every_kernel_and_pad_with_stride_2():
    # BP's stride-2 phases: every (K, pad), so each start phase meets each kernel size.
    cfg = CONFIGS["t4"]
    descriptors = [descriptor_fields(cfg, mode, LayerShape(n=1, c=5, h=k + 2, w=k + 1, m=2,
                                                           k=k, stride=2, pad=pad))
                   for k in range(1, 6) for pad in range(k) for mode in ("bp", "fp")]
    for f, got in zip(descriptors, run_generator(cfg, descriptors, seed=3)):
        _compare(cfg, f, got)


@pytest.mark.parametrize("name, count, seed", [("t4", 40, 1), ("t3", 30, 2),
                                               ("t2-nearest", 30, 4)])
def test_tap_stream_matches_loop_nest(name, count, seed):
    cfg = CONFIGS[name]
    rng = random.Random(seed)
    descriptors = [random_descriptor(cfg, rng) for _ in range(count)]
    assert {MODES[f["mode"]] for f in descriptors} == set(MODES)
    for f, got in zip(descriptors, run_generator(cfg, descriptors, seed)):
        _compare(cfg, f, got)
