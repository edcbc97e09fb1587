"""The reversible block, fixed point and float twin: additive coupling over channel halves.

Forward (``x = [x1, x2]`` split on channels, ``F``/``G`` = ReLU(conv KxK, pad K//2))::

    y1 = x1 + F(x2)        y2 = x2 + G(y1)

Fixed-point rules (the hardware's)
    * ``x1, x2, y1, y2`` share one activation format ``frac_a`` (the block's *trunk* format),
      so the adds are plain two's-complement ``wrap_add`` on int16; wraps are counted.
    * ``F(x2)`` is ``requantize(conv_fp(x2, wF), shift=frac_wF)``: the accumulator carries
      ``frac_a + frac_wF`` and is requantized straight into ``frac_a``, with kind
      ``activation`` of F's conv slot and the usual whole-tensor index over ``[N, C/2, H, W]``;
      then ReLU. Same for G.
    * Backward does not read the block's input: it recomputes ``x2 = y2 - G(y1)`` and
      ``x1 = y1 - F(x2)`` with the *same* keys and indices as the forward, so the recomputed
      bits are the forward's bits and the inverse is exact even where an add wrapped.
    * Gradients share one format ``frac_g`` (in and out of the block); each branch's BP output
      is ``requantize(conv_bp(...), shift=frac_w)`` (kind ``input_grad`` of the branch's slot)
      and is added to the passing gradient with saturation (counted)::

          dy1' = dy1 + G_bp(relu_mask_G * dy2)     dx2 = dy2 + F_bp(relu_mask_F * dy1')
          dx1  = dy1'

    * Weight gradients are exact batch-summed accumulators: ``G: conv_wu(mask_G*dy2, y1)`` and
      ``F: conv_wu(mask_F*dy1', x2)``, both at ``frac_g + frac_a``.
"""

from dataclasses import dataclass, field

import numpy as np

from . import float_layers as flt
from .conv import conv_bp, conv_fp, conv_wu
from .layers import amax, relu_backward, relu_forward
from .numerics import wrap_sub

__all__ = ["RevFormats", "RevObservations", "rev_forward", "rev_inverse", "rev_backward",
           "rev_forward_float", "rev_backward_float"]


@dataclass(frozen=True)
class RevFormats:
    """Conv slots, kernel and formats of one fixed-point reversible block."""
    slot_f: int
    slot_g: int
    kernel: int
    frac_a: int
    frac_g: int
    frac_wf: int
    frac_wg: int


@dataclass
class RevObservations:
    """What the block reports for delayed scaling: ``(amax, frac_at)`` pairs per format."""
    trunk: list = field(default_factory=list)
    grad: list = field(default_factory=list)


def _split(t):
    h = t.shape[1] // 2
    return t[:, :h], t[:, h:]


