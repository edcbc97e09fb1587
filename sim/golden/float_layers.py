"""The float twin of every golden layer (FP, BP, WU), in the dtype of its inputs.

Training runs the twin in float32 (``--float``); tests run it in float64 for finite
differences. Shapes and the FC-as-covering-conv rule are those of ``golden_layers``; nothing
is quantized. ReLU, max-pool and the loss in ``golden_layers`` are dtype-generic and serve
both paths unchanged.
"""

import numpy as np

from .conv import im2col

__all__ = ["conv_forward", "conv_input_grad", "conv_weight_grad", "fc_forward",
           "fc_input_grad", "fc_weight_grad"]


def conv_forward(x, w, *, stride, pad):
    """Return ``y[n,m,oy,ox] = sum w[m,c,ky,kx] * x[n,c,oy*s+ky-p,ox*s+kx-p]``."""
    m = w.shape[0]
    cols = im2col(x, w.shape[2], stride, pad)
    return np.matmul(cols, w.reshape(m, -1).T).transpose(0, 3, 1, 2)


def conv_input_grad(dy, w, in_shape, *, stride, pad):
    """Return ``dx`` (``[N, C, H, W]``): each output's gradient spread back over its window."""
    m, c, k, _ = w.shape
    n, _, ho, wo = dy.shape
    h, wd = in_shape
    cols = np.matmul(dy.transpose(0, 2, 3, 1), w.reshape(m, -1)).reshape(n, ho, wo, c, k, k)
    dxp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=cols.dtype)
    for ky in range(k):
        for kx in range(k):
            dxp[:, :, ky:ky + stride * ho:stride, kx:kx + stride * wo:stride] += \
                cols[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + h, pad:pad + wd]


def conv_weight_grad(dy, x, *, kernel, stride, pad):
    """Return ``dw`` (OIHW) summed over the batch."""
    n, c = x.shape[:2]
    m = dy.shape[1]
    cols = im2col(x, kernel, stride, pad).reshape(-1, c * kernel * kernel)
    return np.matmul(dy.transpose(0, 2, 3, 1).reshape(-1, m).T, cols).reshape(
        m, c, kernel, kernel)


def _flat(a):
    return a.reshape(a.shape[0], -1, 1, 1)


def fc_forward(x, w):
    """Return the ``[N, M, 1, 1]`` output of a fully connected layer (weights ``[M, C, H, W]``)."""
    return conv_forward(_flat(x), _flat(w), stride=1, pad=0)


def fc_input_grad(dy, w, in_shape):
    """Return the FC input gradient ``[N, C, H, W]``."""
    return conv_input_grad(dy, _flat(w), (1, 1), stride=1, pad=0).reshape(dy.shape[0],
                                                                          *in_shape)


def fc_weight_grad(dy, x):
    """Return the FC weight gradient ``[M, C, H, W]`` summed over the batch."""
    return conv_weight_grad(dy, _flat(x), kernel=1, stride=1, pad=0).reshape(
        dy.shape[1], *x.shape[1:])

