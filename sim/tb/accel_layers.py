"""Conv layers on the accelerator from the host's side: operands in DRAM, results checked.

Shared by the testbenches and benchmarks that run whole layers through ``layer_program``
(``firmware/tiling.py``): ``images(cfg, case)`` gives each operand's bytes in the row layout
(results as random junk, so a row nobody writes is a mismatch), ``place(images, end)`` lays
them out in DRAM, ``options(case)`` the requantization and SGD settings of the case's
program, ``result_of(mode)`` the operand holding the result and ``check(cfg, case, raw)``
the messages of every difference between the result's bytes and the golden model of the
whole layer (``sim/reference/engine.py``).
"""

import numpy as np

from edgetrain.firmware.tiling import RowLayout, operands
from edgetrain.hw.buffers.kinds import MASTER_WORD_BITS, Buffer, master_lanes
from edgetrain.sim.reference import engine as ref
from .accel_bench import rows_bytes

__all__ = ["images", "place", "options", "result_of", "check"]

ALIGN = 0x400
RESULT = {"fp": "y", "bp": "dx", "wu": "grad", "update": "mst"}


def result_of(mode):
    """The operand of ``mode``'s program that holds its result."""
    return RESULT[mode]


def images(cfg, case):
    """``{operand: bytes}`` of the operands in the row layout; results as random junk."""
    t, mode = cfg.tm, case.mode
    sizes = RowLayout(cfg).bytes_of(mode, case.layer)
    rows = {"x": lambda: rows_bytes(ref.pack_rows(case.x, t), 16 * t),
            "dy": lambda: rows_bytes(ref.pack_rows(case.dy, t), 16 * t),
            "w": lambda: rows_bytes(ref.pack_weight_rows(case.w, t), 16 * t * t),
            "mst": lambda: rows_bytes(ref.pack_master_rows(case.master, case.velocity, t,
                                                           master_lanes(cfg)),
                                      Buffer.MST.row_bits(cfg))}
    junk = np.random.default_rng(case.key)
    images = {name: rows[name]() if name in rows else junk.bytes(sizes[name])
              for name in operands(mode)}
    assert all(len(images[n]) == sizes[n] for n in images), "row layout sizes disagree"
    return images


def place(images, end):
    """Byte addresses for ``images``, one after another from ``ALIGN``, below ``end``."""
    at, cursor = {}, ALIGN
    for name, image in images.items():
        at[name] = cursor
        cursor += -(-len(image) // ALIGN) * ALIGN
    assert cursor <= end, f"operands of {cursor} bytes do not fit below {end:#x}"
    return at


def _act_result(cfg, raw, shape, want, what):
    """Compare activation rows ``raw`` (row layout) with ``want``; return error messages."""
    t = cfg.tm
    got, _ = ref.unpack_rows(_rows(raw, 2 * t), shape, t)
    c = want.shape[1]
    bad = np.argwhere(got[:, :c] != want)
    if len(bad):
        i = tuple(int(v) for v in bad[0])
        where = sorted({int(b[0]) for b in bad})
        return [f"{len(bad)} of {want.size} {what} differ (images {where}), first at {i}: "
                f"{got[:, :c][i]} != {want[i]}"]
    return []


def _weight_result(got, want, lay, what):
    bad = np.argwhere(got[:lay.m, :lay.c] != want)
    if len(bad):
        i = tuple(int(v) for v in bad[0])
        return [f"{len(bad)} of {want.size} {what} differ, first at {i}: "
                f"{got[:lay.m, :lay.c][i]} != {want[i]}"]
    return []


def _rows(raw, size):
    """The little-endian integers of each ``size``-byte row of ``raw``."""
    return [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]


def check(cfg, case, raw):
    """Error messages of the result bytes ``raw`` against the golden whole layer."""
    lay, t, want = case.layer, cfg.tm, ref.expected(case)
    wshape = (lay.m, lay.c, lay.k, lay.k)
    if case.mode == "fp":
        shape = (lay.n, lay.m, lay.out_h, lay.out_w)
        return _act_result(cfg, raw, shape, want["data"], "outputs")
    if case.mode == "bp":
        shape = (lay.n, lay.c, lay.h, lay.w)
        return _act_result(cfg, raw, shape, want["data"], "input gradients")
    if case.mode == "wu":
        got = ref.unpack_gradient_rows(_rows(raw, t * MASTER_WORD_BITS // 8), wshape, t)
        return _weight_result(got, want["acc"], lay, "accumulators")
    rows = _rows(raw, Buffer.MST.row_bits(cfg) // 8)
    master, velocity = ref.unpack_master_rows(rows, wshape, t, master_lanes(cfg))
    return (_weight_result(master, want["master"], lay, "master weights") +
            _weight_result(velocity, want["velocity"], lay, "velocities"))


def options(case):
    """The ``layer_program`` settings of ``case``: shift, rounding, key, ReLU, SGD."""
    options = dict(shift=case.shift, stochastic=case.rounding == "stochastic", key=case.key)
    if case.mode in ("fp", "bp"):
        options["relu"] = case.relu
    return options | case.sgd
