"""The numerics contract of edgetrain: 16-bit dynamic fixed point.

Every other part of the project (golden layers, conv engine, update unit, planner) computes
exactly what this module says. The hardware is compared with it bit for bit.

Formats
    A tensor is an array of signed integers ``q`` and a power-of-two scale given by its number
    of fractional bits ``frac``: the real value is ``q * 2**-frac``. Compute tensors
    (activations, gradients, the compute copy of weights) are int16. Master weights and their
    momentum buffers are int32. ``frac`` is per tensor and may be any integer (negative too).

Products and accumulation
    A product of two int16 values is exact (at most 2**30 in magnitude) and carries
    ``frac_a + frac_b`` fractional bits. Sums of products are kept exactly in an accumulator
    whose width (see ``accumulator_bits``) makes overflow impossible for the largest reduction
    the configuration allows.

Requantization (``requantize``)
    ``shift = frac_acc - frac_out``. A positive shift is an arithmetic right shift with
    rounding; zero or a negative shift is an exact left shift. The result is then saturated to
    ``bits`` signed bits; the number of saturated elements is returned.

    * ``nearest``: round half to even.
    * ``stochastic``: add ``r``, the top ``shift`` bits of a 32-bit random word (for shifts
      above 32 the word is shifted left instead), then shift right (floor). The word for an
      element is ``rng_bits(rng_key(tensor_id, step), index)`` where ``index`` is the
      element's position in the *whole logical tensor* (row-major over its shape). The bits
      therefore depend neither on tiling nor on evaluation order, and a recompute (e.g. a
      reversible block's backward pass) reproduces them exactly.

The counter-based generator (``mix32``)
    ``mix32`` is Robert Jenkins' 32-bit integer hash: six steps, each an add or xor of the
    word with a constant and a shifted copy of itself, all modulo 2**32. It has no multiplier,
    so hardware evaluates it per lane with adders, xors and wiring (pipelined one step per
    stage if needed)::

        x = x + 0x7ED55D16 + (x << 12)
        x = x ^ 0xC761C23C ^ (x >> 19)
        x = x + 0x165667B1 + (x << 5)
        x = (x + 0xD3A2646C) ^ (x << 9)
        x = x + 0xFD7046C5 + (x << 3)
        x = x ^ 0xB55A4F09 ^ (x >> 16)

    ``rng_key(tensor_id, step) = mix32(((tensor_id & 0xFF) << 24) | (step & 0xFFFFFF))`` is
    computed once per tensor and step by the host and handed to the hardware;
    ``rng_bits(key, index) = mix32(key ^ index)`` is what each lane computes.

Tensor identities
    ``tensor_id(layer, kind)`` numbers the tensors of a network: 8 ids per layer, in the order
    of ``TENSOR_KINDS``, so at most 32 layers. ``mix32``, ``rng_key`` and ``tensor_id`` live in
    ``firmware/keys.py``, so the compiler hands the hardware keys computed by this very code.

Wrapping adds
    Reversible blocks add with ``wrap_add`` (two's-complement wrap-around), which is exactly
    invertible by ``wrap_sub``.

SGD with momentum (``sgd_momentum``)
    Master weights ``w`` and velocities ``v`` are int32 with the master's ``frac``. Given the
    batch-summed weight-gradient accumulator ``g_acc``::

        g = requantize(g_acc, g_shift, bits=32)                          # into w's format
        v = sat32(requantize(mu_q * v, MU_FRAC, bits=32) + g)
        w = sat32(w - requantize(lr_q * v, lr_shift, bits=32))

    with ``mu_q`` an unsigned 16-bit momentum (``mu = mu_q / 2**16``) and ``lr_q`` an unsigned
    16-bit learning rate (``lr = lr_q / 2**lr_shift``, with 1/batch folded in). Each
    requantization uses its own tensor id (``weight_grad``, ``velocity``, ``master``).
"""

from dataclasses import dataclass

import numpy as np

from edgetrain.firmware.keys import TENSOR_KINDS, mix32, rng_key, tensor_id
from edgetrain.hw.config import required_accumulator_bits as accumulator_bits

__all__ = [
    "ROUNDING_MODES", "TENSOR_KINDS", "MU_FRAC", "DATA_BITS", "MASTER_BITS",
    "mix32", "rng_key", "rng_bits", "tensor_id",
    "accumulator_bits", "requantize", "saturate", "wrap_add", "wrap_sub",
    "bitlen", "frac_for_amax", "frac_for_float", "quantize_float", "dequantize",
    "sgd_momentum", "UpdateResult",
]

ROUNDING_MODES = ("nearest", "stochastic")
MU_FRAC = 16
DATA_BITS = 16
MASTER_BITS = 32
_M32 = np.uint32(0xFFFFFFFF)


def rng_bits(key, index):
    """Return the 32-bit random words of the elements at ``index`` (an integer array)."""
    index = np.asarray(index, dtype=np.int64).astype(np.uint32)
    return mix32(np.uint32(key) ^ index)


