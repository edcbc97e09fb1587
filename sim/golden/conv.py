"""Exact integer convolution accumulators: the three phases the conv engine computes.

Each function returns the *exact* accumulator (int64) of one phase; requantization is the
caller's (``numerics.requantize``). Shapes are NCHW for activations and OIHW (``[M, C, K, K]``)
for weights. Fully connected layers are convolutions whose kernel covers the input.

* ``conv_fp``: ``y[n,m,oy,ox] = sum_{c,ky,kx} w[m,c,ky,kx] * x[n,c,oy*s+ky-p, ox*s+kx-p]``
  (out-of-range input positions are zero padding).
* ``conv_bp``: the input gradient, ``dx = d(sum y*dy)/dx``. It is the FP datapath run with
  weights rotated 180 degrees and in/out channels swapped over ``dy`` dilated by the stride;
  ``bp_weights`` gives that weight view so the hardware's load path can be checked against it.
* ``conv_wu``: the weight gradient summed over the batch, ``dw[m,c,ky,kx] =
  sum_{n,oy,ox} dy[n,m,oy,ox] * x[n,c,oy*s+ky-p, ox*s+kx-p]``.

Integer products are summed in float64 through BLAS when the sum is provably below 2**53
(then every partial sum is an exact integer), otherwise in int64.
"""

import numpy as np

__all__ = ["out_size", "conv_fp", "conv_bp", "conv_wu", "bp_weights", "im2col"]

_EXACT_F64 = 1 << 53


def out_size(size, k, stride, pad):
    """Return the output extent of a convolution along one axis."""
    return (size + 2 * pad - k) // stride + 1


def _check(h, w, k, stride, pad):
    if stride < 1 or pad < 0 or k < 1:
        raise ValueError(f"need k >= 1, stride >= 1, pad >= 0; got k={k}, stride={stride}, "
                         f"pad={pad}")
    if k > h + 2 * pad or k > w + 2 * pad:
        raise ValueError(f"kernel {k}x{k} is larger than the padded input "
                         f"{h + 2 * pad}x{w + 2 * pad}")


def im2col(x, k, stride, pad):
    """Return patches ``[N, Ho, Wo, C*K*K]`` of ``x`` (zero padded), channel-major."""
    n, c, h, w = x.shape
    _check(h, w, k, stride, pad)
    ho, wo = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, ho, wo, c, k, k), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, :, :, ky, kx] = xp[:, :, ky:ky + stride * ho:stride,
                                          kx:kx + stride * wo:stride].transpose(0, 2, 3, 1)
    return cols.reshape(n, ho, wo, c * k * k)


def _exact_matmul(a, b, reduction, amax_a, amax_b):
    """Multiply integer matrices exactly; return int64."""
    if reduction * max(amax_a, 1) * max(amax_b, 1) < _EXACT_F64:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def _amax(a):
    return int(np.max(np.abs(a.astype(np.int64)))) if a.size else 0


def conv_fp(x, w, stride=1, pad=0):
    """Return the exact forward accumulator ``[N, M, Ho, Wo]`` (int64)."""
    m, c, k, _ = w.shape
    if x.shape[1] != c:
        raise ValueError(f"input has {x.shape[1]} channels, weights expect {c}")
    cols = im2col(x, k, stride, pad)
    acc = _exact_matmul(cols, w.reshape(m, -1).T, c * k * k, _amax(x), _amax(w))
    return acc.transpose(0, 3, 1, 2)


def conv_bp(dy, w, in_shape, stride=1, pad=0):
    """Return the exact input-gradient accumulator ``[N, C, H, W]`` (int64).

    ``in_shape`` is ``(H, W)`` of the forward input (it cannot be recovered from ``dy`` when
    the stride does not divide the padded extent).
    """
    m, c, k, _ = w.shape
    n, _, ho, wo = dy.shape
    h, wd = in_shape
    # Dilate dy by the stride and pad it so that a stride-1 FP conv with the rotated,
    # channel-swapped weights yields dx over the padded input, then crop the padding.
    hp, wp = h + 2 * pad, wd + 2 * pad
    dil = np.zeros((n, m, hp + k - 1, wp + k - 1), dtype=np.int64)
    dil[:, :, k - 1:k - 1 + stride * ho:stride, k - 1:k - 1 + stride * wo:stride] = dy
    dxp = conv_fp(dil, bp_weights(w), 1, 0)
    return dxp[:, :, pad:pad + h, pad:pad + wd]


def bp_weights(w):
    """Return the BP weight view: rotated 180 degrees, in/out channels swapped ``[C, M, K, K]``."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def conv_wu(dy, x, k, stride=1, pad=0):
    """Return the exact weight-gradient accumulator ``[M, C, K, K]`` summed over the batch."""
    n, c, h, w = x.shape
    m = dy.shape[1]
    cols = im2col(x, k, stride, pad).reshape(-1, c * k * k)
    dyf = dy.transpose(0, 2, 3, 1).reshape(-1, m)
    acc = _exact_matmul(dyf.T, cols, dyf.shape[0], _amax(dy), _amax(x))
    return acc.reshape(m, c, k, k)
