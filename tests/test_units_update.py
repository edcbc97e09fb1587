# amaranth: UnusedElaboratable=no
"""SGDUpdate in Amaranth's simulator, bit for bit against ``numerics.sgd_momentum``."""

import itertools
import random

import pytest

from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.sgd import SGDUpdate
from edgetrain.sim.reference.units import expected_update, mismatches, random_update_beats
from edgetrain.sim.tb.stream_sim import run_stream

ACC_BITS = AcceleratorConfig().acc_bits    # the default configuration's accumulators
SIDE = ("g_shift", "mu_q", "lr_q", "lr_shift", "stochastic", "key_g", "key_v", "key_w")


def apply_beat(dut):
    def apply(ctx, beat):
        ctx.set(dut.i.payload, {k: beat[k] for k in ("g_acc", "master", "velocity", "index")})
        for name in SIDE:
            ctx.set(getattr(dut, name), beat[name])
    return apply


def collect(payload):
    return {"master": [int(v) for v in payload.master],
            "velocity": [int(v) for v in payload.velocity]}


def run_update(beats, *, lanes, seed=0, p_valid=0.8, p_ready=0.6, stochastic=True):
    dut = SGDUpdate(lanes=lanes, acc_bits=ACC_BITS, stochastic=stochastic)
    return run_stream(dut, beats, apply=apply_beat(dut), collect=collect,
                      stats=("saturations",), p_valid=p_valid, p_ready=p_ready, seed=seed)


def check_update(beats, run, *, expect=expected_update):
    """Return the mismatches of an update run against ``expect`` (default: numerics)."""
    exp = [expect(b) for b in beats]
    found = mismatches(exp, run.outputs, ("master", "velocity"))
    sat = sum(e["saturations"] for e in exp)
    if run.stats != {"saturations": sat}:
        found.append(f"stats: expected saturations={sat}, got {run.stats}")
    per_beat = list(itertools.accumulate(e["saturations"] for e in exp))
    if run.stats_after_beats("saturations", SGDUpdate.stats_delay) != per_beat:
        found.append("saturations are not counted with the beat they belong to")
    return found


def test_update_random_beats():
    beats = random_update_beats(random.Random(1), 800, lanes=2, acc_bits=ACC_BITS)
    run = run_update(beats, lanes=2, seed=1)
    assert check_update(beats, run) == []
    assert run.stats["saturations"] > 0


def test_update_full_throughput_and_latency():
    beats = random_update_beats(random.Random(2), 50, lanes=1, acc_bits=ACC_BITS)
    run = run_update(beats, lanes=1, p_valid=1.0, p_ready=1.0)
    assert check_update(beats, run) == []
    latency = SGDUpdate(lanes=1, acc_bits=ACC_BITS).latency
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles)] == [latency] * len(beats)
    assert run.in_cycles == list(range(run.in_cycles[0], run.in_cycles[0] + len(beats)))


def test_comparison_detects_a_wrong_learning_rate_shift():
    beats = random_update_beats(random.Random(3), 200, lanes=2, acc_bits=ACC_BITS)
    run = run_update(beats, lanes=2, seed=3)
    assert check_update(beats, run) == []

    def wrong(beat):
        return expected_update({**beat, "lr_shift": max(0, beat["lr_shift"] - 1)})

    assert len(check_update(beats, run, expect=wrong)) > 0


@pytest.mark.parametrize("bad", [{"lanes": 0}, {"acc_bits": 1}, {"acc_bits": "47"}])
def test_bad_parameters_name_the_value(bad):
    with pytest.raises(TypeError, match=repr(list(bad.values())[0])):
        SGDUpdate(**{"lanes": 2, "acc_bits": ACC_BITS, **bad})


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_update_many_random_beats(seed):
    beats = random_update_beats(random.Random(200 + seed), 4000, lanes=4, acc_bits=ACC_BITS)
    run = run_update(beats, lanes=4, seed=seed, p_valid=0.7, p_ready=0.5)
    assert check_update(beats, run) == []


def test_momentum_requantizer_is_built_for_its_fixed_shift():
    from edgetrain.hw.engine.requant import RoundShift
    core = RoundShift(lanes=1, in_bits=48, out_bits=32, fixed_shift=16)
    assert "shift" not in core.signature.members
    with pytest.raises(TypeError, match="fixed_shift must be an integer in -128..127, not 200"):
        RoundShift(lanes=1, in_bits=48, out_bits=32, fixed_shift=200)
