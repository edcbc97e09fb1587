"""The fixed-point golden network: one training step as the accelerator computes it.

``FixedNet`` runs a ``NetPlan`` on int16 tensors with the layer rules of ``golden_layers``
and ``golden_rev``, the formats of ``formats`` and the update of ``numerics.sgd_momentum``.

One training step ``t``
    1. quantize the images at the ``input`` format (round half to even);
    2. forward, keeping the *tape* (what the backward reads: conv/FC inputs, ReLU masks,
       max-pool argmax codes, the output of each chain of reversible blocks);
    3. loss on the host (``golden_layers.softmax_xent``), gradient quantized at the
       ``("grad", "loss")`` format;
    4. backward: per conv slot the exact batch-summed weight-gradient accumulator;
    5. update per slot: ``sgd_momentum`` on the int32 master weights and velocities (frac
       ``frac_master[slot]``, fixed at init), ``g_shift = frac_dy + frac_x - frac_master``,
       ``mu_q = round(momentum * 2**16)``, ``lr / batch`` as ``lr_q / 2**lr_shift`` with
       ``lr_q`` in [2**15, 2**16); keys of kinds weight_grad, velocity, master at step ``t``;
    6. every producer has observed its accumulator's amax (and each master its amax at
       ``frac_master``): ``Formats.advance()`` sets the formats of step ``t + 1``;
    7. new int16 compute copies ``requantize(master, frac_master - frac_w)`` with kind
       ``weight`` at step ``t`` (the first copy, before step 0, rounds to nearest even).
    All requantizations use the chosen rounding; evaluation uses round-half-even.
"""

from dataclasses import dataclass, field

import numpy as np

from edgetrain.firmware.nets import FC, Conv, MaxPool, ReLU, RevBlock
from . import layers as gl
from .formats import GRAD_HEADROOM, Formats
from .numerics import (
    MASTER_BITS,
    frac_for_amax,
    frac_for_float,
    quantize_float,
    requantize,
    sgd_momentum)
from .plan import INPUT_FRAC
from .rev import RevFormats, RevObservations, rev_backward, rev_forward

__all__ = ["FixedNet", "StepResult", "lr_fixed", "MASTER_HEADROOM"]

MASTER_HEADROOM = 10
_PROVISIONAL = {"act": 10, "grad": 16}


@dataclass(frozen=True)
class StepResult:
    """Loss, number correct and the step's saturation (total, by tensor kind) and wraps."""
    loss: float
    correct: int
    saturations: int = 0
    wraps: int = 0
    saturations_by_kind: dict = field(default_factory=dict)


def lr_fixed(lr, batch):
    """Return ``(lr_q, lr_shift)`` with ``lr_q / 2**lr_shift ~= lr / batch``, ``lr_q`` 16-bit."""
    eff = lr / batch
    if not eff > 0:
        raise ValueError(f"learning rate must be positive, not {lr!r}")
    shift = 15 - int(np.floor(np.log2(eff)))
    q = int(round(eff * 2.0 ** shift))
    return (q >> 1, shift - 1) if q >= 1 << 16 else (q, shift)


