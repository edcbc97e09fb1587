"""Build ``ReshapeDMA`` descriptors from the layout module: one function per transfer kind.

Each builder returns a ``Descriptor`` whose DRAM side follows the tensor's layout
(``hw.layout``) and whose buffer side produces the row format documented there. The beats of a
transfer are listed in the order the buffer consumes them and then fitted to the descriptor's
two-level segment pattern, so any layout whose tile is such a pattern works.
"""

import numpy as np

from edgetrain.errors import ConfigError
from .descriptor import Descriptor
from .layout import ELEM_BYTES

__all__ = ["dram_pattern", "activation_load", "activation_store", "weight_load",
           "weight_store", "raw_transfer"]


def _beats(elements, lanes):
    """Return the beat addresses of ``elements`` (addresses in transfer order)."""
    flat = np.asarray(elements, dtype=np.int64).ravel()
    if flat.size % lanes:
        raise ConfigError(f"transfer of {flat.size} elements is not whole beats of {lanes}")
    beats = flat.reshape(-1, lanes)
    if np.any(np.diff(beats, axis=1) != ELEM_BYTES):
        raise ConfigError("a beat's lanes are not consecutive in DRAM: this layout cannot "
                          "be moved in this buffer row format")
    return beats[:, 0]


def dram_pattern(beat_addrs, bus_bytes, addr_bits=32):
    """Fit beat addresses (transfer order) to the descriptor's DRAM fields; return a dict."""
    a = np.asarray(beat_addrs, dtype=np.int64)
    brk = np.nonzero(np.diff(a) != bus_bytes)[0] + 1
    starts = np.concatenate(([0], brk))
    lengths = np.diff(np.concatenate((starts, [a.size])))
    if np.any(lengths != lengths[0]):
        raise ConfigError("segments of this transfer differ in length; split it into several "
                          "descriptors")
    s = a[starts]
    inner = s.size
    if s.size > 1:
        d = np.diff(s)
        inner = int(np.argmax(d != d[0])) + 1 if np.any(d != d[0]) else s.size
    stride = int(s[1] - s[0]) if inner > 1 else 0
    stride2 = int(s[inner] - s[0]) if s.size > inner else 0
    idx = np.arange(s.size)
    fitted = s[0] + (idx % inner) * stride + (idx // inner) * stride2
    if s.size % inner or np.any(fitted != s):
        raise ConfigError("this transfer is not a two-level segment pattern; split it")
    mask = (1 << addr_bits) - 1
    return {"dram_addr": int(s[0]), "seg_beats": int(lengths[0]), "seg_count": inner,
            "seg_stride": stride & mask, "seg_count2": s.size // inner,
            "seg_stride2": stride2 & mask}


def activation_load(layout, region, *, pad=(0, 0, 0, 0), buf_addr=0, bus_bytes):
    """Load activation ``region`` ``(n, c0, tc, y0, rows, x0, cols)`` with zero ``pad``.

    ``pad`` is ``(top, bottom, left, right)``; the buffer receives the padded tile in the
    activation row format, from row ``buf_addr``.
    """
    n, c0, tc, y0, rows, x0, cols = region
    lanes = bus_bytes // ELEM_BYTES
    addrs = layout.region_addresses(n, c0, tc, y0, rows, x0, cols).transpose(1, 2, 0)
    groups = tc // lanes
    top, bottom, left, right = pad
    n1 = cols + left + right
    return Descriptor(**dram_pattern(_beats(addrs, lanes), bus_bytes), buf_addr=buf_addr,
                      n0=groups, s0=1, n1=n1, s1=groups, n2=rows + top + bottom,
                      s2=groups * n1, pad_top=top, pad_bottom=bottom, pad_left=left,
                      pad_right=right)


def activation_store(layout, region, *, buf_addr=0, bus_bytes):
    """Store a tile in the activation row format from row ``buf_addr`` to ``region``."""
    n, c0, tc, y0, rows, x0, cols = region
    lanes = bus_bytes // ELEM_BYTES
    addrs = layout.region_addresses(n, c0, tc, y0, rows, x0, cols).transpose(1, 2, 0)
    return Descriptor(**dram_pattern(_beats(addrs, lanes), bus_bytes), buf_addr=buf_addr,
                      n0=rows * cols * tc // lanes, store=1)


def weight_load(layout, block, *, bp=False, buf_addr=0, bus_bytes):
    """Load weight ``block`` ``(m0, bm, c0, bc)`` of a tiled ``WeightLayout``.

    FP: the buffer gets the block in the FP weight row format. BP (``bp=True``): it gets
    ``bp_weights`` of the block (rotated, channels swapped) in the same format, made on the
    fly by the walk running backwards over kernel positions and the DMA's corner turn.
    """
    m0, bm, c0, bc = block
    lanes = bus_bytes // ELEM_BYTES
    k = layout.shape[2]
    kk, groups, mgroups = k * k, bc // lanes, bm // lanes
    addrs = layout.region_addresses(m0, bm, c0, bc)            # [bm, bc, K, K]
    order = addrs.reshape(bm, groups, lanes, kk).transpose(3, 1, 0, 2)  # (kk, g, m, lane)
    pattern = dram_pattern(_beats(order, lanes), bus_bytes)
    if not bp:
        return Descriptor(**pattern, buf_addr=buf_addr, n2=kk, s2=bm * groups, n1=groups,
                          s1=1, n0=bm, s0=groups)
    row = bc * mgroups  # rows per kernel position in the BP block
    return Descriptor(**pattern, buf_addr=buf_addr + (kk - 1) * row, n2=kk, s2=-row,
                      n1=groups, s1=lanes * mgroups, n0=mgroups, s0=1, sj=mgroups,
                      corner_turn=1)


def weight_store(layout, block, *, buf_addr=0, bus_bytes):
    """Store a weight-format block (e.g. a weight gradient) from row ``buf_addr`` to ``block``.

    The inverse of the FP ``weight_load``: the walk reads rows in DRAM order.
    """
    m0, bm, c0, bc = block
    lanes = bus_bytes // ELEM_BYTES
    k = layout.shape[2]
    groups = bc // lanes
    addrs = layout.region_addresses(m0, bm, c0, bc)
    order = addrs.reshape(bm, groups, lanes, k * k).transpose(3, 1, 0, 2)
    return Descriptor(**dram_pattern(_beats(order, lanes), bus_bytes), buf_addr=buf_addr,
                      n2=k * k, s2=bm * groups, n1=groups, s1=1, n0=bm, s0=groups, store=1)


def raw_transfer(addresses, *, store=False, buf_addr=0, bus_bytes):
    """Move the elements at ``addresses`` (ascending) as beats to consecutive buffer rows.

    No reformatting: this is the naive layout's bus traffic, for measurement.
    """
    lanes = bus_bytes // ELEM_BYTES
    beats = _beats(np.sort(np.asarray(addresses).ravel()), lanes)
    return Descriptor(**dram_pattern(beats, bus_bytes), buf_addr=buf_addr, n0=beats.size,
                      store=int(store))
