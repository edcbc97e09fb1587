"""Golden layers: fixed point against the float twin, the float twin against finite
differences, the max-pool tie-break and counted saturation."""

import numpy as np
import pytest

from edgetrain.sim.golden import float_layers as flt
from edgetrain.sim.golden import layers as gl
from edgetrain.sim.golden.conv import conv_bp, conv_fp
from edgetrain.sim.golden.numerics import dequantize, frac_for_amax

# (C, M, K, stride, pad, H, W): square and odd shapes, strides that do not divide the input.
SHAPES = [(3, 4, 3, 1, 1, 6, 6), (2, 3, 3, 2, 0, 7, 7), (2, 2, 5, 2, 2, 8, 6),
          (4, 3, 1, 1, 0, 5, 5), (1, 2, 2, 3, 1, 7, 8)]
ROUNDINGS = ["nearest", "stochastic"]
U32 = 2.0 ** -24


def _ints(rng, shape, bits=12):
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape).astype(np.int16)


def _gamma(n):
    return n * U32 / (1 - n * U32)


def _case(seed, shape):
    c, m, k, s, p, h, w = shape
    rng = np.random.default_rng(seed)
    x, wt = _ints(rng, (2, c, h, w)), _ints(rng, (m, c, k, k))
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return x, wt, _ints(rng, (2, m, ho, wo)), (k, s, p)


def _fit(acc, frac_acc):
    """The output frac delayed scaling would pick for this accumulator."""
    return frac_for_amax(gl.amax(acc), frac_acc)


def _quant_bound(rounding, frac_out):
    """Largest |fixed - exact| of one requantization: half a step (nearest), a step (SR)."""
    return (0.5 if rounding == "nearest" else 1.0) * 2.0 ** -frac_out


