"""The float twin of ``FixedNet``: the same net, layers and update rule, nothing quantized.

Weights start from the same float64 draw (``golden_plan.init_weights``) cast to ``dtype``
(float32 for ``--float`` training). The update is the real-valued form of
``numerics.sgd_momentum`` with the batch-summed gradient ``g``::

    v = momentum * v + g          w = w - (lr / batch) * v

Reversible blocks recompute their inputs in the backward pass, as in the fixed-point net
(in float the recomputation is not exact; that is the point of the integer version).
"""

import numpy as np

from edgetrain.firmware.nets import FC, Conv, MaxPool, ReLU, RevBlock
from . import float_layers as flt
from . import layers as gl
from .net import StepResult
from .rev import rev_backward_float, rev_forward_float

__all__ = ["FloatNet"]


class FloatNet:
    """A net's float weights and velocities; trains step by step like ``FixedNet``."""

    def __init__(self, plan, weights, *, lr, momentum, dtype=np.float32):
        self.plan, self.lr, self.momentum, self.dtype = plan, lr, momentum, dtype
        self.weights = {s: w.astype(dtype) for s, w in weights.items()}
        self.velocity = {s: np.zeros_like(w) for s, w in self.weights.items()}
        self.step = 0

    def forward(self, x, *, tape=None):
        """Return the logits ``[N, classes, 1, 1]`` of images ``x``; fill list ``tape``."""
        x = x.astype(self.dtype)
        for lp in self.plan.layers:
            layer, keep = lp.layer, {}
            if isinstance(layer, Conv):
                keep["input"] = x
                x = flt.conv_forward(x, self.weights[lp.slots[0]], stride=layer.stride,
                                     pad=layer.pad)
            elif isinstance(layer, FC):
                keep["input"] = x
                x = flt.fc_forward(x, self.weights[lp.slots[0]])
            elif isinstance(layer, ReLU):
                x, keep["mask"] = gl.relu_forward(x)
            elif isinstance(layer, MaxPool):
                x, keep["argmax"] = gl.maxpool_forward(x)
            elif isinstance(layer, RevBlock):
                x = rev_forward_float(x, *(self.weights[s] for s in lp.slots),
                                      kernel=layer.kernel)
                if lp.ends_rev_chain:
                    keep["output"] = x
            if tape is not None:
                tape.append(keep)
        return x

    def backward(self, tape, dy):
        """Return ``{slot: batch-summed weight gradient}`` from the logits' gradient ``dy``."""
        grads, carry = {}, None
        for lp, keep in zip(reversed(self.plan.layers), reversed(tape)):
            layer = lp.layer
            if isinstance(layer, (Conv, FC)):
                s, x = lp.slots[0], keep["input"]
                if isinstance(layer, Conv):
                    grads[s] = flt.conv_weight_grad(dy, x, kernel=layer.kernel,
                                                    stride=layer.stride, pad=layer.pad)
                    dx = flt.conv_input_grad(dy, self.weights[s], lp.in_shape[1:],
                                             stride=layer.stride, pad=layer.pad)
                else:
                    grads[s] = flt.fc_weight_grad(dy, x)
                    dx = flt.fc_input_grad(dy, self.weights[s], lp.in_shape)
                if not lp.needs_input_grad:
                    break
                dy = dx
            elif isinstance(layer, ReLU):
                dy = gl.relu_backward(dy, keep["mask"])
            elif isinstance(layer, MaxPool):
                dy = gl.maxpool_backward(dy, keep["argmax"])
            elif isinstance(layer, RevBlock):
                y = keep["output"] if lp.ends_rev_chain else carry
                dy, carry, dw = rev_backward_float(y, dy, *(self.weights[s] for s in lp.slots),
                                                   kernel=layer.kernel)
                grads.update(zip(lp.slots, dw))
        return grads

    def train_step(self, x, labels):
        """Run one training step on images ``x``; return a ``StepResult``."""
        tape = []
        logits = self.forward(x, tape=tape)
        loss, grad, correct = gl.softmax_xent(logits, None, labels)
        grads = self.backward(tape, grad.astype(self.dtype)[:, :, None, None])
        scale = self.dtype(self.lr / len(labels))
        for s, g in grads.items():
            self.velocity[s] = self.dtype(self.momentum) * self.velocity[s] + g
            self.weights[s] = self.weights[s] - scale * self.velocity[s]
        self.step += 1
        return StepResult(loss, correct)

    def evaluate(self, x, labels):
        """Return (mean loss, number correct) of the forward pass."""
        loss, _, correct = gl.softmax_xent(self.forward(x), None, labels)
        return loss, correct
