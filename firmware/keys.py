"""The stochastic-rounding keys of a training step's tensors: one rule for host and golden model.

The numerics contract (``sim/golden/numerics.py``) defines them; this module is where the
rule lives, so the compiler, which hands the keys to the hardware, and the golden model,
which is the specification, compute them with the same code:

``tensor_id(slot, kind)``  8 ids per conv slot, in the order of ``TENSOR_KINDS`` (at most
                           32 slots).
``rng_key(tid, step)``     ``mix32(((tid & 0xFF) << 24) | (step & 0xFFFFFF))``, once per
                           tensor and step.
``mix32(x)``               Robert Jenkins' six-step 32-bit integer hash, of a word or an
                           array of words (each lane's ``rng_bits`` is ``mix32(key ^ index)``).
"""

import numpy as np

from edgetrain.errors import ConfigError

__all__ = ["TENSOR_KINDS", "MAX_SLOTS", "mix32", "rng_key", "tensor_id"]

TENSOR_KINDS = ("activation", "input_grad", "weight_grad", "velocity", "master", "weight",
                "aux0", "aux1")
#: Conv slots the 8-bit tensor ids number.
MAX_SLOTS = 32


def mix32(x):
    """Hash 32-bit words (scalar or array) with Jenkins' six-step integer hash."""
    scalar = np.isscalar(x)
    x = np.asarray(x).astype(np.uint32)
    with np.errstate(over="ignore"):
        x = x + np.uint32(0x7ED55D16) + (x << np.uint32(12))
        x = x ^ np.uint32(0xC761C23C) ^ (x >> np.uint32(19))
        x = x + np.uint32(0x165667B1) + (x << np.uint32(5))
        x = (x + np.uint32(0xD3A2646C)) ^ (x << np.uint32(9))
        x = x + np.uint32(0xFD7046C5) + (x << np.uint32(3))
        x = x ^ np.uint32(0xB55A4F09) ^ (x >> np.uint32(16))
    return int(x) if scalar else x


def rng_key(tid, step):
    """Return the 32-bit key of tensor ``tid`` at training ``step``."""
    return mix32(((int(tid) & 0xFF) << 24) | (int(step) & 0xFFFFFF))


def tensor_id(slot, kind):
    """Return the 8-bit id of tensor ``kind`` (one of ``TENSOR_KINDS``) of conv ``slot``."""
    if not 0 <= slot < MAX_SLOTS:
        raise ConfigError(f"conv slot must be in 0..{MAX_SLOTS - 1}, not {slot!r}")
    if kind not in TENSOR_KINDS:
        raise ConfigError(f"tensor kind must be one of {', '.join(TENSOR_KINDS)}, not "
                          f"{kind!r}")
    return 8 * slot + TENSOR_KINDS.index(kind)