def saturate(q, bits):
    """Clip ``q`` to ``bits`` signed bits; return (clipped int64 array, number clipped)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    q = np.asarray(q, dtype=np.int64)
    count = int(np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi), count


def _storage_dtype(bits):
    return np.int16 if bits <= 16 else np.int32 if bits <= 32 else np.int64


def requantize(acc, shift, *, bits=DATA_BITS, rounding="nearest", key=None, index=None):
    """Requantize the exact accumulator ``acc`` by ``shift``; return (values, saturations).

    ``key`` (from ``rng_key``) and ``index`` (the elements' positions in the logical tensor;
    default ``arange(acc.size)`` in ``acc``'s shape) are required for stochastic rounding.
    """
    acc = np.asarray(acc, dtype=np.int64)
    shift = int(shift)
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
    if acc.size and int(np.max(np.abs(acc))) >= 1 << 61:
        raise ValueError("accumulator magnitude must stay below 2**61")
    if shift <= 0:
        return _left_shift_saturate(acc, -shift, bits)
    if rounding == "nearest":
        # Every |acc| < 2**61 rounds to 0 for any shift >= 62: capping is exact.
        s = np.int64(min(shift, 62))
        q = acc >> s
        rem = acc - (q << s)
        half = np.int64(1) << (s - 1)
        q = q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    else:
        if key is None:
            raise ValueError("stochastic rounding needs an rng key")
        if index is None:
            index = np.arange(acc.size, dtype=np.int64).reshape(acc.shape)
        r = rng_bits(key, index).astype(np.int64)
        if shift <= 32:
            q = (acc + (r >> np.int64(32 - shift))) >> np.int64(shift)
        else:
            # floor((acc + r * 2**t) / 2**(32+t)) == (floor(acc / 2**t) + r) >> 32, exact
            # for every t and free of int64 overflow; t >= 63 equals t = 63.
            q = ((acc >> np.int64(min(shift - 32, 63))) + r) >> np.int64(32)
    q, count = saturate(q, bits)
    return q.astype(_storage_dtype(bits)), count


def _left_shift_saturate(acc, s, bits):
    """Return ``saturate(acc * 2**s, bits)`` exactly for any ``s >= 0``, without overflow."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    s = min(s, 63)
    over = acc > (hi >> s)
    under = acc < -((-lo) >> s)
    q = np.where(over | under, 0, acc) << np.int64(s)
    q = np.where(over, hi, np.where(under, lo, q))
    return q.astype(_storage_dtype(bits)), int(np.count_nonzero(over | under))


def wrap_add(a, b, bits=DATA_BITS):
    """Add with two's-complement wrap-around at ``bits`` bits."""
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    half = 1 << (bits - 1)
    return (((s + half) & ((1 << bits) - 1)) - half).astype(_storage_dtype(bits))


def wrap_sub(a, b, bits=DATA_BITS):
    """Subtract with two's-complement wrap-around at ``bits`` bits (inverse of ``wrap_add``)."""
    return wrap_add(a, -np.asarray(b, dtype=np.int64), bits)


def bitlen(v):
    """Return the number of bits of the non-negative integer ``v`` (0 for 0)."""
    return int(v).bit_length()


def frac_for_amax(amax, frac, *, bits=DATA_BITS, headroom=1):
    """Return the ``frac`` that fits magnitude ``amax`` (given at ``frac``) with headroom.

    The result is the largest ``f`` with ``amax * 2**(f - frac) < 2**(bits - 1 - headroom)``;
    for ``amax == 0`` it is ``frac`` unchanged. This is the delayed-scaling rule: the
    hardware reports ``amax`` of an accumulator and the host picks the next shift.
    """
    if amax == 0:
        return frac
    return frac + (bits - 1 - headroom) - bitlen(amax)


def frac_for_float(x, *, bits=DATA_BITS, headroom=1):
    """Return the largest ``frac`` for which ``max|x| * 2**frac < 2**(bits - 1 - headroom)``."""
    amax = float(np.max(np.abs(x))) if np.size(x) else 0.0
    if amax == 0.0:
        return bits - 1 - headroom
    return int(np.floor(np.log2(2.0 ** (bits - 1 - headroom) / amax) - 1e-12))


def quantize_float(x, frac, *, bits=DATA_BITS):
    """Round real values to ``bits``-bit integers at ``frac`` (half to even, saturating)."""
    q, _ = saturate(np.rint(np.asarray(x, dtype=np.float64) * 2.0 ** frac), bits)
    return q.astype(_storage_dtype(bits))


def dequantize(q, frac):
    """Return the real values of integers ``q`` at ``frac`` as float64."""
    return np.asarray(q, dtype=np.float64) * 2.0 ** -frac


@dataclass(frozen=True)
class UpdateResult:
    """New master weights and velocities of one SGD step, with saturation counts."""
    master: np.ndarray
    velocity: np.ndarray
    saturations: int


def sgd_momentum(master, velocity, g_acc, *, g_shift, mu_q, lr_q, lr_shift,
                 rounding="nearest", keys=(None, None, None), index=None):
    """Apply one SGD-with-momentum step exactly as the update unit does.

    ``keys`` are the rng keys of (weight_grad, velocity, master) for stochastic rounding.
    """
    if not 0 <= mu_q < 1 << 16 or not 0 <= lr_q < 1 << 16:
        raise ValueError(f"mu_q and lr_q must be unsigned 16-bit, not {mu_q!r}, {lr_q!r}")
    k_g, k_v, k_w = keys
    g, s0 = requantize(g_acc, g_shift, bits=MASTER_BITS, rounding=rounding, key=k_g,
                       index=index)
    mv, s1 = requantize(np.int64(mu_q) * np.asarray(velocity, dtype=np.int64), MU_FRAC,
                        bits=MASTER_BITS, rounding=rounding, key=k_v, index=index)
    v, s2 = saturate(mv.astype(np.int64) + g, MASTER_BITS)
    step, s3 = requantize(np.int64(lr_q) * v, lr_shift, bits=MASTER_BITS, rounding=rounding,
                          key=k_w, index=index)
    w, s4 = saturate(np.asarray(master, dtype=np.int64) - step, MASTER_BITS)
    return UpdateResult(w.astype(np.int32), v.astype(np.int32), s0 + s1 + s2 + s3 + s4)
