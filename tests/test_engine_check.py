"""The descriptor check against a Python predicate written from its docstring.

Valid descriptors of random layers, each rule broken alone, fields at their limits, buffer
extents one row either side of the depth, random raw descriptors and perturbed valid ones run
through ``DescriptorCheck`` in the Amaranth simulator; the verdict must equal the predicate's
and arrive exactly ``latency`` cycles after ``start``.
"""

import random

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.check import DescriptorCheck
from edgetrain.hw.engine.descriptor import (
    MODES,
    DescriptorLayout,
    LayerShape,
    descriptor_fields,
    pack_descriptor)

CONFIGS = {
    # T = 2, no stochastic rounding; the largest layer fills each buffer exactly.
    "t2": AcceleratorConfig(tm=2, tn=2, max_kernel=5, max_channels=4, max_size=6,
                            max_batch=2, input_depth=144, weight_depth=100, output_depth=144,
                            stochastic_rounding=False, refresh=("none", "none", "none")),
    # T = 3, depths that are not powers of two; the largest layer fills act and out exactly.
    "t3": AcceleratorConfig(tm=3, tn=3, max_kernel=3, max_channels=6, max_size=6,
                            max_batch=3, input_depth=216, weight_depth=54, output_depth=216,
                            refresh=("none", "none", "none")),
}
NONZERO = ("batch", "out_tiles", "red_tiles", "out_ch", "red_ch", "out_h", "out_w", "in_h",
           "in_w", "kernel")


def broken_rules(cfg, f):
    """Return the names of the rules (module docstring of ``engine_check``) ``f`` breaks."""
    t, k, pad = cfg.tm, f["kernel"], f["pad"]
    s, bp = 2 if f["stride2"] else 1, MODES[f["mode"]] == "bp"
    broken = {f"zero {name}" for name in NONZERO if f[name] == 0}
    limits = dict(batch=cfg.max_batch, out_ch=cfg.max_channels, red_ch=cfg.max_channels,
                  kernel=cfg.max_kernel)
    broken |= {f"{name} above max" for name, top in limits.items() if f[name] > top}
    if pad >= k:
        broken.add("pad")
    for side in ("out", "red"):
        if not (f[f"{side}_tiles"] - 1) * t < f[f"{side}_ch"] <= f[f"{side}_tiles"] * t:
            broken.add(f"{side}_tiles")
    for axis in ("h", "w"):
        side, result = f[f"in_{axis}"], f[f"out_{axis}"]
        if bp:
            side, result = result, side
        if side > cfg.max_size:
            broken.add(f"side {axis} above max")
        if result != (side + 2 * pad - k) // s + 1:
            broken.add(f"output {axis}")
    broken |= {f"{buffer.port_name} extent" for buffer, (rows, depth) in extents(cfg, f).items()
               if rows > depth}
    if not cfg.stochastic_rounding and f["stochastic"]:
        broken.add("stochastic")
    return broken


def extents(cfg, f):
    """Return ``{Buffer: (rows of the run's last row, depth)}``."""
    return {
        Buffer.ACT: ((f["batch"] - 1) * f["act_n"] + (f["red_tiles"] - 1) * f["act_plane"]
                     + f["in_h"] * f["in_w"], Buffer.ACT.depth(cfg)),
        Buffer.OUT: ((f["batch"] - 1) * f["out_n"] + (f["out_tiles"] - 1) * f["out_plane"]
                     + f["out_h"] * f["out_w"], Buffer.OUT.depth(cfg)),
        Buffer.WGT: ((f["out_tiles"] - 1) * f["w_out"] + (f["red_tiles"] - 1) * f["w_red"]
                     + f["kernel"] ** 2, Buffer.WGT.depth(cfg)),
    }


def _widths(cfg):
    return {name: Shape.cast(fld.shape).width for name, fld in DescriptorLayout(cfg)}


