"""How a declarative ``Net`` maps onto the golden model: conv slots and format keys.

Conv slots
    Every convolution of the net gets a *slot*, numbered in forward order: a ``Conv`` or
    ``FC`` takes one, a ``RevBlock`` two (F, then G); ``ReLU`` and ``MaxPool`` take none.
    The slot is the ``layer`` of ``numerics.tensor_id``, so it picks the rng keys of every
    tensor the convolution produces (activation, input_grad, weight_grad, velocity, master,
    weight) and names its weights. At most 32 slots.
Format keys (see ``formats``)
    ``"input"``: the quantized images (ceiling ``INPUT_FRAC``). ``("act", s)``: the output of
    conv slot ``s``; ReLU, max-pool and reversible blocks keep their input's key, so a chain
    of reversible blocks shares the key of whatever produced its input. ``("grad", s)``: the
    input gradient produced by the BP of slot ``s``; ``("grad", "loss")``: the loss gradient
    (ceiling ``LOSS_GRAD_FRAC``); gradients through ReLU, max-pool and reversible blocks keep
    their key. ``("w", s)``: the int16 compute copy of slot ``s``'s weights.
Input gradients
    A layer computes BP only if a layer with weights precedes it (the first conv's input
    gradient is never needed).
"""

from dataclasses import dataclass

import numpy as np

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import FC, Conv, MaxPool, ReLU, RevBlock

__all__ = ["LayerPlan", "NetPlan", "plan_net", "init_weights", "INPUT_FRAC"]

INPUT_FRAC = 14
MAX_SLOTS = 32


@dataclass(frozen=True)
class LayerPlan:
    """One layer with its shapes, conv slots, weight shapes and format keys."""
    index: int
    layer: object
    in_shape: tuple
    out_shape: tuple
    slots: tuple
    weight_shapes: tuple
    act_in: object
    act_out: object
    grad_in: object
    grad_out: object
    needs_input_grad: bool
    ends_rev_chain: bool = False


@dataclass(frozen=True)
class NetPlan:
    """The layers of a net as the golden model executes them."""
    net: object
    layers: tuple

    @property
    def slot_shapes(self):
        """Return ``{slot: weight shape}`` in slot order."""
        return {s: shp for lp in self.layers for s, shp in zip(lp.slots, lp.weight_shapes)}

    def format_keys(self):
        """Return every format key the net uses."""
        keys = {"input", ("grad", "loss")}
        for lp in self.layers:
            keys |= {lp.act_in, lp.act_out, lp.grad_out}
            if lp.needs_input_grad:
                keys.add(lp.grad_in)
            keys |= {("w", s) for s in lp.slots}
        return keys


def _weight_shapes(layer, in_shape):
    c, h, w = in_shape
    if isinstance(layer, Conv):
        return ((layer.out_channels, c, layer.kernel, layer.kernel),)
    if isinstance(layer, FC):
        return ((layer.out_features, c, h, w),)
    if isinstance(layer, RevBlock):
        return ((c // 2, c // 2, layer.kernel, layer.kernel),) * 2
    if isinstance(layer, (ReLU, MaxPool)):
        return ()
    raise ConfigError(f"layer type {type(layer).__name__!r} is not supported by the golden "
                      f"model; use Conv, ReLU, MaxPool, FC or RevBlock")


def plan_net(net):
    """Return the ``NetPlan`` of ``net`` (validated: shapes chain, at most 32 conv slots)."""
    shapes = net.shapes()
    slot, act, seen_weights, rows = 0, "input", False, []
    for ls in shapes:
        wshapes = _weight_shapes(ls.layer, ls.in_shape)
        slots = tuple(range(slot, slot + len(wshapes)))
        slot += len(wshapes)
        act_out = ("act", slots[0]) if isinstance(ls.layer, (Conv, FC)) else act
        rows.append(dict(index=ls.index, layer=ls.layer, in_shape=ls.in_shape,
                         out_shape=ls.out_shape, slots=slots, weight_shapes=wshapes,
                         act_in=act, act_out=act_out, needs_input_grad=seen_weights))
        act, seen_weights = act_out, seen_weights or bool(wshapes)
    if slot > MAX_SLOTS:
        raise ConfigError(f"net {net.name!r} has {slot} convolutions; the golden model's "
                          f"tensor ids allow at most {MAX_SLOTS}")
    grad = ("grad", "loss")
    for i in reversed(range(len(rows))):
        r = rows[i]
        r["grad_out"] = grad
        if isinstance(r["layer"], (Conv, FC)):
            grad = ("grad", r["slots"][0])
        r["grad_in"] = grad
        nxt = rows[i + 1]["layer"] if i + 1 < len(rows) else None
        r["ends_rev_chain"] = isinstance(r["layer"], RevBlock) and not isinstance(nxt, RevBlock)
    return NetPlan(net, tuple(LayerPlan(**r) for r in rows))


def init_weights(plan, seed):
    """Return ``{slot: float64 weights}``: He-normal, drawn from ``seed`` in slot order."""
    rng = np.random.default_rng(seed)
    out = {}
    for s, shape in plan.slot_shapes.items():
        fan_in = int(np.prod(shape[1:]))
        out[s] = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    return out

