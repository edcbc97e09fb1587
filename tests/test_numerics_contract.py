"""The numerics contract itself: the hash and requantize against Python-integer definitions."""

import random

import numpy as np
import pytest

from edgetrain.sim.golden import numerics


def test_mix32_is_a_bijection_on_a_sample():
    x = np.arange(1 << 16, dtype=np.uint32)
    assert len(np.unique(numerics.mix32(x))) == 1 << 16


def _requantize_by_definition(acc, shift, bits, rounding, key):
    """The docstring's definition, in unbounded Python integers, element by element."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out, sat = [], 0
    for i, a in enumerate(int(v) for v in acc):
        if shift <= 0:
            q = a << -shift
        elif rounding == "nearest":
            q, rem = a >> shift, a - ((a >> shift) << shift)
            q += rem > 1 << (shift - 1) or (rem == 1 << (shift - 1) and q & 1)
        else:
            w = int(numerics.rng_bits(key, np.array([i]))[0])
            q = (a + (w >> (32 - shift) if shift <= 32 else w << (shift - 32))) >> shift
        sat += not lo <= q <= hi
        out.append(min(max(q, lo), hi))
    return out, sat


@pytest.mark.parametrize("seed", range(4))
def test_requantize_is_exact_over_the_whole_shift_range(seed):
    pyrng, rng = random.Random(seed), np.random.default_rng(seed)
    key = numerics.rng_key(3, seed)
    for _ in range(150):
        bits = pyrng.choice([16, 32])
        shift = pyrng.randint(-70, 90)
        rounding = pyrng.choice(numerics.ROUNDING_MODES)
        mag = pyrng.randint(0, 60)
        acc = rng.integers(-(1 << mag), (1 << mag) + 1, size=40)
        acc[:4] = [0, -1, 1, 1 << mag]
        q, sat = numerics.requantize(acc, shift, bits=bits, rounding=rounding, key=key)
        want, want_sat = _requantize_by_definition(acc, shift, bits, rounding, key)
        assert [int(v) for v in q] == want, (bits, shift, rounding, mag)
        assert sat == want_sat


def test_the_reference_comparison_can_fail():
    acc = np.array([5, -7, 12])
    q, _ = numerics.requantize(acc, 1)
    wrong, _ = _requantize_by_definition(acc, 2, 16, "nearest", 0)
    assert [int(v) for v in q] != wrong
