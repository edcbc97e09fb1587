"""Fixed-point golden layers: forward (FP), input gradient (BP) and weight gradient (WU).

This is the layer contract the conv engine reproduces bit for bit.

Requantized outputs
    Every conv / FC output (FP activations and BP input gradients) is produced as: the exact
    accumulator from ``sim.conv`` (``conv_fp`` / ``conv_bp``), then ``numerics.requantize``
    with ``shift = frac_acc - frac_out``, the chosen rounding, ``key = rng_key(tensor_id(slot,
    kind), step)`` and ``index`` = the element's flat row-major position in the *whole batch
    tensor* of that step (``[N, C, H, W]``), then saturation to int16 (counted). ``slot`` is
    the index of the convolution in the net (see ``golden_net``), ``kind`` is ``activation``
    for FP and ``input_grad`` for BP. A ReLU that follows is applied to the int16 result.
WU
    ``conv_weight_grad`` returns the exact accumulator summed over the batch (OIHW); the
    update unit consumes it (``numerics.sgd_momentum``), no requantization here.
ReLU
    ``y = max(x, 0)``, mask ``x > 0`` (1 bit per element); BP passes ``dy`` where the mask is
    set and 0 elsewhere.
2x2 max-pool (stride 2)
    The argmax of each window is the *first* maximum in row-major window order (0: (0,0),
    1: (0,1), 2: (1,0), 3: (1,1)), kept as a 2-bit code per output; BP routes each ``dy`` to
    its argmax and zero elsewhere. Values and formats pass through unchanged.
Fully connected
    A convolution whose kernel covers its input: weights ``[M, C, H, W]`` (OIHW), output
    ``[N, M, 1, 1]``. It is computed as the equivalent 1x1 convolution over the flattened
    input, which sums exactly the same products, so the bits are identical.
Loss
    ``softmax_xent`` (host, float64) dequantizes the logits, returns the mean cross-entropy
    and the per-sample gradient ``softmax - onehot`` (not divided by the batch: ``1/batch`` is
    folded into the learning rate), quantized to int16 with round-half-even at
    ``LOSS_GRAD_FRAC`` = 14 (every element lies in [-1, 1], so it never saturates).
"""

import numpy as np

from .conv import conv_bp, conv_fp, conv_wu
from .numerics import (
    DATA_BITS,
    ROUNDING_MODES,
    dequantize,
    quantize_float,
    requantize,
    rng_key,
    saturate,
    tensor_id,
    wrap_add)

__all__ = ["StepNumerics", "amax", "conv_forward", "conv_input_grad", "conv_weight_grad",
           "fc_forward", "fc_input_grad", "fc_weight_grad", "relu_forward", "relu_backward",
           "maxpool_forward", "maxpool_backward", "softmax_xent", "quantize_loss_grad",
           "LOSS_GRAD_FRAC"]

LOSS_GRAD_FRAC = 14


def amax(a):
    """Return ``max |a|`` as a Python int (0 for an empty array)."""
    return int(np.max(np.abs(np.asarray(a, dtype=np.int64)))) if np.size(a) else 0


class StepNumerics:
    """The integer arithmetic of one training ``step``: requantization and counted adds.

    ``saturations`` counts elements clipped by requantization or by a saturating add
    (``saturations_by_kind`` splits them by tensor kind; gradient adds count as
    ``input_grad``);
    ``wraps`` counts wrapping adds whose exact result left the int16 range.
    """

    def __init__(self, *, rounding, step):
        if rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
        self.rounding, self.step = rounding, int(step)
        self.saturations = 0
        self.saturations_by_kind = {}
        self.wraps = 0

    def key(self, slot, kind):
        """Return the rng key of tensor ``kind`` of conv ``slot`` at this step."""
        return rng_key(tensor_id(slot, kind), self.step)

    def requantize(self, acc, shift, *, slot, kind, index=None):
        """Return ``acc`` requantized into int16; ``index`` defaults to the whole tensor."""
        if index is None:
            index = np.arange(acc.size, dtype=np.int64).reshape(acc.shape)
        q, n = requantize(acc, shift, rounding=self.rounding, key=self.key(slot, kind),
                          index=index)
        self.count_saturations(kind, n)
        return q

    def count_saturations(self, kind, n):
        """Add ``n`` saturated elements of tensor ``kind`` to the counts."""
        self.saturations += n
        if n:
            self.saturations_by_kind[kind] = self.saturations_by_kind.get(kind, 0) + n

    def add_saturating(self, a, b):
        """Return (int16 ``a + b`` saturated, the exact sums' amax)."""
        s = a.astype(np.int64) + b
        q, n = saturate(s, DATA_BITS)
        self.count_saturations("input_grad", n)
        return q.astype(np.int16), amax(s)

    def add_wrapping(self, a, b):
        """Return (int16 ``a + b`` wrapped, the exact sums' amax)."""
        s = a.astype(np.int64) + b
        self.wraps += int(np.count_nonzero((s < -(1 << 15)) | (s >= 1 << 15)))
        return wrap_add(a, b), amax(s)


