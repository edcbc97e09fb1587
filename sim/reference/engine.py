"""What the conv engine must produce for one tile, from ``conv`` and ``numerics`` only.

Also the buffer images: ``pack_rows`` / ``unpack_rows`` convert tensors to and from the row
layouts of ``hw.engine.descriptor`` (T lanes of int16 per activation/output row, T x T lanes per
weight row), and ``random_case`` draws a random layer with data and requantization settings
for the testbenches.
"""

from dataclasses import dataclass, field

import numpy as np

from edgetrain.hw.buffers.kinds import MASTER_WORD_BITS
from edgetrain.hw.buffers.lanes import LANE_BITS, pack_lanes, unpack_lanes
from edgetrain.hw.engine.descriptor import LayerShape, buffer_rows
from edgetrain.sim.golden import conv, numerics

__all__ = ["EngineCase", "pack_rows", "pack_weight_rows", "unpack_rows", "expected",
           "useful_macs", "grad_blocks", "pack_master_rows", "unpack_master_rows",
           "unpack_gradient_rows", "random_layer", "random_case", "MODES_SEED"]


def _pad_channels(a, t, axis):
    extra = -a.shape[axis] % t
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, extra)
    return np.pad(a.astype(np.int64), widths)


def pack_rows(a, t):
    """Return the ``ACT``/``OUT`` buffer rows (ints) of activation-like ``a [N, C, H, W]``."""
    p = _pad_channels(np.asarray(a), t, 1)
    n, c, h, w = p.shape
    lanes = p.reshape(n, c // t, t, h, w).transpose(0, 1, 3, 4, 2).reshape(-1, t)
    return [pack_lanes(row) for row in lanes]


def _blocks(a, t):
    """``[M, C, K, K]`` -> ``[blocks, T (m), T (c)]`` in weight-row order (zero padded)."""
    p = _pad_channels(_pad_channels(np.asarray(a), t, 0), t, 1)
    m, c, k, _ = p.shape
    return p.reshape(m // t, t, c // t, t, k, k).transpose(0, 2, 4, 5, 1, 3).reshape(-1, t, t)


def pack_weight_rows(w, t):
    """Return the ``WGT`` buffer rows (ints) of ``w [M, C, K, K]``."""
    return [pack_lanes(block.reshape(-1)) for block in _blocks(w, t)]


def pack_master_rows(master, velocity, t, lanes):
    """Return ``MST`` buffer rows for ``update_lanes = lanes``: ``lanes`` x (master, velocity).

    Block lane ``q = i * T + j`` (output channel ``i``, input channel ``j``) is in row
    ``block * (T*T/lanes) + q // lanes``, bits ``64 (q % lanes)``: master low, velocity high.
    """
    mb, vb = _blocks(master, t).reshape(-1, lanes), _blocks(velocity, t).reshape(-1, lanes)
    half = MASTER_WORD_BITS // 2
    return [pack_lanes([pack_lanes((w, v), half) for w, v in zip(mrow, vrow)],
                       MASTER_WORD_BITS)
            for mrow, vrow in zip(mb, vb)]


def _unblock(lanes_flat, shape, t):
    """``[rows * lanes]`` words in block-lane order -> ``[ceil(M/T)*T, ceil(C/T)*T, K, K]``."""
    m, c, k, _ = shape
    mt, ct = -(-m // t), -(-c // t)
    b = np.asarray(lanes_flat, dtype=np.int64).reshape(mt, ct, k, k, t, t)
    return b.transpose(0, 4, 1, 5, 2, 3).reshape(mt * t, ct * t, k, k)


def unpack_master_rows(rows, shape, t, lanes):
    """Return (master, velocity) ``[ceil(M/T)*T, ceil(C/T)*T, K, K]`` from master rows."""
    half = MASTER_WORD_BITS // 2
    pairs = [unpack_lanes(word, 2, half, signed=True) for v in rows
             for word in unpack_lanes(v, lanes, MASTER_WORD_BITS)]
    return (_unblock([w for w, _ in pairs], shape, t),
            _unblock([v for _, v in pairs], shape, t))


def unpack_gradient_rows(rows, shape, t):
    """Return the accumulators ``[ceil(M/T)*T, ceil(C/T)*T, K, K]`` that ``update_lanes``
    0 writes: T per row (row ``block * T + i``, lane ``j``), each a signed 64-bit word."""
    words = [w for v in rows for w in unpack_lanes(v, t, MASTER_WORD_BITS, signed=True)]
    return _unblock(words, shape, t)


def unpack_rows(rows, shape, t):
    """Return (data, mask) ``[N, ceil(C/T)*T, H, W]`` from ``OUT`` buffer rows."""
    n, c, h, w = shape
    ct = -(-c // t)
    count = n * ct * h * w
    data = np.array([unpack_lanes(v, t, signed=True) for v in rows[:count]], dtype=np.int64)
    mask = np.array([unpack_lanes(v >> (LANE_BITS * t), t, 1) for v in rows[:count]],
                    dtype=np.int64)
    fix = (0, 1, 4, 2, 3)
    return tuple(a.reshape(n, ct, h, w, t).transpose(fix).reshape(n, ct * t, h, w)
                 for a in (data, mask))


@dataclass
class EngineCase:
    """One engine run: mode, layer, operands and requantization settings."""
    mode: str
    layer: LayerShape
    x: np.ndarray = None       # [N, C, H, W] (FP, WU)
    w: np.ndarray = None       # [M, C, K, K] (FP, BP)
    dy: np.ndarray = None      # [N, M, Ho, Wo] (BP, WU)
    shift: int = 0
    rounding: str = "nearest"
    key: int = 0
    relu: bool = False
    master: np.ndarray = None   # [M, C, K, K] int32 (UPDATE)
    velocity: np.ndarray = None
    sgd: dict = field(default_factory=dict)   # mu_q, lr_q, lr_shift, key_v, key_w


def expected(case):
    """Return the golden result of ``case``.

    FP/BP: ``dict(data, mask, saturations, amax)`` with data/mask over the logical output
    tensor; WU: ``dict(acc)``, the exact ``[M, C, K, K]`` batch-summed accumulator; UPDATE:
    ``dict(acc, master, velocity, saturations)``: ``acc`` and the result of one
    ``numerics.sgd_momentum`` step on it.
    """
    lay = case.layer
    if case.mode in ("wu", "update"):
        acc = conv.conv_wu(case.dy, case.x, lay.k, lay.stride, lay.pad)
        if case.mode == "wu":
            return {"acc": acc}
        sgd = case.sgd
        r = numerics.sgd_momentum(case.master, case.velocity, acc, g_shift=case.shift,
                                  mu_q=sgd["mu_q"], lr_q=sgd["lr_q"], lr_shift=sgd["lr_shift"],
                                  rounding=case.rounding,
                                  keys=(case.key, sgd["key_v"], sgd["key_w"]))
        return {"acc": acc, "master": r.master.astype(np.int64),
                "velocity": r.velocity.astype(np.int64), "saturations": r.saturations}
    if case.mode == "fp":
        acc = conv.conv_fp(case.x, case.w, lay.stride, lay.pad)
    else:
        acc = conv.conv_bp(case.dy, case.w, (lay.h, lay.w), lay.stride, lay.pad)
    q, sat = numerics.requantize(acc, case.shift, rounding=case.rounding, key=case.key)
    q = q.astype(np.int64)
    mask = (q > 0) & case.relu
    if case.relu:
        q = np.maximum(q, 0)
    amax = int(np.max(np.abs(acc))) if acc.size else 0
    return {"data": q, "mask": mask.astype(np.int64), "saturations": sat, "amax": amax}


def _taps(size, k, stride, pad):
    """Taps per output position along one BP axis (dilation zeros skipped), summed."""
    return sum(len(range((y + pad) % stride, k, stride)) for y in range(size))


def useful_macs(mode, lay):
    """Return the useful MACs the engine's counter must report for ``lay`` in ``mode``."""
    if mode == "bp":
        return (lay.n * lay.m * lay.c * _taps(lay.h, lay.k, lay.stride, lay.pad) *
                _taps(lay.w, lay.k, lay.stride, lay.pad))
    return lay.n * lay.m * lay.c * lay.out_h * lay.out_w * lay.k ** 2


def grad_blocks(acc, t):
    """Return ``{weight_row: lanes}`` (lane ``i * T + j``) of a WU accumulator ``[M,C,K,K]``."""
    return {r: [int(v) for v in row] for r, row in enumerate(_blocks(acc, t).reshape(-1, t * t))}


def random_layer(rng, cfg, *, max_cycles=None, max_size=None, max_channels=None):
    """Draw a layer that fits ``cfg`` (and optional limits) with a realistic spread."""
    size_cap = min(cfg.max_size, max_size or cfg.max_size)
    chan_cap = min(cfg.max_channels, max_channels or cfg.max_channels)
    kernels = [k for k in (1, 3, 5) if k <= cfg.max_kernel]
    t = cfg.tm
    while True:
        k = int(rng.choice(kernels))
        lay = LayerShape(n=int(rng.integers(1, cfg.max_batch + 1)),
                         c=int(rng.integers(1, chan_cap + 1)),
                         h=int(rng.integers(max(k, 2), size_cap + 1)),
                         w=int(rng.integers(max(k, 2), size_cap + 1)),
                         m=int(rng.integers(1, chan_cap + 1)), k=k,
                         stride=int(rng.integers(1, 3)), pad=int(rng.integers(0, k // 2 + 1)))
        if any(rows > buffer.depth(cfg) for buffer, rows in buffer_rows(cfg, lay).items()):
            continue
        ct, mt = -(-lay.c // t), -(-lay.m // t)
        cycles = lay.n * ct * mt * max(lay.out_h * lay.out_w, lay.h * lay.w) * k * k
        if max_cycles is None or cycles <= max_cycles:
            return lay


def _random_sgd(rng, case):
    """Master weights, velocities and SGD settings, scaled so some results saturate."""
    ws = (case.layer.m, case.layer.c, case.layer.k, case.layer.k)
    case.master = _tensor(rng, ws, bits=int(rng.integers(8, 33)))
    case.velocity = _tensor(rng, ws, bits=int(rng.integers(4, 33)))
    case.sgd = {"mu_q": int(rng.integers(0, 1 << 16)), "lr_q": int(rng.integers(0, 1 << 16)),
                "lr_shift": int(rng.integers(8, 48)), "key_v": int(rng.integers(0, 1 << 32)),
                "key_w": int(rng.integers(0, 1 << 32))}
    amax = int(np.max(np.abs(conv.conv_wu(case.dy, case.x, case.layer.k, case.layer.stride,
                                          case.layer.pad))))
    case.shift = numerics.bitlen(amax) - 28 + int(rng.integers(-4, 5))


def _tensor(rng, shape, bits=None):
    bits = bits or int(rng.integers(3, 17))
    hi = 1 << (bits - 1)
    return rng.integers(-hi, hi, size=shape, dtype=np.int64)


def random_case(rng, cfg, mode, layer=None, **limits):
    """Draw operands and requantization settings for ``mode`` on a (random) layer.

    The rounding is random, or nearest when ``cfg`` has no stochastic rounding (drawn
    either way, so the rest of the case does not depend on the knob).
    """
    lay = layer or random_layer(rng, cfg, **limits)
    rounding = str(rng.choice(numerics.ROUNDING_MODES))
    case = EngineCase(mode=mode, layer=lay,
                      rounding=rounding if cfg.stochastic_rounding else "nearest",
                      key=int(rng.integers(0, 1 << 32)), relu=bool(rng.integers(0, 2)))
    xs, ws = (lay.n, lay.c, lay.h, lay.w), (lay.m, lay.c, lay.k, lay.k)
    ys = (lay.n, lay.m, lay.out_h, lay.out_w)
    case.x = _tensor(rng, xs) if mode in ("fp", "wu", "update") else None
    case.w = _tensor(rng, ws) if mode in ("fp", "bp") else None
    case.dy = _tensor(rng, ys) if mode in ("bp", "wu", "update") else None
    if mode == "update":
        _random_sgd(rng, case)
    elif mode != "wu":
        # Delayed scaling: the host picks a shift that fits |acc| in ~14 bits, jittered so
        # that some runs saturate and some shift left.
        amax = expected(case)["amax"]
        case.shift = numerics.bitlen(amax) - 14 + int(rng.integers(-3, 3))
    return case

# Seed stream of each mode, so adding a mode never changes another mode's shapes.
MODES_SEED = {"fp": 1, "bp": 2, "wu": 3, "update": 4}