def _branch(x, w, slot, frac_w, fmt, num):
    acc = conv_fp(x, w, 1, fmt.kernel // 2)
    out, mask = relu_forward(num.requantize(acc, frac_w, slot=slot, kind="activation"))
    return out, mask, amax(acc)


def rev_forward(x, wf, wg, *, fmt, num, obs=None):
    """Return the block output ``y`` (int16, trunk format) of input ``x``."""
    x1, x2 = _split(x)
    f, _, af = _branch(x2, wf, fmt.slot_f, fmt.frac_wf, fmt, num)
    y1, s1 = num.add_wrapping(x1, f)
    g, _, ag = _branch(y1, wg, fmt.slot_g, fmt.frac_wg, fmt, num)
    y2, s2 = num.add_wrapping(x2, g)
    if obs is not None:
        obs.trunk += [(af, fmt.frac_a + fmt.frac_wf), (ag, fmt.frac_a + fmt.frac_wg),
                      (s1, fmt.frac_a), (s2, fmt.frac_a)]
    return np.concatenate([y1, y2], axis=1)


def rev_inverse(y, wf, wg, *, fmt, num):
    """Return the input ``x`` that ``rev_forward`` maps to ``y`` (bit-exact)."""
    y1, y2 = _split(y)
    g, _, _ = _branch(y1, wg, fmt.slot_g, fmt.frac_wg, fmt, num)
    x2 = wrap_sub(y2, g)
    f, _, _ = _branch(x2, wf, fmt.slot_f, fmt.frac_wf, fmt, num)
    return np.concatenate([wrap_sub(y1, f), x2], axis=1)


def _grad_branch(dz, w, slot, frac_w, fmt, num, obs, shape):
    acc = conv_bp(dz, w, shape, 1, fmt.kernel // 2)
    if obs is not None:
        obs.grad.append((amax(acc), fmt.frac_g + frac_w))
    return num.requantize(acc, frac_w, slot=slot, kind="input_grad")


def rev_backward(y, dy, wf, wg, *, fmt, num, obs=None):
    """Return ``(dx, x, {slot: weight-gradient accumulator})`` from the output and its gradient.

    ``x`` is the recomputed block input (the next block down uses it as its ``y``).
    """
    y1, y2 = _split(y)
    dy1, dy2 = _split(dy)
    shape, k, pad = y.shape[2:], fmt.kernel, fmt.kernel // 2
    g, mask_g, _ = _branch(y1, wg, fmt.slot_g, fmt.frac_wg, fmt, num)
    x2 = wrap_sub(y2, g)
    dz_g = relu_backward(dy2, mask_g)
    dy1, s1 = num.add_saturating(dy1, _grad_branch(dz_g, wg, fmt.slot_g, fmt.frac_wg, fmt,
                                                   num, obs, shape))
    f, mask_f, _ = _branch(x2, wf, fmt.slot_f, fmt.frac_wf, fmt, num)
    x1 = wrap_sub(y1, f)
    dz_f = relu_backward(dy1, mask_f)
    dx2, s2 = num.add_saturating(dy2, _grad_branch(dz_f, wf, fmt.slot_f, fmt.frac_wf, fmt,
                                                   num, obs, shape))
    if obs is not None:
        obs.grad += [(s1, fmt.frac_g), (s2, fmt.frac_g)]
    grads = {fmt.slot_g: conv_wu(dz_g, y1, k, 1, pad), fmt.slot_f: conv_wu(dz_f, x2, k, 1, pad)}
    return (np.concatenate([dy1, dx2], axis=1), np.concatenate([x1, x2], axis=1), grads)


def _branch_float(x, w, kernel):
    return relu_forward(flt.conv_forward(x, w, stride=1, pad=kernel // 2))


def rev_forward_float(x, wf, wg, *, kernel):
    """Return the float block output."""
    x1, x2 = _split(x)
    y1 = x1 + _branch_float(x2, wf, kernel)[0]
    return np.concatenate([y1, x2 + _branch_float(y1, wg, kernel)[0]], axis=1)


def rev_backward_float(y, dy, wf, wg, *, kernel):
    """Return ``(dx, recomputed x, (dwF, dwG))`` of the float block."""
    y1, y2 = _split(y)
    dy1, dy2 = _split(dy)
    shape, pad = y.shape[2:], kernel // 2
    g, mask_g = _branch_float(y1, wg, kernel)
    x2 = y2 - g
    dz_g = relu_backward(dy2, mask_g)
    dy1 = dy1 + flt.conv_input_grad(dz_g, wg, shape, stride=1, pad=pad)
    f, mask_f = _branch_float(x2, wf, kernel)
    x1 = y1 - f
    dz_f = relu_backward(dy1, mask_f)
    dx2 = dy2 + flt.conv_input_grad(dz_f, wf, shape, stride=1, pad=pad)
    dw = (flt.conv_weight_grad(dz_f, x2, kernel=kernel, stride=1, pad=pad),
          flt.conv_weight_grad(dz_g, y1, kernel=kernel, stride=1, pad=pad))
    return np.concatenate([dy1, dx2], axis=1), np.concatenate([x1, x2], axis=1), dw