def conv_forward(x, w, *, stride, pad, shift, num, slot):
    """Return (int16 output, amax of the exact accumulator) of a conv's FP."""
    acc = conv_fp(x, w, stride, pad)
    return num.requantize(acc, shift, slot=slot, kind="activation"), amax(acc)


def conv_input_grad(dy, w, in_shape, *, stride, pad, shift, num, slot):
    """Return (int16 input gradient, amax of the exact accumulator) of a conv's BP."""
    acc = conv_bp(dy, w, in_shape, stride, pad)
    return num.requantize(acc, shift, slot=slot, kind="input_grad"), amax(acc)


def conv_weight_grad(dy, x, *, kernel, stride, pad):
    """Return the exact batch-summed weight-gradient accumulator (int64, OIHW)."""
    return conv_wu(dy, x, kernel, stride, pad)


def _flat(a):
    return a.reshape(a.shape[0], -1, 1, 1)


def fc_forward(x, w, *, shift, num, slot):
    """Return (int16 ``[N, M, 1, 1]`` output, accumulator amax) of a fully connected layer."""
    return conv_forward(_flat(x), _flat(w), stride=1, pad=0, shift=shift, num=num, slot=slot)


def fc_input_grad(dy, w, in_shape, *, shift, num, slot):
    """Return (int16 input gradient ``[N, C, H, W]``, accumulator amax) of an FC layer."""
    dx, a = conv_input_grad(dy, _flat(w), (1, 1), stride=1, pad=0, shift=shift, num=num,
                            slot=slot)
    return dx.reshape(dy.shape[0], *in_shape), a


def fc_weight_grad(dy, x):
    """Return the exact batch-summed weight-gradient accumulator ``[M, C, H, W]``."""
    return conv_wu(dy, _flat(x), 1).reshape(dy.shape[1], *x.shape[1:])


def relu_forward(x):
    """Return (``max(x, 0)``, mask ``x > 0``)."""
    mask = x > 0
    return np.where(mask, x, 0).astype(x.dtype), mask


def relu_backward(dy, mask):
    """Return ``dy`` where the mask is set, 0 elsewhere."""
    return np.where(mask, dy, 0).astype(dy.dtype)


def _windows(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)


def maxpool_forward(x):
    """Return (2x2 max-pooled ``x``, uint8 argmax code 0..3 per output)."""
    win = _windows(x)
    arg = np.argmax(win, axis=-1).astype(np.uint8)  # first maximum wins ties
    return np.take_along_axis(win, arg[..., None].astype(np.int64), -1)[..., 0], arg


def maxpool_backward(dy, arg):
    """Return the input gradient: each ``dy`` routed to its window's argmax."""
    n, c, ho, wo = dy.shape
    win = np.where(np.arange(4) == arg[..., None], dy[..., None], 0).astype(dy.dtype)
    return win.reshape(n, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, 2 * ho, 2 * wo)


def softmax_xent(logits, frac, labels):
    """Return (mean loss, float64 gradient ``[N, classes]``, number correct).

    ``logits`` is int16 ``[N, classes, 1, 1]`` at ``frac``, or real values with ``frac=None``
    (the float twin). The fixed-point path then quantizes the gradient with
    ``quantize_loss_grad``.
    """
    z = logits.reshape(len(labels), -1)
    z = dequantize(z, frac) if frac is not None else np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = float(-logp[np.arange(n), labels].mean())
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    correct = int(np.count_nonzero(np.argmax(z, axis=1) == labels))
    return loss, grad, correct


def quantize_loss_grad(grad):
    """Return the float64 loss gradient ``[N, classes]`` as int16 ``[N, classes, 1, 1]``."""
    return quantize_float(grad, LOSS_GRAD_FRAC)[:, :, None, None]
