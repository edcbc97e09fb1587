# amaranth: UnusedElaboratable=no
"""Requantizer and RngBits in Amaranth's simulator, bit for bit against ``numerics``."""

import itertools
import random

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from edgetrain.hw.common.rng import RngBits, mix32_comb
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.requant import Requantizer
from edgetrain.sim.golden import numerics
from edgetrain.sim.reference.units import expected_requant, mismatches, random_requant_beats
from edgetrain.sim.tb.stream_sim import run_stream

ACC_BITS = AcceleratorConfig().acc_bits    # the default configuration's accumulators


def apply_beat(dut):
    def apply(ctx, beat):
        ctx.set(dut.i.payload, {"acc": beat["acc"], "index": beat["index"]})
        for name in ("shift", "stochastic", "key", "relu"):
            ctx.set(getattr(dut, name), beat[name])
    return apply


def collect(payload):
    return {"data": [int(v) for v in payload.data], "mask": [int(v) for v in payload.mask]}


def run_requant(beats, *, lanes, acc_bits, out_bits=16, seed=0, p_valid=0.8, p_ready=0.6,
                stochastic=True, pipeline="deep"):
    dut = Requantizer(lanes=lanes, acc_bits=acc_bits, out_bits=out_bits,
                      stochastic=stochastic, pipeline=pipeline)
    return run_stream(dut, beats, apply=apply_beat(dut), collect=collect,
                      stats=("saturations", "amax"), p_valid=p_valid, p_ready=p_ready,
                      seed=seed)


def check_requant(beats, run, *, out_bits=16, expect=expected_requant):
    """Return the mismatches of a requantizer run against ``expect`` (default: numerics)."""
    exp = [expect(b, out_bits=out_bits) for b in beats]
    found = mismatches(exp, run.outputs, ("data", "mask"))
    sat = sum(e["saturations"] for e in exp)
    amax = max(abs(a) for b in beats for a in b["acc"])
    if run.stats != {"saturations": sat, "amax": amax}:
        found.append(f"stats: expected saturations={sat} amax={amax}, got {run.stats}")
    per_beat = list(itertools.accumulate(e["saturations"] for e in exp))
    if run.stats_after_beats("saturations", Requantizer.stats_delay) != per_beat:
        found.append("saturations are not counted with the beat they belong to")
    return found


def test_rng_bits_matches_numerics():
    rnd = random.Random(3)
    dut = RngBits(lanes=3)
    words = [(rnd.getrandbits(32), [rnd.getrandbits(32) for _ in range(3)]) for _ in range(200)]
    got = []

    async def bench(ctx):
        ctx.set(dut.en, 1)
        for k in range(len(words) + dut.latency):
            if k < len(words):
                ctx.set(dut.key, words[k][0])
                ctx.set(dut.index, words[k][1])
            await ctx.tick()
            if k >= dut.latency - 1:
                got.append([int(v) for v in ctx.get(dut.bits)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    exp = [[int(v) for v in numerics.rng_bits(key, np.array(ix))] for key, ix in words]
    assert got[:len(words)] == exp


def test_mix32_comb_matches_numerics():
    """The register-free hardware mix32 (the eDRAM decay pattern's) is ``numerics.mix32``."""
    m = Module()
    x = Signal(32)
    y = mix32_comb(m, x, name="hash")
    rnd = random.Random(4)
    values = [0, 0xFFFFFFFF] + [rnd.getrandbits(32) for _ in range(300)]

    async def bench(ctx):
        for v in values:
            ctx.set(x, v)
            assert ctx.get(y) == numerics.mix32(v), hex(v)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("lanes,out_bits,count,seed", [(4, 16, 1500, 1), (1, 32, 400, 2)])
def test_requantizer_random_beats(lanes, out_bits, count, seed):
    beats = random_requant_beats(random.Random(seed), count, lanes=lanes, acc_bits=ACC_BITS,
                                 out_bits=out_bits)
    run = run_requant(beats, lanes=lanes, acc_bits=ACC_BITS, out_bits=out_bits, seed=seed)
    assert check_requant(beats, run, out_bits=out_bits) == []


@pytest.mark.parametrize("pipeline", ["deep", "shallow"])
def test_requantizer_full_throughput_and_latency(pipeline):
    beats = random_requant_beats(random.Random(5), 64, lanes=2, acc_bits=20)
    run = run_requant(beats, lanes=2, acc_bits=20, p_valid=1.0, p_ready=1.0,
                      pipeline=pipeline)
    assert check_requant(beats, run) == []
    latency = Requantizer(lanes=2, acc_bits=20, pipeline=pipeline).latency
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles)] == [latency] * len(beats)
    assert run.in_cycles == list(range(run.in_cycles[0], run.in_cycles[0] + len(beats)))


def test_extreme_shifts_saturate_instead_of_wrapping():
    rnd = random.Random(11)
    beats = (random_requant_beats(rnd, 150, lanes=2, acc_bits=ACC_BITS, shifts=(-128, -18))
             + random_requant_beats(rnd, 150, lanes=2, acc_bits=ACC_BITS, shifts=(63, 127)))
    run = run_requant(beats, lanes=2, acc_bits=ACC_BITS, seed=11)
    assert check_requant(beats, run) == []
    assert run.stats["saturations"] > 50  # left shifts beyond 17 saturate every non-zero value