def _valid(cfg, rng, mode=None, largest=False):
    """Return the fields of a random valid layer (``largest``: every limit at once)."""
    while True:
        k = cfg.max_kernel if largest else rng.randint(1, cfg.max_kernel)
        side = cfg.max_size if largest else rng.randint(k, cfg.max_size)
        chans = [cfg.max_channels] * 2 if largest else [rng.randint(1, cfg.max_channels)
                                                        for _ in range(2)]
        layer = LayerShape(n=cfg.max_batch if largest else rng.randint(1, cfg.max_batch),
                           c=chans[0], h=side, w=side if largest else rng.randint(k, side),
                           m=chans[1], k=k, stride=rng.choice([1, 2]),
                           pad=(k - 1) // 2 if largest else rng.randint(0, k - 1))
        try:
            return descriptor_fields(cfg, mode or rng.choice(MODES), layer,
                                     stochastic=cfg.stochastic_rounding and rng.random() < 0.5,
                                     shift=rng.randint(-128, 127), relu=rng.random() < 0.5)
        except ConfigError:
            continue


def _beyond(cfg, mode, **layer_and_limits):
    """Return a valid descriptor of a build with larger limits (fields still fit ``cfg``)."""
    limits = {k: v for k, v in layer_and_limits.items() if k.startswith("max_")}
    layer = {k: v for k, v in layer_and_limits.items() if not k.startswith("max_")}
    return descriptor_fields(cfg.replace(acc_bits=0, **limits), mode, LayerShape(**layer))


def single_rule_cases(cfg):
    """Return ``{case: (fields, rules broken)}``, each case a valid descriptor with one change."""
    t, big = cfg.tm, cfg.max_size + 1
    base = descriptor_fields(cfg, "fp", LayerShape(n=2, c=t + 1, h=5, w=5, m=t + 1, k=3,
                                                   pad=1))
    bp = descriptor_fields(cfg, "bp", LayerShape(n=1, c=t + 1, h=5, w=4, m=2, k=3, pad=1))
    s2 = descriptor_fields(cfg, "wu", LayerShape(n=1, c=2, h=5, w=5, m=2, k=3, stride=2,
                                                 pad=1))
    k1 = descriptor_fields(cfg, "fp", LayerShape(n=1, c=1, h=3, w=3, m=1, k=1))
    cases = {
        "batch above max": _beyond(cfg, "fp", n=cfg.max_batch + 1, c=1, h=3, w=3, m=1, k=1,
                                   max_batch=cfg.max_batch + 1),
        "out_ch above max": _beyond(cfg, "fp", n=1, c=1, h=3, w=3, m=cfg.max_channels + 1,
                                    k=1, max_channels=cfg.max_channels + 1),
        "red_ch above max": _beyond(cfg, "wu", n=1, c=cfg.max_channels + 1, h=3, w=3, m=1,
                                    k=1, max_channels=cfg.max_channels + 1),
        "side h above max": _beyond(cfg, "fp", n=1, c=1, h=big, w=3, m=1, k=3, max_size=big),
        "side w above max": _beyond(cfg, "bp", n=1, c=1, h=3, w=big, m=1, k=3, max_size=big),
        # pad 1 >= K 1 with output sides that agree with it
        "pad": k1 | dict(pad=1, out_h=5, out_w=5, out_plane=25),
        "out_tiles": base | {"out_tiles": 1},
        "red_tiles": base | {"red_tiles": 3},
        "output h": base | {"out_h": 6},
        "output w": bp | {"out_w": 3},                  # BP: out_w is the layer's input side
        "act extent": base | {"act_plane": Buffer.ACT.depth(cfg)},
        "out extent": base | {"out_n": Buffer.OUT.depth(cfg)},
        "wgt extent": bp | {"w_out": Buffer.WGT.depth(cfg)},
    }
    cases["kernel above max"] = _beyond(cfg, "fp", n=1, c=1, h=cfg.max_size, w=cfg.max_size,
                                        m=1, k=cfg.max_kernel + 1,
                                        max_kernel=cfg.max_kernel + 1)
    cases = {name: (f, {name}) for name, f in cases.items()}
    cases["stride2 flipped"] = (s2 | {"stride2": 0}, {"output h", "output w"})
    # One tile more than the channels need: the upper edge of the tile rule.
    full = descriptor_fields(cfg, "fp", LayerShape(n=1, c=t, h=4, w=4, m=t, k=3, pad=1))
    for side in ("out", "red"):
        cases[f"{side}_tiles too many"] = (full | {f"{side}_tiles": 2}, {f"{side}_tiles"})
    if not cfg.stochastic_rounding:
        cases["stochastic"] = (base | {"stochastic": 1}, {"stochastic"})
    for name in NONZERO:        # a zero field breaks other rules too
        cases[f"zero {name}"] = (base | {name: 0}, None)
    # A limit at its field's all-ones value cannot be exceeded (t3's batch and kernel).
    widths = _widths(cfg)
    return {name: case for name, case in cases.items()
            if all(v < 1 << widths[k] for k, v in case[0].items())}


def extent_edge_cases(cfg):
    """Return descriptors whose act, out and wgt extent is the depth, then one row more."""
    cases = []
    base = descriptor_fields(cfg, "fp", LayerShape(n=2, c=cfg.tm + 1, h=5, w=3,
                                                   m=cfg.tm + 1, k=3, pad=1))
    # Two tiles each way: these strides count once in their buffer's extent.
    for buffer, field in ((Buffer.ACT, "act_plane"), (Buffer.OUT, "out_plane"),
                          (Buffer.WGT, "w_red")):
        rows, depth = extents(cfg, base)[buffer]
        exact = depth - (rows - base[field])
        cases += [base | {field: exact}, base | {field: exact + 1}]
    return cases


def limit_cases(cfg, rng):
    """Return all-zero, all-ones and largest-layer descriptors (each mode)."""
    widths = _widths(cfg)
    cases = [{name: 0 for name in widths}, {name: (1 << w) - 1 for name, w in widths.items()}]
    cases += [_valid(cfg, rng, mode, largest=True) for mode in MODES]
    return cases


def random_cases(cfg, rng, count):
    """Return raw random descriptors and valid ones with one or two fields disturbed."""
    widths, cases = _widths(cfg), []
    for i in range(count):
        if i % 3 == 0:
            cases.append({name: rng.randrange(1 << w) for name, w in widths.items()})
            continue
        f = _valid(cfg, rng)
        for name in rng.sample(sorted(widths), rng.randint(1, 2)):
            nudged = f[name] + rng.choice([-1, 1]) if rng.random() < 0.6 else \
                rng.randrange(1 << widths[name])
            f[name] = nudged % (1 << widths[name])
        cases.append(f)
    return cases


def run_check(dut, descriptors, seed):
    """Return the verdict of ``DescriptorCheck`` ``dut`` for each descriptor."""
    cfg, verdicts = dut.config, []

    async def bench(ctx):
        rng = random.Random(seed)
        for f in descriptors:
            ctx.set(dut.desc.as_value(), pack_descriptor(cfg, f))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for cycle in range(1, dut.latency):
                assert not ctx.get(dut.done), f"done after {cycle} cycles, not {dut.latency}"
                ctx.set(dut.start, rng.random() < 0.05)     # ignored while checking
                await ctx.tick()
            ctx.set(dut.start, 0)
            assert ctx.get(dut.done), f"no done after {dut.latency} cycles"
            verdicts.append(ctx.get(dut.bad))
            for _ in range(rng.randint(1, 3)):
                await ctx.tick()
                assert not ctx.get(dut.done), "done is longer than one cycle"
                assert ctx.get(dut.bad) == verdicts[-1], "bad changed before the next start"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return verdicts


def _check_all(cfg, descriptors, seed):
    for f, bad in zip(descriptors, run_check(DescriptorCheck(config=cfg), descriptors, seed)):
        want = broken_rules(cfg, f)
        assert bad == bool(want), f"verdict {bad}, rules broken {sorted(want)}: {f}"


@pytest.mark.parametrize("name", CONFIGS)
def test_each_rule_alone_and_the_limits(name):
    cfg, rng = CONFIGS[name], random.Random(11)
    cases = single_rule_cases(cfg)
    assert len(cases) == {"t2": 28, "t3": 25}[name]     # t3: no batch, kernel, stochastic
    for case, (f, rules) in cases.items():
        got = broken_rules(cfg, f)
        assert got == rules if rules else got, f"case {case!r} breaks {sorted(got)}"
    edges = extent_edge_cases(cfg)
    assert [bool(broken_rules(cfg, f)) for f in edges] == [False, True] * 3
    limits = limit_cases(cfg, rng)
    assert not any(broken_rules(cfg, f) for f in limits[2:])
    valid = [_valid(cfg, rng) for _ in range(40)]
    assert not any(broken_rules(cfg, f) for f in valid)
    _check_all(cfg, [f for f, _ in cases.values()] + edges + limits + valid, seed=1)


@pytest.mark.parametrize("name", CONFIGS)
def test_random_descriptors(name):
    cfg, rng = CONFIGS[name], random.Random(23)
    cases = random_cases(cfg, rng, 300)
    verdicts = [bool(broken_rules(cfg, f)) for f in cases]
    assert verdicts.count(False) >= 30 and verdicts.count(True) >= 150
    _check_all(cfg, cases, seed=2)


@pytest.mark.parametrize("cfg, cycles", [
    (AcceleratorConfig(tm=2, tn=2, max_kernel=3, max_channels=16, max_size=16, max_batch=4,
                       input_depth=512, weight_depth=128, output_depth=512), 37),  # iCEBreaker
    (AcceleratorConfig(), 46)])
def test_latency_is_as_documented(cfg, cycles):
    # run_check asserts that done comes exactly ``latency`` cycles after start.
    dut, f = DescriptorCheck(config=cfg), _valid(cfg, random.Random(3))
    assert dut.latency == cycles
    assert run_check(dut, [f, f | {"kernel": 0}], seed=3) == [0, 1]