def _check_close(fixed_q, frac_out, exact, rounding, f32=None, f32_abs=None, n=1):
    fixed = dequantize(fixed_q, frac_out)
    bound = _quant_bound(rounding, frac_out)
    assert np.max(np.abs(fixed - exact)) <= bound
    assert np.max(np.abs(fixed - exact)) > 0  # the bound is not vacuous: rounding happened
    if f32 is not None:
        assert np.all(np.abs(fixed - f32) <= bound + _gamma(n) * f32_abs)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_conv_fp_bp_wu_match_float_twin(shape, rounding):
    x, w, dy, (k, s, p) = _case(1, shape)
    fx, fw, fdy = 10, 12, 13
    xf, wf, dyf = dequantize(x, fx), dequantize(w, fw), dequantize(dy, fdy)
    num = gl.StepNumerics(rounding=rounding, step=7)
    fo = _fit(conv_fp(x, w, s, p), fx + fw)
    y, _ = gl.conv_forward(x, w, stride=s, pad=p, shift=fx + fw - fo, num=num, slot=3)
    n = w[0].size
    _check_close(y, fo, flt.conv_forward(xf, wf, stride=s, pad=p), rounding,
                 flt.conv_forward(xf.astype(np.float32), wf.astype(np.float32), stride=s, pad=p),
                 flt.conv_forward(np.abs(xf), np.abs(wf), stride=s, pad=p), n)
    fo = _fit(conv_bp(dy, w, x.shape[2:], s, p), fdy + fw)
    dx, _ = gl.conv_input_grad(dy, w, x.shape[2:], stride=s, pad=p, shift=fdy + fw - fo,
                               num=num, slot=3)
    _check_close(dx, fo, flt.conv_input_grad(dyf, wf, x.shape[2:], stride=s, pad=p), rounding,
                 flt.conv_input_grad(dyf.astype(np.float32), wf.astype(np.float32),
                                     x.shape[2:], stride=s, pad=p),
                 flt.conv_input_grad(np.abs(dyf), np.abs(wf), x.shape[2:], stride=s, pad=p),
                 dy.shape[1] * k * k)
    assert num.saturations == 0
    # WU is the exact accumulator: equal to the exact real gradient, to the last bit.
    g = gl.conv_weight_grad(dy, x, kernel=k, stride=s, pad=p)
    exact = flt.conv_weight_grad(dyf, xf, kernel=k, stride=s, pad=p)
    np.testing.assert_array_equal(dequantize(g, fdy + fx), exact)
    g32 = flt.conv_weight_grad(dyf.astype(np.float32), xf.astype(np.float32), kernel=k,
                               stride=s, pad=p)
    mag = flt.conv_weight_grad(np.abs(dyf), np.abs(xf), kernel=k, stride=s, pad=p)
    assert np.all(np.abs(exact - g32) <= _gamma(dy.size // dy.shape[1]) * mag)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_fc_matches_float_twin_and_is_a_covering_conv(rounding):
    rng = np.random.default_rng(2)
    x, w, dy = _ints(rng, (3, 4, 4, 4)), _ints(rng, (10, 4, 4, 4)), _ints(rng, (3, 10, 1, 1))
    fx, fw, fdy = 11, 12, 14
    num = gl.StepNumerics(rounding=rounding, step=1)
    shift = fx + fw - _fit(conv_fp(x, w), fx + fw)
    y, a = gl.fc_forward(x, w, shift=shift, num=num, slot=0)
    yc, ac = gl.conv_forward(x, w, stride=1, pad=0, shift=shift, num=num, slot=0)
    np.testing.assert_array_equal(y, yc)
    assert a == ac
    xf, wf, dyf = dequantize(x, fx), dequantize(w, fw), dequantize(dy, fdy)
    _check_close(y, fx + fw - shift, flt.fc_forward(xf, wf), rounding)
    fo = _fit(conv_bp(dy, w.reshape(10, -1, 1, 1), (1, 1)), fdy + fw)
    dx, _ = gl.fc_input_grad(dy, w, (4, 4, 4), shift=fdy + fw - fo, num=num, slot=0)
    _check_close(dx, fo, flt.fc_input_grad(dyf, wf, (4, 4, 4)), rounding)
    assert num.saturations == 0
    np.testing.assert_array_equal(dequantize(gl.fc_weight_grad(dy, x), fdy + fx),
                                  flt.fc_weight_grad(dyf, xf))


def test_relu_and_maxpool_are_exact_and_share_code_with_the_twin():
    rng = np.random.default_rng(3)
    x = _ints(rng, (2, 3, 4, 6), bits=4)  # small range: many ties in pooling windows
    y, mask = gl.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(mask, x > 0)
    p, arg = gl.maxpool_forward(x)
    yf, argf = gl.maxpool_forward(dequantize(x, 5))
    np.testing.assert_array_equal(dequantize(p, 5), yf)
    np.testing.assert_array_equal(arg, argf)
    dy = _ints(rng, p.shape)
    dx = gl.maxpool_backward(dy, arg)
    assert dx.shape == x.shape and np.count_nonzero(dx) <= np.count_nonzero(dy)
    np.testing.assert_array_equal(dx.reshape(2, 3, 2, 2, 3, 2).sum(axis=(3, 5)), dy)


def test_maxpool_tie_break_is_first_maximum_in_row_major_order():
    win = np.array([[5, 5], [5, 5]]), np.array([[1, 7], [7, 7]]), np.array([[0, 0], [3, 3]])
    for w, expect in zip(win, (0, 1, 2)):
        _, arg = gl.maxpool_forward(w.reshape(1, 1, 2, 2).astype(np.int16))
        assert arg.item() == expect
        dx = gl.maxpool_backward(np.array([[[[9]]]], dtype=np.int16), arg)
        assert dx.reshape(4).tolist() == [9 if i == expect else 0 for i in range(4)]


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_saturation_is_counted(rounding):
    x, w, _, (k, s, p) = _case(4, SHAPES[0])
    num = gl.StepNumerics(rounding=rounding, step=2)
    shift = 8  # output format far too fine for these accumulators
    y, _ = gl.conv_forward(x, w, stride=s, pad=p, shift=shift, num=num, slot=1)
    exact = flt.conv_forward(x.astype(np.float64), w.astype(np.float64), stride=s, pad=p)
    lo, hi = np.floor(exact / 2 ** shift), np.ceil(exact / 2 ** shift)
    surely = np.count_nonzero((lo > 32767) | (hi < -32768))
    maybe = np.count_nonzero((hi > 32767) | (lo < -32768))
    assert 0 < surely <= num.saturations <= maybe
    assert np.count_nonzero((y == 32767) | (y == -32768)) >= num.saturations


def _fd(f, x, idx, eps=1e-6):
    xp, xm = x.copy(), x.copy()
    xp[idx] += eps
    xm[idx] -= eps
    return (f(xp) - f(xm)) / (2 * eps)


def _sample(rng, shape, n=12):
    flat = rng.choice(int(np.prod(shape)), size=min(n, int(np.prod(shape))), replace=False)
    return [np.unravel_index(i, shape) for i in flat]


@pytest.mark.parametrize("shape", SHAPES)
def test_float_conv_gradients_match_finite_differences(shape):
    c, m, k, s, p, h, w = shape
    rng = np.random.default_rng(5)
    x, wt = rng.standard_normal((2, c, h, w)), rng.standard_normal((m, c, k, k))
    r = rng.standard_normal(flt.conv_forward(x, wt, stride=s, pad=p).shape)
    loss_x = lambda v: float(np.sum(flt.conv_forward(v, wt, stride=s, pad=p) * r))  # noqa
    loss_w = lambda v: float(np.sum(flt.conv_forward(x, v, stride=s, pad=p) * r))  # noqa
    dx = flt.conv_input_grad(r, wt, (h, w), stride=s, pad=p)
    dw = flt.conv_weight_grad(r, x, kernel=k, stride=s, pad=p)
    for i in _sample(rng, x.shape):
        assert dx[i] == pytest.approx(_fd(loss_x, x, i), rel=1e-5, abs=1e-6)
    for i in _sample(rng, wt.shape):
        assert dw[i] == pytest.approx(_fd(loss_w, wt, i), rel=1e-5, abs=1e-6)


def test_float_fc_relu_pool_loss_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((5, 2, 2, 2))
    labels = np.array([0, 4, 2])

    def loss(v, wv=w):
        a, _ = gl.relu_forward(v)
        pooled, _ = gl.maxpool_forward(a)
        return gl.softmax_xent(flt.fc_forward(pooled, wv), None, labels)[0] * len(labels)

    a, mask = gl.relu_forward(x)
    pooled, arg = gl.maxpool_forward(a)
    _, g, _ = gl.softmax_xent(flt.fc_forward(pooled, w), None, labels)
    g = g[:, :, None, None]
    dx = gl.relu_backward(gl.maxpool_backward(flt.fc_input_grad(g, w, pooled.shape[1:]), arg),
                          mask)
    dw = flt.fc_weight_grad(g, pooled)
    for i in _sample(rng, x.shape, 20):
        assert dx[i] == pytest.approx(_fd(loss, x, i), rel=1e-5, abs=1e-6)
    for i in _sample(rng, w.shape, 20):
        assert dw[i] == pytest.approx(_fd(lambda v: loss(x, v), w, i), rel=1e-5, abs=1e-6)


def test_loss_gradient_quantization_is_half_even_at_frac_14():
    g = np.array([[0.5 + 2 ** -15, -1.0, 2 ** -15, 3 * 2 ** -15]])
    assert gl.quantize_loss_grad(g).ravel().tolist() == [8192, -16384, 0, 2]


def test_fixed_loss_gradient_matches_float_within_half_a_step():
    rng = np.random.default_rng(9)
    logits = _ints(rng, (16, 10, 1, 1), bits=14)
    labels = rng.integers(0, 10, 16)
    _, g, _ = gl.softmax_xent(logits, 9, labels)
    _, gf, _ = gl.softmax_xent(dequantize(logits, 9), None, labels)
    q = dequantize(gl.quantize_loss_grad(g), gl.LOSS_GRAD_FRAC)[:, :, 0, 0]
    assert 0 < np.max(np.abs(q - gf)) <= 2.0 ** -(gl.LOSS_GRAD_FRAC + 1)