def test_clear_restarts_the_statistics():
    rnd = random.Random(13)
    runs = [random_requant_beats(rnd, 40, lanes=2, acc_bits=24) for _ in range(2)]
    dut = Requantizer(lanes=2, acc_bits=24)
    apply, seen = apply_beat(dut), []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for beats in runs:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            assert (ctx.get(dut.saturations), ctx.get(dut.amax)) == (0, 0)
            for beat in beats:
                apply(ctx, beat)
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
            ctx.set(dut.i.valid, 0)
            for _ in range(dut.latency + dut.stats_delay):
                await ctx.tick()
            seen.append({"saturations": ctx.get(dut.saturations), "amax": ctx.get(dut.amax)})

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for beats, stats in zip(runs, seen):
        sat = sum(expected_requant(b)["saturations"] for b in beats)
        assert stats == {"saturations": sat, "amax": max(abs(a) for b in beats for a in b["acc"])}
    assert seen[0] != seen[1]


def test_comparison_detects_an_off_by_one_shift():
    """The comparison must fail when the reference is wrong (here: shift off by one)."""
    beats = random_requant_beats(random.Random(17), 200, lanes=2, acc_bits=ACC_BITS)
    run = run_requant(beats, lanes=2, acc_bits=ACC_BITS, seed=17)
    assert check_requant(beats, run) == []

    def wrong(beat, *, out_bits):
        return expected_requant({**beat, "shift": beat["shift"] + 1}, out_bits=out_bits)

    assert len(check_requant(beats, run, expect=wrong)) > 0


@pytest.mark.parametrize("bad", [{"lanes": 0}, {"acc_bits": 65}, {"out_bits": 1},
                                 {"lanes": 2.0}, {"pipeline": "medium"}])
def test_bad_parameters_name_the_value(bad):
    args = {"lanes": 2, "acc_bits": 32, **bad}
    with pytest.raises(TypeError, match=repr(list(bad.values())[0])):
        Requantizer(**args)


@pytest.mark.parametrize("lanes,stochastic,seed", [(4, True, 41), (2, False, 42), (3, True, 43)])
def test_shallow_requantizer_matches_numerics(lanes, stochastic, seed):
    """The slow-clock pipeline: 2 stages, stall-together, no queue; the same results."""
    rnd = random.Random(seed)
    beats = (random_requant_beats(rnd, 500, lanes=lanes, acc_bits=ACC_BITS)
             + random_requant_beats(rnd, 300, lanes=lanes, acc_bits=ACC_BITS,
                                    shifts=(-128, 127)))
    if not stochastic:
        beats = [{**b, "stochastic": 0} for b in beats]
    run = run_requant(beats, lanes=lanes, acc_bits=ACC_BITS, seed=seed, stochastic=stochastic,
                      pipeline="shallow")
    assert check_requant(beats, run) == []
    assert Requantizer(lanes=lanes, acc_bits=ACC_BITS, stochastic=stochastic,
                       pipeline="shallow").latency < Requantizer(lanes=lanes,
                                                                 acc_bits=ACC_BITS).latency


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_requantizer_many_random_beats(seed):
    beats = random_requant_beats(random.Random(100 + seed), 6000, lanes=4, acc_bits=ACC_BITS)
    run = run_requant(beats, lanes=4, acc_bits=ACC_BITS, seed=seed, p_valid=0.7, p_ready=0.5)
    assert check_requant(beats, run) == []


def test_amax_is_the_running_max_of_abs_beat_by_beat():
    # Magnitudes with ties between signs and neighbours (2**k - 1, 2**k, 2**k + 1), up to
    # the most negative accumulator, whose magnitude needs every bit of amax.
    rnd = random.Random(31)
    beats = random_requant_beats(rnd, 300, lanes=4, acc_bits=ACC_BITS)
    for k, beat in enumerate(beats):
        top = min(ACC_BITS - 1, 4 + k * (ACC_BITS - 5) // len(beats))
        beat["acc"] = [rnd.choice((-1, 1)) * ((1 << rnd.randint(top - 3, top)) +
                                              rnd.choice((-1, 0, 0, 1))) for _ in range(4)]
        beat["acc"] = [max(a, -(1 << (ACC_BITS - 1))) for a in beat["acc"]]
    beats[-1]["acc"][2] = -(1 << (ACC_BITS - 1))
    run = run_requant(beats, lanes=4, acc_bits=ACC_BITS, seed=31)
    want = list(itertools.accumulate((max(abs(a) for a in b["acc"]) for b in beats), max))
    got = run.stats_after_beats("amax", Requantizer.stats_delay)
    # Beat k is included by then; later beats may be too (amax settles before saturations).
    assert all(g in want[k:] for k, g in enumerate(got)), [
        (k, g, want[k]) for k, g in enumerate(got) if g not in want[k:]][:3]
    assert run.stats["amax"] == want[-1] == 1 << (ACC_BITS - 1) and len(set(want)) > 40
