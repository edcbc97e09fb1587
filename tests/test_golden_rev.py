"""Reversible block: the integer inverse is bit-exact, the backward's recomputation gives the
forward's bits, and its gradients equal those of a block that stores its inputs."""

import numpy as np
import pytest

from edgetrain.sim.golden import layers as gl
from edgetrain.sim.golden.conv import conv_bp, conv_fp, conv_wu
from edgetrain.sim.golden.numerics import saturate, wrap_add
from edgetrain.sim.golden.rev import (
    RevFormats,
    RevObservations,
    rev_backward,
    rev_backward_float,
    rev_forward,
    rev_forward_float,
    rev_inverse)

FMT = RevFormats(slot_f=2, slot_g=3, kernel=3, frac_a=10, frac_g=12, frac_wf=11, frac_wg=12)


def _block(seed, full_range):
    rng = np.random.default_rng(seed)
    hi = 1 << 15 if full_range else 1 << 10
    x = rng.integers(-hi, hi, size=(3, 8, 5, 6)).astype(np.int16)
    wf, wg = (rng.integers(-1 << 11, 1 << 11, size=(4, 4, 3, 3)).astype(np.int16)
              for _ in range(2))
    return x, wf, wg


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("seed", range(4))
def test_inverse_is_bit_exact_on_random_inputs(seed, rounding):
    x, wf, wg = _block(seed, full_range=seed % 2 == 0)
    num = gl.StepNumerics(rounding=rounding, step=seed)
    y = rev_forward(x, wf, wg, fmt=FMT, num=num)
    np.testing.assert_array_equal(rev_inverse(y, wf, wg, fmt=FMT, num=num), x)
    if seed % 2 == 0:
        assert num.wraps > 0  # full-range inputs wrap, and the inverse is still exact


def test_inverse_needs_the_same_rng_keys():
    x, wf, wg = _block(9, full_range=False)
    y = rev_forward(x, wf, wg, fmt=FMT, num=gl.StepNumerics(rounding="stochastic", step=1))
    other = rev_inverse(y, wf, wg, fmt=FMT, num=gl.StepNumerics(rounding="stochastic", step=2))
    assert np.any(other != x)  # a different step's bits do not reproduce the forward


def _stored_reference(x, y, dy, wf, wg, num):
    """Backward of a block that keeps x, F and G from its forward (no recomputation)."""
    h = x.shape[1] // 2
    x1, x2, y1 = x[:, :h], x[:, h:], y[:, :h]
    f, mask_f = gl.relu_forward(num.requantize(conv_fp(x2, wf, 1, 1), FMT.frac_wf,
                                               slot=FMT.slot_f, kind="activation"))
    g, mask_g = gl.relu_forward(num.requantize(conv_fp(y1, wg, 1, 1), FMT.frac_wg,
                                               slot=FMT.slot_g, kind="activation"))
    np.testing.assert_array_equal(wrap_add(x1, f), y1)
    dz_g = np.where(mask_g, dy[:, h:], 0)
    bp_g = num.requantize(conv_bp(dz_g, wg, x.shape[2:], 1, 1), FMT.frac_wg,
                          slot=FMT.slot_g, kind="input_grad")
    dy1 = saturate(dy[:, :h].astype(np.int64) + bp_g, 16)[0]
    dz_f = np.where(mask_f, dy1, 0)
    bp_f = num.requantize(conv_bp(dz_f, wf, x.shape[2:], 1, 1), FMT.frac_wf,
                          slot=FMT.slot_f, kind="input_grad")
    dx2 = saturate(dy[:, h:].astype(np.int64) + bp_f, 16)[0]
    return (np.concatenate([dy1, dx2], axis=1),
            {FMT.slot_f: conv_wu(dz_f, x2, 3, 1, 1), FMT.slot_g: conv_wu(dz_g, y1, 3, 1, 1)})


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_backward_recomputes_the_input_and_matches_a_storing_block(rounding):
    x, wf, wg = _block(5, full_range=True)
    rng = np.random.default_rng(11)
    dy = rng.integers(-1 << 12, 1 << 12, size=x.shape).astype(np.int16)
    num = gl.StepNumerics(rounding=rounding, step=4)
    y = rev_forward(x, wf, wg, fmt=FMT, num=num)
    obs = RevObservations()
    dx, x_again, grads = rev_backward(y, dy, wf, wg, fmt=FMT, num=num, obs=obs)
    np.testing.assert_array_equal(x_again, x)
    ref_dx, ref_grads = _stored_reference(x, y, dy, wf, wg, num)
    np.testing.assert_array_equal(dx, ref_dx)
    for s in ref_grads:
        np.testing.assert_array_equal(grads[s], ref_grads[s])
    assert len(obs.grad) == 4 and all(a > 0 for a, _ in obs.grad)


def _fd(f, x, idx, eps=1e-6):
    xp, xm = x.copy(), x.copy()
    xp[idx] += eps
    xm[idx] -= eps
    return (f(xp) - f(xm)) / (2 * eps)


def test_float_block_gradients_match_finite_differences():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 4, 5))
    wf, wg = rng.standard_normal((3, 3, 3, 3)) * 0.3, rng.standard_normal((3, 3, 3, 3)) * 0.3
    r = rng.standard_normal(x.shape)
    y = rev_forward_float(x, wf, wg, kernel=3)
    dx, x_again, (dwf, dwg) = rev_backward_float(y, r, wf, wg, kernel=3)
    np.testing.assert_allclose(x_again, x, atol=1e-12)
    loss = lambda xv, a=wf, b=wg: float(np.sum(rev_forward_float(xv, a, b, kernel=3) * r))  # noqa
    for i in [np.unravel_index(j, x.shape) for j in rng.choice(x.size, 15, replace=False)]:
        assert dx[i] == pytest.approx(_fd(loss, x, i), rel=1e-5, abs=1e-6)
    for i in [np.unravel_index(j, wf.shape) for j in rng.choice(wf.size, 10, replace=False)]:
        assert dwf[i] == pytest.approx(_fd(lambda v: loss(x, v, wg), wf, i), rel=1e-5, abs=1e-6)
        assert dwg[i] == pytest.approx(_fd(lambda v: loss(x, wf, v), wg, i), rel=1e-5, abs=1e-6)


def test_fixed_forward_matches_float_twin_within_propagated_quantization_steps():
    """Nearest rounding errs by half a trunk step in F(x2); G (ReLU is 1-Lipschitz) carries
    y1's error amplified at most by its largest absolute row sum, plus its own half step."""
    from edgetrain.sim.golden.numerics import dequantize
    x, wf, wg = _block(3, full_range=False)
    num = gl.StepNumerics(rounding="nearest", step=0)
    y = rev_forward(x, wf, wg, fmt=FMT, num=num)
    assert num.wraps == 0 and num.saturations == 0
    yf = rev_forward_float(dequantize(x, FMT.frac_a), dequantize(wf, FMT.frac_wf),
                           dequantize(wg, FMT.frac_wg), kernel=3)
    step = 2.0 ** -FMT.frac_a
    gain = np.max(np.abs(dequantize(wg, FMT.frac_wg)).sum(axis=(1, 2, 3)))
    err = np.abs(dequantize(y, FMT.frac_a) - yf)
    assert np.max(err[:, :4]) <= 0.5 * step
    assert np.max(err[:, 4:]) <= (0.5 * gain + 0.5) * step
    assert np.max(err) > 0
