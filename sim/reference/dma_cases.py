"""Random DMA transfers with their expected results, from the layout module and golden transforms.

A ``DMACase`` holds the DRAM image before the transfer, the buffer rows preset (stores), the
descriptor, and what must hold afterwards: the exact set of buffer rows written (loads) or the
whole DRAM image (stores). Expected values come from NumPy (``np.pad``, ``bp_weights``) and the
layout module, never from the descriptor builders.
"""

from dataclasses import dataclass, field

import numpy as np

from edgetrain.hw.buffers.lanes import pack_lanes, unpack_lanes
from edgetrain.hw.dma import layout as lay
from edgetrain.hw.dma import program as prog
from edgetrain.sim.golden.conv import bp_weights

__all__ = ["DMACase", "KINDS", "random_case", "rows_to_ints", "ints_to_rows"]

KINDS = ("act_load", "weight_fp", "weight_bp", "act_store", "naive_load", "weight_store",
         "naive_store", "conv_input")


@dataclass
class DMACase:
    kind: str
    desc: object
    image: bytearray
    rows_before: dict = field(default_factory=dict)
    expect_rows: dict | None = None
    expect_image: bytes | None = None


def rows_to_ints(rows):
    """Pack ``[n, lanes]`` int16 rows into integers, lane ``j`` in bits ``16j..``."""
    return [pack_lanes(r) for r in np.asarray(rows)]


def ints_to_rows(values, lanes):
    """Unpack row integers into ``[n, lanes]`` int16."""
    return np.array([unpack_lanes(v, lanes, signed=True) for v in values],
                    dtype=np.int16)


def _rows_dict(rows, start):
    return {start + i: v for i, v in enumerate(rows_to_ints(rows))}


def _tensor(rng, shape):
    return rng.integers(-32768, 32768, size=shape, dtype=np.int64).astype(np.int16)


def _base(rng, bus_bytes):
    return int(rng.integers(0, 6000)) // bus_bytes * bus_bytes


def _act_layout(rng, lanes, bus_bytes, mem, form="tiled"):
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3 * lanes + 1)),
             int(rng.integers(1, 13)), int(rng.integers(1, 13)))
    if form == "naive":
        shape = (*shape[:3], lanes * int(rng.integers(1, 4)))
    tile = (lanes * int(rng.integers(1, 3)), int(rng.integers(1, shape[2] + 1)),
            int(rng.integers(1, shape[3] + 1)))
    layout = lay.ActivationLayout(shape=shape, tile=tile, form=form, lanes=lanes,
                                  base=_base(rng, bus_bytes))
    image = bytearray(mem)
    x = _tensor(rng, shape)
    layout.pack(x, image)
    return layout, x, image


def _padded(layout, x):
    full = np.zeros((x.shape[0], layout.padded_channels, *x.shape[2:]), dtype=np.int16)
    full[:, :x.shape[1]] = x
    return full


