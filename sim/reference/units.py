"""Random beats for the arithmetic units and their expected results from ``numerics``.

The Amaranth-simulator tests and the cocotb testbenches of ``hw/engine/requant.py``, ``hw/engine/sgd.py``
and ``hw/engine/pool.py`` draw beats here and compare what the hardware returned with
``expected_*`` (computed by ``numerics.requantize`` / ``numerics.sgd_momentum`` /
``sim.pool``) through ``mismatches``, which lists every differing field of every beat.
No simulator imports: beats are plain dicts of ints and lists of ints.
"""

import numpy as np

from edgetrain.sim.golden import numerics
from edgetrain.sim.golden.pool import maxpool2x2, maxpool2x2_backward

__all__ = ["numerics_shift_range", "random_requant_beats", "expected_requant",
           "random_update_beats", "expected_update",
           "random_pool_tensor", "pool_window_beats", "expected_pool", "expected_pool_backward",
           "mismatches"]


def numerics_shift_range(in_bits):
    """Return (lo, hi): the shifts a unit accepts, every one exact in ``numerics.requantize``
    (``in_bits`` must stay below the contract's 61-bit accumulator bound)."""
    if in_bits > 61:
        raise ValueError(f"in_bits {in_bits} exceeds the 61-bit accumulator bound of numerics")
    return -128, 127


def _signed(rnd, bits):
    return rnd.randrange(-(1 << (bits - 1)), 1 << (bits - 1))


def _value_near(rnd, bits, exponent):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    pick = rnd.random()
    if pick < 0.05:
        return rnd.choice((lo, hi, 0, -1, 1))
    return max(lo, min(hi, rnd.randrange(-(1 << exponent), (1 << exponent) + 1)))


def _tie(rnd, value, shift, bits):
    """Return ``value`` with its low ``shift`` bits at (or just around) one half: the rounding
    ties, including those a right shift above 32 only sees through its sticky bit."""
    if not 0 < shift < bits - 1:
        return value
    below = max(shift - 32, 1)  # bits under the 32 just below the point (sticky only)
    offset = rnd.choice((0, 0, 1, -1, rnd.randrange(1 << below), 1 << (below - 1)))
    v = ((value >> shift) << shift) + (1 << (shift - 1)) + offset
    return v if -(1 << (bits - 1)) <= v < 1 << (bits - 1) else value


def _at_saturation(rnd, value, shift, bits, out_bits):
    """Return a value whose requantized result lands on (or next to) ``out_bits``' limits,
    rounding included, or ``value`` when that is out of ``bits``' range."""
    edge = rnd.choice((-(1 << (out_bits - 1)), 1 << (out_bits - 1))) + rnd.randint(-2, 1)
    if shift <= 0:
        v = edge << -shift
    else:
        v = (edge << shift) + rnd.choice((0, 1 << (shift - 1), (1 << shift) - 1,
                                          rnd.randrange(1 << shift)))
    return v if -(1 << (bits - 1)) <= v < 1 << (bits - 1) else value


def random_requant_beats(rnd, count, *, lanes, acc_bits, out_bits=16, shifts=None):
    """Return ``count`` beats with shifts (negative, small, above 32) around the saturation
    boundary, rounding ties, both roundings, ReLU on and off, random keys and indices."""
    lo, hi = shifts or numerics_shift_range(acc_bits)
    beats = []
    for _ in range(count):
        exponent = rnd.randrange(acc_bits)
        if rnd.random() < 0.5:
            shift = rnd.randint(lo, hi)
        else:  # just around where the result starts to saturate
            shift = max(lo, min(hi, exponent - out_bits + 1 + rnd.randint(-3, 3)))
        acc = [_value_near(rnd, acc_bits, exponent) for _ in range(lanes)]
        acc = [_tie(rnd, a, shift, acc_bits) if rnd.random() < 0.15 else a for a in acc]
        acc = [_at_saturation(rnd, a, shift, acc_bits, out_bits) if rnd.random() < 0.1 else a
               for a in acc]
        base = rnd.getrandbits(32)
        index = [(base + n) & 0xFFFFFFFF if rnd.random() < 0.5 else rnd.getrandbits(32)
                 for n in range(lanes)]
        beats.append({"acc": acc, "index": index, "shift": shift,
                      "stochastic": rnd.randrange(2), "key": rnd.getrandbits(32),
                      "relu": rnd.randrange(2)})
    return beats


def expected_requant(beat, *, out_bits=16):
    """Return {"data", "mask", "saturations"} of one requantizer beat per ``numerics``."""
    rounding = numerics.ROUNDING_MODES[beat["stochastic"]]
    q, count = numerics.requantize(np.array(beat["acc"], dtype=np.int64), beat["shift"],
                                   bits=out_bits, rounding=rounding, key=beat["key"],
                                   index=np.array(beat["index"], dtype=np.int64))
    q = [int(v) for v in q]
    positive = [int(v > 0) for v in q]
    if beat["relu"]:
        return {"data": [max(v, 0) for v in q], "mask": positive, "saturations": count}
    return {"data": q, "mask": [0] * len(q), "saturations": count}


