"""Cases of the accelerator shared by its cocotb testbenches and the instruction-level model's
tests: runs of rows in bank halves, and random layers that need several tiles.

``Run`` is a run of rows in one half of a bank; ``place_runs(rng, cfg, sizes)`` draws
non-overlapping runs in the ACT / OUT halves (the pool and eltwise units' operands), and
``random_map(rng, nprng, cfg)`` a random NCHW tensor whose rows fit one such half.
``draw_tiled(rng, cfg, mode, cut)`` draws a random case of ``mode`` that does *not* fit one
buffer half and whose tiles cut its layer along ``cut`` (one of ``CUTS[mode]``; the cases
of a testbench take turns over them), and returns it with its tiles; ``tile_cuts(tiles)``
says which ways a tile list cuts its layer.
"""

import numpy as np

from edgetrain.errors import ConfigError
from edgetrain.firmware.tiling import tile_layer
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.rowunit import UNIT_BUFFERS
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.sim.reference import engine as ref

__all__ = ["Run", "place_runs", "random_map", "CUTS", "DRAW_DEPTH", "draw_tiled",
           "tile_cuts"]

#: Layers are drawn as if the buffers were this many times deeper, then tiled.
DRAW_DEPTH = 8

#: The cuts each mode's cases take turns to include (a row cut with padding, on the DMA).
CUTS = {"fp": ("channels", "images", "rows"), "bp": ("channels", "images"),
        "wu": ("channels", "images"), "update": ("channels", "images")}


class Run:
    """One run of rows in a bank: buffer, half, first row, row count."""

    def __init__(self, buffer, half, row, rows):
        self.buffer, self.half, self.row, self.rows = buffer, half, row, rows

    @property
    def operand(self):
        return {"buffer": self.buffer, "half": self.half, "row": self.row}

    def overlaps(self, other):
        return ((self.buffer, self.half) == (other.buffer, other.half) and
                self.row < other.row + other.rows and other.row < self.row + self.rows)


def place_runs(rng, cfg, sizes):
    """Random non-overlapping runs of ``sizes`` rows in the ACT / OUT halves of ``cfg``."""
    while True:
        runs = []
        for rows in sizes:
            buffer = UNIT_BUFFERS[rng.randrange(len(UNIT_BUFFERS))]
            depth = half_depth(cfg, buffer)
            runs.append(Run(buffer, rng.randrange(2), rng.randrange(depth - rows + 1), rows))
        if not any(a.overlaps(b) for i, a in enumerate(runs) for b in runs[:i]):
            return runs


def random_map(rng, nprng, cfg):
    """A random NCHW shape whose rows fit one half of ACT and OUT; and a random tensor of it
    (small values in some cases, so that windows have ties)."""
    fit = min(half_depth(cfg, b) for b in UNIT_BUFFERS)
    t = cfg.tm
    while True:
        n, c = rng.randint(1, cfg.max_batch), rng.randint(1, cfg.max_channels)
        h, w = (2 * rng.randint(1, cfg.max_size // 2) for _ in range(2))
        if n * -(-c // t) * h * w <= fit:
            break
    bound = rng.choice((4, 1 << 15))
    return nprng.integers(-bound, bound, size=(n, c, h, w)).astype(np.int16)


def tile_cuts(tiles):
    """Which ways ``tiles`` cut their layer: a subset of {"channels", "images", "rows"}."""
    cuts = set()
    if len({(t.o0, t.r0) for t in tiles}) > 1:
        cuts.add("channels")
    if len({t.n0 for t in tiles}) > 1:
        cuts.add("images")
    if len({t.y0 for t in tiles}) > 1:
        cuts.add("rows")
    return cuts


def draw_tiled(rng, cfg, mode, cut):
    """A random case of ``mode`` whose tiles on ``cfg`` cut its layer along ``cut``, and the
    tiles."""
    big = cfg.replace(**{b.depth_field: b.depth(cfg) * DRAW_DEPTH
                         for b in (Buffer.ACT, Buffer.WGT, Buffer.OUT)})
    while True:
        lay = ref.random_layer(rng, big)
        if cut == "rows" and lay.pad == 0:
            continue      # row tiles of a padded layer: the DMA inserts the padding
        try:
            tiles = tile_layer(cfg, mode, lay)
        except ConfigError:
            continue      # e.g. an UPDATE cut along the batch without an SGD unit
        if cut in tile_cuts(tiles):
            return ref.random_case(rng, big, mode, layer=lay), tiles