def act_load(rng, lanes, depth, mem):
    bus = 2 * lanes
    layout, x, image = _act_layout(rng, lanes, bus, mem)
    tiles = list(layout.tiles())
    n, c0, tc, y0, rows, x0, cols = tiles[int(rng.integers(len(tiles)))]
    pad = tuple(int(v) for v in rng.integers(0, 3, size=4))
    need = (rows + pad[0] + pad[1]) * (cols + pad[2] + pad[3]) * tc // lanes
    if need > depth:
        pad = (0, 0, 0, 0)
        need = rows * cols * tc // lanes
    start = int(rng.integers(0, depth - need + 1))
    desc = prog.activation_load(layout, (n, c0, tc, y0, rows, x0, cols), pad=pad,
                                buf_addr=start, bus_bytes=bus)
    tile = _padded(layout, x)[n, c0:c0 + tc, y0:y0 + rows, x0:x0 + cols]
    tile = np.pad(tile, ((0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    return DMACase("act_load", desc, image,
                   expect_rows=_rows_dict(lay.activation_rows(tile, lanes), start))


def conv_input(rng, lanes, depth, mem):
    """A conv input tile: a row tile of a full-width tiled layout plus its halo rows (from
    the neighbouring tiles: one contiguous run) and zero padding where the image ends."""
    bus = 2 * lanes
    n_, c, h, w = 1, int(rng.integers(1, 3 * lanes + 1)), int(rng.integers(2, 13)), \
        int(rng.integers(1, 9))
    layout = lay.ActivationLayout(shape=(n_, c, h, w), tile=(lanes, int(rng.integers(1, h)), w),
                                  form="tiled", lanes=lanes, base=_base(rng, bus))
    image = bytearray(mem)
    x = _tensor(rng, layout.shape)
    layout.pack(x, image)
    tiles = list(layout.tiles())
    n, c0, tc, y0, rows, _, _ = tiles[int(rng.integers(len(tiles)))]
    p = int(rng.integers(0, 3))
    top, bottom = min(p, y0), min(p, h - y0 - rows)
    region = (n, c0, tc, y0 - top, rows + top + bottom, 0, w)
    pad = (p - top, p - bottom, p, p)
    desc = prog.activation_load(layout, region, pad=pad, bus_bytes=bus)
    want = np.pad(_padded(layout, x)[n, c0:c0 + tc], ((0, 0), (p, p), (p, p)))
    want = want[:, y0:y0 + rows + 2 * p]
    return DMACase("conv_input", desc, image,
                   expect_rows=_rows_dict(lay.activation_rows(want, lanes), 0))


def _weight_layout(rng, lanes, bus, mem):
    k = int(rng.choice([1, 3, 5]))
    shape = (int(rng.integers(1, 3 * lanes + 1)), int(rng.integers(1, 3 * lanes + 1)), k, k)
    tile = (lanes * int(rng.integers(1, 3)), lanes * int(rng.integers(1, 3)))
    layout = lay.WeightLayout(shape=shape, tile=tile, form="tiled", lanes=lanes,
                              base=_base(rng, bus))
    image = bytearray(mem)
    w = _tensor(rng, shape)
    layout.pack(w, image)
    full = np.zeros(layout.padded_shape, dtype=np.int16)
    full[:shape[0], :shape[1]] = w
    return layout, full, image


def weight_store(rng, lanes, depth, mem):
    bus = 2 * lanes
    layout, full, image = _weight_layout(rng, lanes, bus, mem)
    k = layout.shape[2]
    blocks = [b for b in layout.tiles() if k * k * b[1] * b[3] // lanes <= depth]
    m0, bm, c0, bc = blocks[int(rng.integers(len(blocks)))]
    block = _tensor(rng, (bm, bc, k, k))
    rows = lay.weight_rows(block, lanes)
    start = int(rng.integers(0, depth - rows.shape[0] + 1))
    desc = prog.weight_store(layout, (m0, bm, c0, bc), buf_addr=start, bus_bytes=bus)
    full[m0:m0 + bm, c0:c0 + bc] = block
    expect = bytearray(image)
    padded = lay.WeightLayout(shape=full.shape, tile=layout.tile, form="tiled", lanes=lanes,
                              base=layout.base)
    padded.pack(full, expect)
    return DMACase("weight_store", desc, image, rows_before=_rows_dict(rows, start),
                   expect_image=bytes(expect))


def naive_store(rng, lanes, depth, mem):
    bus = 2 * lanes
    layout, x, image = _act_layout(rng, lanes, bus, mem, form="naive")
    n, c0, tc, y0, rows, x0, cols = list(layout.tiles())[-1]
    cols = lanes * max(1, cols // lanes)
    x0 = x.shape[3] - cols
    rows = max(1, min(rows, depth * lanes // (tc * cols)))
    region = _tensor(rng, (tc, rows, cols))
    desc = prog.raw_transfer(layout.region_addresses(n, c0, tc, y0, rows, x0, cols),
                             store=True, bus_bytes=bus)
    x[n, c0:c0 + tc, y0:y0 + rows, x0:x0 + cols] = region
    expect = bytearray(image)
    layout.pack(x, expect)
    return DMACase("naive_store", desc, image,
                   rows_before=_rows_dict(region.reshape(-1, lanes), 0),
                   expect_image=bytes(expect))


def weight_load(rng, lanes, depth, mem, *, bp):
    bus = 2 * lanes
    layout, full, image = _weight_layout(rng, lanes, bus, mem)
    k = layout.shape[2]
    blocks = [b for b in layout.tiles() if k * k * b[1] * b[3] // lanes <= depth]
    m0, bm, c0, bc = blocks[int(rng.integers(len(blocks)))]
    block = full[m0:m0 + bm, c0:c0 + bc]
    need = k * k * bm * bc // lanes
    start = int(rng.integers(0, depth - need + 1))
    desc = prog.weight_load(layout, (m0, bm, c0, bc), bp=bp, buf_addr=start, bus_bytes=bus)
    want = lay.weight_rows(bp_weights(block) if bp else block, lanes)
    return DMACase("weight_bp" if bp else "weight_fp", desc, image,
                   expect_rows=_rows_dict(want, start))


def act_store(rng, lanes, depth, mem):
    bus = 2 * lanes
    layout, x, image = _act_layout(rng, lanes, bus, mem)
    tiles = [t for t in layout.tiles() if t[2] * t[4] * t[6] // lanes <= depth]
    region = tiles[int(rng.integers(len(tiles)))]
    n, c0, tc, y0, rows, x0, cols = region
    out = _tensor(rng, (rows * cols * tc // lanes, lanes))
    start = int(rng.integers(0, depth - out.shape[0] + 1))
    desc = prog.activation_store(layout, region, buf_addr=start, bus_bytes=bus)
    expect = bytearray(image)
    tile = out.reshape(rows, cols, tc).transpose(2, 0, 1)  # the row format, inverted
    after = _padded(layout, x)
    after[n, c0:c0 + tc, y0:y0 + rows, x0:x0 + cols] = tile
    full = lay.ActivationLayout(shape=after.shape, tile=layout.tile, form="tiled",
                                lanes=lanes, base=layout.base)
    full.pack(after, expect)
    return DMACase("act_store", desc, image, rows_before=_rows_dict(out, start),
                   expect_image=bytes(expect))


def naive_load(rng, lanes, depth, mem):
    bus = 2 * lanes
    layout, x, image = _act_layout(rng, lanes, bus, mem, form="naive")
    n, c0, tc, y0, rows, x0, cols = list(layout.tiles())[0]
    tc = min(tc, x.shape[1])
    cols = lanes * max(1, cols // lanes)
    rows = max(1, min(rows, depth * lanes // (tc * cols)))
    region = x[n, c0:c0 + tc, y0:y0 + rows, x0:x0 + cols]
    desc = prog.raw_transfer(layout.region_addresses(n, c0, tc, y0, rows, x0, cols),
                             bus_bytes=bus)
    return DMACase("naive_load", desc, image,
                   expect_rows=_rows_dict(region.reshape(-1, lanes), 0))


def random_case(rng, kind, *, lanes, depth, mem):
    """Return a random ``DMACase`` of ``kind`` (one of ``KINDS``)."""
    if kind in ("weight_fp", "weight_bp"):
        return weight_load(rng, lanes, depth, mem, bp=kind == "weight_bp")
    return {"act_load": act_load, "act_store": act_store, "naive_load": naive_load,
            "weight_store": weight_store, "naive_store": naive_store,
            "conv_input": conv_input}[kind](
        rng, lanes, depth, mem)
