# amaranth: UnusedElaboratable=no
"""The max-pool specification (sim/golden/pool.py) and the MaxPool2x2 / PoolBackward units."""

import random

import numpy as np
import pytest

from edgetrain.hw.engine.pool import MaxPool2x2, PoolBackward
from edgetrain.sim.golden.pool import maxpool2x2, maxpool2x2_backward
from edgetrain.sim.reference.units import (
    expected_pool,
    expected_pool_backward,
    mismatches,
    pool_window_beats,
    random_pool_tensor)
from edgetrain.sim.tb.stream_sim import run_stream

LANES = 4


def loop_maxpool(x):
    """The rule written out element by element: first maximum in row-major window order."""
    n_, c_, h, w = x.shape
    y = np.zeros((n_, c_, h // 2, w // 2), dtype=np.int16)
    arg = np.zeros_like(y, dtype=np.uint8)
    for n, c, oy, ox in np.ndindex(y.shape):
        best = None
        for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            v = x[n, c, 2 * oy + dy, 2 * ox + dx]
            if best is None or v > best:
                best, arg[n, c, oy, ox] = v, k
        y[n, c, oy, ox] = best
    return y, arg


def test_spec_matches_the_rule_written_out():
    x = random_pool_tensor(random.Random(1), batch=2, channels=3, height=6, width=4)
    y, arg = maxpool2x2(x)
    ly, larg = loop_maxpool(x)
    assert y.dtype == np.int16 and arg.dtype == np.uint8
    assert np.array_equal(y, ly) and np.array_equal(arg, larg)
    dx = maxpool2x2_backward(y, arg)
    assert dx.shape == x.shape and dx.dtype == np.int16
    for n, c, oy, ox in np.ndindex(y.shape):
        window = dx[n, c, 2 * oy:2 * oy + 2, 2 * ox:2 * ox + 2].ravel()
        expected = np.zeros(4, dtype=np.int16)
        expected[arg[n, c, oy, ox]] = y[n, c, oy, ox]
        assert np.array_equal(window, expected)


def test_spec_rejects_odd_sides():
    with pytest.raises(ValueError, match="3x4"):
        maxpool2x2(np.zeros((1, 1, 3, 4), dtype=np.int16))


def collect_forward(payload):
    return {"data": [int(v) for v in payload.data], "argmax": [int(v) for v in payload.argmax]}


def collect_backward(payload):
    return {"window": [[int(v) for v in lane] for lane in payload.window]}


def run_forward(x, *, seed=0, p_valid=0.8, p_ready=0.6):
    dut = MaxPool2x2(lanes=x.shape[1])
    return run_stream(dut, pool_window_beats(x), collect=collect_forward, seed=seed,
                      apply=lambda ctx, beat: ctx.set(dut.i.payload, beat),
                      p_valid=p_valid, p_ready=p_ready)


def run_backward(dy, argmax, *, seed=0, p_valid=0.8, p_ready=0.6):
    dut = PoolBackward(lanes=dy.shape[1])
    n_, c_, h, w = dy.shape
    beats = [{"grad": [int(dy[n, c, oy, ox]) for c in range(c_)],
              "argmax": [int(argmax[n, c, oy, ox]) for c in range(c_)]}
             for n in range(n_) for oy in range(h) for ox in range(w)]
    return run_stream(dut, beats, collect=collect_backward, seed=seed,
                      apply=lambda ctx, beat: ctx.set(dut.i.payload, beat),
                      p_valid=p_valid, p_ready=p_ready)


def test_maxpool_unit_matches_spec():
    x = random_pool_tensor(random.Random(2), batch=3, channels=LANES, height=8, width=8)
    run = run_forward(x, seed=2)
    assert mismatches(expected_pool(x), run.outputs, ("data", "argmax")) == []


def test_pool_backward_unit_matches_spec():
    rnd = random.Random(3)
    x = random_pool_tensor(rnd, batch=3, channels=LANES, height=8, width=8)
    dy = random_pool_tensor(rnd, batch=3, channels=LANES, height=4, width=4)
    _, argmax = maxpool2x2(x)
    run = run_backward(dy, argmax, seed=3)
    assert mismatches(expected_pool_backward(dy, argmax), run.outputs, ("window",)) == []


def test_pool_units_full_throughput_and_latency():
    x = random_pool_tensor(random.Random(4), batch=1, channels=2, height=8, width=8)
    run = run_forward(x, p_valid=1.0, p_ready=1.0)
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles)] == [MaxPool2x2.latency] * 16
    _, argmax = maxpool2x2(x)
    run = run_backward(x[:, :, :4, :4], argmax, p_valid=1.0, p_ready=1.0)
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles)] == [PoolBackward.latency] * 16


def test_comparison_detects_last_instead_of_first_maximum():
    x = random_pool_tensor(random.Random(5), batch=2, channels=LANES, height=4, width=4)
    run = run_forward(x, seed=5)
    assert mismatches(expected_pool(x), run.outputs, ("data", "argmax")) == []
    last = [{"data": [max(w) for w in b["window"]],
             "argmax": [3 - w[::-1].index(max(w)) for w in b["window"]]}
            for b in pool_window_beats(x)]
    assert len(mismatches(last, run.outputs, ("data", "argmax"))) > 0


@pytest.mark.parametrize("unit", [MaxPool2x2, PoolBackward])
@pytest.mark.parametrize("bad", [{"lanes": 0}, {"data_bits": 64}])
def test_bad_parameters_name_the_value(unit, bad):
    with pytest.raises(TypeError, match=repr(list(bad.values())[0])):
        unit(**{"lanes": 2, **bad})


@pytest.mark.slow
def test_pool_units_many_windows():
    rnd = random.Random(6)
    x = random_pool_tensor(rnd, batch=16, channels=8, height=16, width=16)
    run = run_forward(x, seed=6, p_valid=0.7, p_ready=0.5)
    assert mismatches(expected_pool(x), run.outputs, ("data", "argmax")) == []
    y, argmax = maxpool2x2(x)
    run = run_backward(y, argmax, seed=7, p_valid=0.7, p_ready=0.5)
    assert mismatches(expected_pool_backward(y, argmax), run.outputs, ("window",)) == []
