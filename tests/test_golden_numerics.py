"""Numerics properties the hardware relies on: tiling-independent bits and unbiased,
reproducible stochastic rounding."""

import itertools

import numpy as np
import pytest

from edgetrain.sim.golden import layers as gl
from edgetrain.sim.golden.conv import conv_fp, conv_wu
from edgetrain.sim.golden.numerics import requantize, rng_key


def _problem(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-1 << 15, 1 << 15, size=(4, 6, 9, 9)).astype(np.int16)
    w = rng.integers(-1 << 15, 1 << 15, size=(5, 6, 3, 3)).astype(np.int16)
    return x, w


def _tiled_fp(x, w, *, stride, pad, tn, tm, th, tb, order, num, shift):
    """FP computed tile by tile: input-channel partial sums, requantized per output tile."""
    n, c, h, wd = x.shape
    m, k = w.shape[0], w.shape[2]
    ho = (h + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    index = np.arange(n * m * ho * ho).reshape(n, m, ho, ho)
    out = np.zeros((n, m, ho, ho), dtype=np.int16)
    tiles = list(itertools.product(range(0, n, tb), range(0, m, tm), range(0, ho, th)))
    for b0, m0, r0 in order(tiles):
        r1 = min(r0 + th, ho)
        acc = 0
        for c0 in order(list(range(0, c, tn))):
            rows = xp[b0:b0 + tb, c0:c0 + tn, r0 * stride:(r1 - 1) * stride + k]
            acc = acc + conv_fp(rows, w[m0:m0 + tm, c0:c0 + tn], stride, 0)
        sl = np.s_[b0:b0 + tb, m0:m0 + tm, r0:r1]
        out[sl] = num.requantize(acc, shift, slot=1, kind="activation", index=index[sl])
    return out


ORDERS = {"forward": lambda t: t, "reverse": lambda t: t[::-1],
          "shuffled": lambda t: [t[i] for i in np.random.default_rng(len(t)).permutation(len(t))]}


@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 0)])
@pytest.mark.parametrize("tiling", [(2, 2, 3, 1, "forward"), (4, 3, 2, 2, "reverse"),
                                    (1, 5, 4, 3, "shuffled"), (6, 1, 9, 4, "shuffled")])
def test_conv_in_different_tiling_orders_gives_identical_bits(stride, pad, tiling):
    x, w = _problem(1)
    tn, tm, th, tb, order = tiling
    num = gl.StepNumerics(rounding="stochastic", step=3)
    whole = gl.conv_forward(x, w, stride=stride, pad=pad, shift=22, num=num, slot=1)[0]
    assert num.saturations == 0
    tiled = _tiled_fp(x, w, stride=stride, pad=pad, tn=tn, tm=tm, th=th, tb=tb,
                      order=ORDERS[order], num=gl.StepNumerics(rounding="stochastic", step=3),
                      shift=22)
    np.testing.assert_array_equal(tiled, whole)


def test_weight_gradient_summed_over_batch_tiles_in_any_order_is_exact():
    x, _ = _problem(2)
    dy = np.random.default_rng(3).integers(-1 << 15, 1 << 15, size=(4, 5, 9, 9)).astype(np.int16)
    whole = conv_wu(dy, x, 3, 1, 1)
    for chunks in ([0, 1, 2, 3], [3, 1, 0, 2]):
        acc = sum(conv_wu(dy[i:i + 1], x[i:i + 1], 3, 1, 1) for i in chunks)
        np.testing.assert_array_equal(acc, whole)


def test_local_indices_would_change_the_bits():
    """The tiling test can fail: requantizing a tile with tile-local indices differs."""
    x, w = _problem(1)
    acc = conv_fp(x, w, 1, 1)
    key = rng_key(9, 3)
    whole, _ = requantize(acc, 22, rounding="stochastic", key=key)
    local, _ = requantize(acc[2:], 22, rounding="stochastic", key=key)
    assert np.any(local != whole[2:])


def test_stochastic_rounding_is_unbiased_over_many_draws():
    rng = np.random.default_rng(4)
    acc = rng.integers(-1 << 26, 1 << 26, size=64)
    shift, draws = 12, 3000
    total = np.zeros(acc.shape)
    for step in range(draws):
        q, _ = requantize(acc, shift, rounding="stochastic", key=rng_key(5, step))
        total += q
    err = total / draws - acc / 2.0 ** shift  # in output steps
    # Each draw errs by less than one step, so the mean of n draws has std <= 0.5/sqrt(n).
    assert np.max(np.abs(err)) < 5 * 0.5 / np.sqrt(draws)
    assert abs(np.mean(err)) < 5 * 0.5 / np.sqrt(draws * acc.size)
    nearest, _ = requantize(acc, shift)
    assert np.max(np.abs(nearest - acc / 2.0 ** shift)) <= 0.5


def test_stochastic_rounding_is_deterministic_for_the_same_counters():
    acc = np.random.default_rng(5).integers(-1 << 22, 1 << 22, size=(3, 4, 5))
    a = gl.StepNumerics(rounding="stochastic", step=17).requantize(acc, 9, slot=4,
                                                                   kind="input_grad")
    b = gl.StepNumerics(rounding="stochastic", step=17).requantize(acc, 9, slot=4,
                                                                   kind="input_grad")
    np.testing.assert_array_equal(a, b)
    for other in (gl.StepNumerics(rounding="stochastic", step=18).requantize(
                      acc, 9, slot=4, kind="input_grad"),
                  gl.StepNumerics(rounding="stochastic", step=17).requantize(
                      acc, 9, slot=5, kind="input_grad"),
                  gl.StepNumerics(rounding="stochastic", step=17).requantize(
                      acc, 9, slot=4, kind="activation")):
        assert np.any(other != a)