def random_update_beats(rnd, count, *, lanes, acc_bits):
    """Return ``count`` SGD beats: gradients, masters and velocities from tiny to saturating,
    shifts over ``numerics``' exact range, random momentum, learning rate and keys."""
    lo, hi = numerics_shift_range(acc_bits)
    beats = []
    for _ in range(count):
        exponent = rnd.randrange(acc_bits)
        beats.append({
            "g_acc": [_value_near(rnd, acc_bits, exponent) for _ in range(lanes)],
            "master": [_value_near(rnd, 32, rnd.randrange(32)) for _ in range(lanes)],
            "velocity": [_value_near(rnd, 32, rnd.randrange(32)) for _ in range(lanes)],
            "index": [rnd.getrandbits(32) for _ in range(lanes)],
            "g_shift": rnd.randint(lo, hi) if rnd.random() < 0.3
            else max(lo, min(hi, exponent - 24 + rnd.randint(-8, 8))),
            "mu_q": rnd.choice((0, 0xFFFF, 0xE666, rnd.getrandbits(16))),
            "lr_q": rnd.choice((0, 0xFFFF, rnd.getrandbits(16))),
            "lr_shift": rnd.randint(0, hi) if rnd.random() < 0.3 else rnd.randint(12, 24),
            "stochastic": rnd.randrange(2),
            "key_g": rnd.getrandbits(32), "key_v": rnd.getrandbits(32),
            "key_w": rnd.getrandbits(32),
        })
    return beats


def expected_update(beat):
    """Return {"master", "velocity", "saturations"} of one update beat per ``numerics``."""
    res = numerics.sgd_momentum(
        np.array(beat["master"], dtype=np.int64), np.array(beat["velocity"], dtype=np.int64),
        np.array(beat["g_acc"], dtype=np.int64), g_shift=beat["g_shift"], mu_q=beat["mu_q"],
        lr_q=beat["lr_q"], lr_shift=beat["lr_shift"],
        rounding=numerics.ROUNDING_MODES[beat["stochastic"]],
        keys=(beat["key_g"], beat["key_v"], beat["key_w"]),
        index=np.array(beat["index"], dtype=np.int64))
    return {"master": [int(v) for v in res.master], "velocity": [int(v) for v in res.velocity],
            "saturations": res.saturations}


def random_pool_tensor(rnd, *, batch, channels, height, width):
    """Return an NCHW int16 tensor with many ties (values drawn from a small set at times)."""
    x = np.empty((batch, channels, height, width), dtype=np.int16)
    for n in range(batch):
        for c in range(channels):
            if rnd.random() < 0.4:
                choices = [rnd.randrange(-4, 4) for _ in range(3)]
                x[n, c] = [[rnd.choice(choices) for _ in range(width)] for _ in range(height)]
            else:
                x[n, c] = [[rnd.randrange(-32768, 32768) for _ in range(width)]
                           for _ in range(height)]
    return x


def pool_window_beats(x):
    """Return the window beats of NCHW tensor ``x``: for each (n, oy, ox) one beat whose lane
    ``c`` holds the window of channel ``c`` in row-major order."""
    n_, c_, h, w = x.shape
    return [{"window": [[int(v) for v in x[n, c, 2 * oy:2 * oy + 2, 2 * ox:2 * ox + 2].ravel()]
                        for c in range(c_)]}
            for n in range(n_) for oy in range(h // 2) for ox in range(w // 2)]


def expected_pool(x):
    """Return the expected MaxPool2x2 output beats of ``x`` (in ``pool_window_beats`` order)."""
    y, arg = maxpool2x2(x)
    n_, c_, h, w = y.shape
    return [{"data": [int(y[n, c, oy, ox]) for c in range(c_)],
             "argmax": [int(arg[n, c, oy, ox]) for c in range(c_)]}
            for n in range(n_) for oy in range(h) for ox in range(w)]


def expected_pool_backward(dy, argmax):
    """Return the expected PoolBackward beats: the windows of ``maxpool2x2_backward``."""
    return pool_window_beats(maxpool2x2_backward(dy, argmax))


def mismatches(expected, got, fields, *, limit=10):
    """Return descriptions of the differing ``fields`` of beat lists ``expected`` and ``got``
    (a beat missing from either list is a mismatch too)."""
    found = []
    if len(expected) != len(got):
        found.append(f"beat count: expected {len(expected)}, got {len(got)}")
    for k, (e, g) in enumerate(zip(expected, got)):
        for field in fields:
            if e[field] != g[field]:
                found.append(f"beat {k} {field}: expected {e[field]}, got {g[field]}")
    return found[:limit]
