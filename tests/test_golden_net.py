"""The fixed-point net: delayed scaling, calibration, stored activation bytes, determinism."""

import numpy as np
import pytest

from edgetrain.firmware.nets import FC, Conv, MaxPool, Net, ReLU, RevBlock, get_net
from edgetrain.sim.golden import layers as gl
from edgetrain.sim.golden.conv import conv_fp
from edgetrain.sim.golden.formats import Formats
from edgetrain.sim.golden.net import FixedNet, lr_fixed
from edgetrain.sim.golden.numerics import frac_for_amax
from edgetrain.sim.golden.plan import init_weights, plan_net
from edgetrain.sim.golden.storage import stored_activation_bytes, tape_bytes

SMALL = Net("small-rev", (1, 8, 8), (Conv(4, 3, pad=1), ReLU(), RevBlock(3), RevBlock(3),
                                     MaxPool(), FC(10)))


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, n)


def _net(net, rounding="stochastic"):
    plan = plan_net(net)
    return FixedNet(plan, init_weights(plan, 0), rounding=rounding, lr=0.05, momentum=0.9)


def test_formats_take_the_smallest_candidate_ignore_zero_and_respect_ceilings():
    f = Formats({"a": 3, "b": 7, "c": 1}, ceilings={"b": 5})
    assert f["b"] == 5
    f.observe("a", 1000, 20)      # 1000 needs 10 bits: 20 + 14 - 10 = 24
    f.observe("a", 5000, 20)      # 13 bits: 21
    f.observe("b", 1, 30)         # would be 43, capped at 5
    f.observe("c", 0, 30)         # no information
    assert sorted(f.advance()) == ["a"]
    assert (f["a"], f["b"], f["c"]) == (21, 5, 1)
    assert f.advance() == []


def test_delayed_scaling_sets_next_steps_format_from_this_steps_accumulator():
    model = _net(get_net("digits-cnn"))
    x, y = _batch()
    model.calibrate(x, y)
    xq = model.quantize_input(x)
    frac_acc = model.formats["input"] + model.formats[("w", 0)]
    acc = conv_fp(xq, model.weights[0], 1, 1)
    model.train_step(x, y)
    assert model.formats[("act", 0)] == frac_for_amax(gl.amax(acc), frac_acc)


def test_calibration_converges_and_removes_saturation():
    model = _net(SMALL)
    x, y = _batch()
    passes = model.calibrate(x, y)
    assert 1 < passes < 2 * len(SMALL.layers) + 2
    num = gl.StepNumerics(rounding="stochastic", step=0)
    model._forward_backward(x, y, num)
    assert num.saturations == 0 and num.wraps == 0


@pytest.mark.parametrize("name", ["digits-cnn", "digits-revnet", "small-rev"])
def test_stored_activation_bytes_match_what_the_tape_holds(name):
    net = SMALL if name == "small-rev" else get_net(name)
    model = _net(net)
    x, _ = _batch(6)
    tape = []
    model.forward(model.quantize_input(x), gl.StepNumerics(rounding="nearest", step=0),
                  tape=tape)
    counted = stored_activation_bytes(plan_net(net), 6)
    assert tape_bytes(tape, 6) == counted["per_sample"]
    assert counted["batch_total"] == 6 * counted["per_sample"]


def test_revnet_keeps_at_least_twice_fewer_activation_bytes():
    cnn = stored_activation_bytes(plan_net(get_net("digits-cnn")), 32)["per_sample"]
    rev = stored_activation_bytes(plan_net(get_net("digits-revnet")), 32)["per_sample"]
    assert (cnn, rev) == (7360, 2880)
    assert cnn >= 2 * rev


def test_training_steps_are_deterministic_and_count_events():
    runs = []
    for _ in range(2):
        model = _net(SMALL)
        x, y = _batch(8, seed=1)
        model.calibrate(x, y)
        results = [model.train_step(x, y) for _ in range(3)]
        runs.append((results, {s: m.copy() for s, m in model.master.items()}))
    (r0, m0), (r1, m1) = runs
    assert r0 == r1
    for s in m0:
        np.testing.assert_array_equal(m0[s], m1[s])
    assert r0[-1].loss < r0[0].loss


def test_learning_rate_is_a_16_bit_fraction_with_batch_folded_in():
    for lr, batch in [(0.02, 32), (0.05, 7), (1.0, 1), (0.001, 128)]:
        q, shift = lr_fixed(lr, batch)
        assert 1 << 15 <= q < 1 << 16
        assert q / 2 ** shift == pytest.approx(lr / batch, rel=2 ** -15)


@pytest.mark.parametrize("rounding,ulps", [("nearest", 0.5), ("stochastic", 1.0)])
def test_fixed_update_matches_float_update_within_the_quantization_steps(rounding, ulps):
    """v and w after sgd_momentum against the real-valued update with the same constants.

    Each requantization errs by at most ``ulps`` master steps: v carries two (g, mu*v),
    w carries lr_eff times v's error plus its own.
    """
    from edgetrain.sim.golden.numerics import dequantize, rng_key, sgd_momentum
    rng = np.random.default_rng(8)
    fm, g_frac = 20, 26
    master = rng.integers(-1 << 19, 1 << 19, size=(4, 3, 3, 3)).astype(np.int32)
    velocity = rng.integers(-1 << 22, 1 << 22, size=master.shape).astype(np.int32)
    g_acc = rng.integers(-1 << 34, 1 << 34, size=master.shape)
    mu_q, (lr_q, lr_shift) = 58982, lr_fixed(0.05, 32)
    keys = tuple(rng_key(t, 3) for t in (2, 3, 4))
    r = sgd_momentum(master, velocity, g_acc, g_shift=g_frac - fm, mu_q=mu_q, lr_q=lr_q,
                     lr_shift=lr_shift, rounding=rounding, keys=keys)
    v = mu_q / 2 ** 16 * dequantize(velocity, fm) + dequantize(g_acc, g_frac)
    w = dequantize(master, fm) - lr_q / 2 ** lr_shift * v
    ulp = 2.0 ** -fm
    assert r.saturations == 0
    assert np.max(np.abs(dequantize(r.velocity, fm) - v)) <= 2 * ulps * ulp
    lr_eff = lr_q / 2 ** lr_shift
    assert np.max(np.abs(dequantize(r.master, fm) - w)) <= (2 * lr_eff + 1) * ulps * ulp
    assert np.max(np.abs(dequantize(r.velocity, fm) - v)) > 0