class FixedNet:
    """A net's int32 master weights, int16 compute copies and formats; trains step by step."""

    def __init__(self, plan, weights, *, rounding, lr, momentum):
        self.plan, self.rounding, self.lr = plan, rounding, lr
        self.mu_q = int(round(momentum * (1 << 16)))
        self.step = 0
        self.frac_master = {s: frac_for_float(w, bits=MASTER_BITS, headroom=MASTER_HEADROOM)
                            for s, w in weights.items()}
        self.master = {s: quantize_float(w, self.frac_master[s], bits=MASTER_BITS)
                       for s, w in weights.items()}
        self.velocity = {s: np.zeros_like(m) for s, m in self.master.items()}
        initial = {k: _PROVISIONAL[k[0]] for k in plan.format_keys() if k[0] in _PROVISIONAL}
        initial.update({("w", s): frac_for_amax(gl.amax(m), self.frac_master[s])
                        for s, m in self.master.items()})
        initial.update({"input": INPUT_FRAC, ("grad", "loss"): gl.LOSS_GRAD_FRAC})
        self.formats = Formats(initial, ceilings={"input": INPUT_FRAC,
                                                  ("grad", "loss"): gl.LOSS_GRAD_FRAC},
                               headroom={k: GRAD_HEADROOM for k in initial if k[0] == "grad"})
        self.weights = self._compute_copies(gl.StepNumerics(rounding="nearest", step=0))

    def _compute_copies(self, num):
        out = {}
        for s, m in self.master.items():
            shift = self.frac_master[s] - self.formats[("w", s)]
            q, n = requantize(m, shift, rounding=num.rounding, key=num.key(s, "weight"))
            num.count_saturations("weight", n)
            out[s] = q
        return out

    def quantize_input(self, x):
        """Return the images as int16 at the ``input`` format."""
        return quantize_float(x, self.formats["input"])

    def _rev_formats(self, lp, layer):
        f = self.formats
        sf, sg = lp.slots
        return RevFormats(slot_f=sf, slot_g=sg, kernel=layer.kernel, frac_a=f[lp.act_in],
                          frac_g=f[lp.grad_out], frac_wf=f[("w", sf)], frac_wg=f[("w", sg)])

    def forward(self, x, num, *, observe=False, tape=None):
        """Return the int16 logits of int16 images ``x``; append the tape to list ``tape``."""
        f = self.formats
        for lp in self.plan.layers:
            layer, keep = lp.layer, {}
            if isinstance(layer, (Conv, FC)):
                s = lp.slots[0]
                frac_acc = f[lp.act_in] + f[("w", s)]
                shift = frac_acc - f[lp.act_out]
                keep["input"] = (x, 16)
                if isinstance(layer, Conv):
                    x, a = gl.conv_forward(x, self.weights[s], stride=layer.stride,
                                           pad=layer.pad, shift=shift, num=num, slot=s)
                else:
                    x, a = gl.fc_forward(x, self.weights[s], shift=shift, num=num, slot=s)
                if observe:
                    f.observe(lp.act_out, a, frac_acc)
            elif isinstance(layer, ReLU):
                x, mask = gl.relu_forward(x)
                keep["mask"] = (mask, 1)
            elif isinstance(layer, MaxPool):
                x, arg = gl.maxpool_forward(x)
                keep["argmax"] = (arg, 2)
            elif isinstance(layer, RevBlock):
                obs = RevObservations() if observe else None
                x = rev_forward(x, *(self.weights[s] for s in lp.slots),
                                fmt=self._rev_formats(lp, layer), num=num, obs=obs)
                for a, frac_at in (obs.trunk if observe else ()):
                    f.observe(lp.act_out, a, frac_at)
                if lp.ends_rev_chain:
                    keep["output"] = (x, 16)
            if tape is not None:
                tape.append(keep)
        return x

    def backward(self, tape, dy, num, *, observe=False):
        """Return ``{slot: (weight-gradient accumulator, its frac)}`` from the logits' ``dy``."""
        f, grads, carry = self.formats, {}, None
        for lp, keep in zip(reversed(self.plan.layers), reversed(tape)):
            layer = lp.layer
            if isinstance(layer, (Conv, FC)):
                dy = self._conv_backward(lp, keep["input"][0], dy, num, observe, grads)
                if dy is None:
                    break
            elif isinstance(layer, ReLU):
                dy = gl.relu_backward(dy, keep["mask"][0])
            elif isinstance(layer, MaxPool):
                dy = gl.maxpool_backward(dy, keep["argmax"][0])
            elif isinstance(layer, RevBlock):
                y = keep["output"][0] if lp.ends_rev_chain else carry
                obs = RevObservations() if observe else None
                dy, carry, acc = rev_backward(y, dy, *(self.weights[s] for s in lp.slots),
                                              fmt=self._rev_formats(lp, layer), num=num,
                                              obs=obs)
                for a, frac_at in (obs.grad if observe else ()):
                    f.observe(lp.grad_out, a, frac_at)
                frac = f[lp.grad_out] + f[lp.act_in]
                grads.update({s: (g, frac) for s, g in acc.items()})
        return grads

    def _conv_backward(self, lp, x, dy, num, observe, grads):
        f, layer, s = self.formats, lp.layer, lp.slots[0]
        w = self.weights[s]
        if isinstance(layer, Conv):
            g = gl.conv_weight_grad(dy, x, kernel=layer.kernel, stride=layer.stride,
                                    pad=layer.pad)
        else:
            g = gl.fc_weight_grad(dy, x)
        grads[s] = (g, f[lp.grad_out] + f[lp.act_in])
        if not lp.needs_input_grad:
            return None
        frac_acc = f[lp.grad_out] + f[("w", s)]
        shift = frac_acc - f[lp.grad_in]
        if isinstance(layer, Conv):
            dx, a = gl.conv_input_grad(dy, w, lp.in_shape[1:], stride=layer.stride,
                                       pad=layer.pad, shift=shift, num=num, slot=s)
        else:
            dx, a = gl.fc_input_grad(dy, w, lp.in_shape, shift=shift, num=num, slot=s)
        if observe:
            f.observe(lp.grad_in, a, frac_acc)
        return dx

    def update(self, grads, batch, num):
        """Apply SGD with momentum to every slot's master weights (``batch`` samples)."""
        lr_q, lr_shift = lr_fixed(self.lr, batch)
        for s, (g_acc, g_frac) in grads.items():
            fm = self.frac_master[s]
            r = sgd_momentum(self.master[s], self.velocity[s], g_acc, g_shift=g_frac - fm,
                             mu_q=self.mu_q, lr_q=lr_q, lr_shift=lr_shift,
                             rounding=self.rounding,
                             keys=tuple(num.key(s, k) for k in ("weight_grad", "velocity",
                                                                "master")))
            self.master[s], self.velocity[s] = r.master, r.velocity
            num.count_saturations("master", r.saturations)
            self.formats.observe(("w", s), gl.amax(r.master), fm)

    def _forward_backward(self, x, labels, num):
        tape = []
        logits = self.forward(self.quantize_input(x), num, observe=True, tape=tape)
        loss, grad, correct = gl.softmax_xent(logits, self.formats[self.plan.layers[-1].act_out],
                                              labels)
        dy = quantize_float(grad, self.formats[("grad", "loss")])[:, :, None, None]
        return loss, correct, self.backward(tape, dy, num, observe=True), tape

    def train_step(self, x, labels):
        """Run one training step on float images ``x``; return a ``StepResult``."""
        num = gl.StepNumerics(rounding=self.rounding, step=self.step)
        loss, correct, grads, _ = self._forward_backward(x, labels, num)
        self.update(grads, len(labels), num)
        self.formats.advance()
        self.weights = self._compute_copies(num)
        self.step += 1
        return StepResult(loss, correct, num.saturations, num.wraps,
                          dict(num.saturations_by_kind))

    def calibrate(self, x, labels, *, max_passes=None):
        """Set the step-0 formats by forward/backward passes on one batch; return the passes."""
        max_passes = max_passes or 2 * len(self.plan.layers) + 2
        for n in range(1, max_passes + 1):
            num = gl.StepNumerics(rounding=self.rounding, step=self.step)
            self._forward_backward(x, labels, num)
            if not self.formats.advance():
                return n
        return max_passes

    def evaluate(self, x, labels):
        """Return (mean loss, number correct) of the forward pass (round half to even)."""
        num = gl.StepNumerics(rounding="nearest", step=self.step)
        logits = self.forward(self.quantize_input(x), num)
        loss, _, correct = gl.softmax_xent(logits, self.formats[self.plan.layers[-1].act_out],
                                           labels)
        return loss, correct
