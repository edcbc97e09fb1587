"""Count the activation bytes a net keeps from its forward pass for its backward pass.

Honest count of what the golden backward reads, per sample:

* a ``Conv`` / ``FC`` input: int16, 2 bytes per element (its WU reads it);
* a ``ReLU`` mask: 1 bit per element;
* a ``MaxPool`` argmax code: 2 bits per output element;
* a chain of consecutive ``RevBlock`` s: only the chain's final output, int16 (every block
  input and every F/G value inside is recomputed from it).

``stored_activation_bytes(plan, batch)`` derives the count from the shapes;
``tape_bytes(tape, batch)`` measures it on a real tape of ``FixedNet.forward`` (a tape entry
is ``(array, bits per element)``), and the tests hold the two equal.
"""

import numpy as np

from edgetrain.firmware.nets import FC, Conv, MaxPool, ReLU, RevBlock

__all__ = ["stored_activation_bits", "stored_activation_bytes", "tape_bytes"]


def stored_activation_bits(plan):
    """Return ``[(layer index, layer type, bits per sample)]`` for every layer that stores."""
    rows = []
    for lp in plan.layers:
        layer = lp.layer
        if isinstance(layer, (Conv, FC)):
            bits = 16 * int(np.prod(lp.in_shape))
        elif isinstance(layer, ReLU):
            bits = int(np.prod(lp.in_shape))
        elif isinstance(layer, MaxPool):
            bits = 2 * int(np.prod(lp.out_shape))
        elif isinstance(layer, RevBlock) and lp.ends_rev_chain:
            bits = 16 * int(np.prod(lp.out_shape))
        else:
            continue
        rows.append((lp.index, type(layer).__name__, bits))
    return rows


def stored_activation_bytes(plan, batch):
    """Return ``{"per_sample", "batch", "batch_total", "per_layer"}`` in bytes."""
    rows = stored_activation_bits(plan)
    per_sample = sum(b for _, _, b in rows) / 8
    return {"per_sample": per_sample, "batch": batch, "batch_total": per_sample * batch,
            "per_layer": [{"layer": i, "type": t, "bytes_per_sample": b / 8}
                          for i, t, b in rows]}


def tape_bytes(tape, batch):
    """Return the bytes per sample held by a forward tape of ``batch`` samples."""
    bits = sum(arr.size * nbits for keep in tape for arr, nbits in keep.values())
    return bits / 8 / batch
