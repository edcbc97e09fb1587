"""Where every element of every tensor lives in DRAM, and the on-chip buffer row format.

This is the one source of truth for addresses. It is pure NumPy: ``hw/`` reads it for
parameters, ``sim/`` packs the DRAM images its testbenches start from, ``firmware/`` builds
DRAM images and descriptors with it.

Elements are int16, little-endian, 2 bytes. Every DRAM form groups channels by ``lanes``
(``axi_data_bits // 16``): one bus beat holds ``lanes`` consecutive channels of one position.
Channel counts are rounded up to a multiple of ``lanes`` in the tiled forms; the extra channels
are stored as zeros (they are part of the tensor's storage, not convolution padding, which is
never stored).

Activations and gradients ``[N, C, H, W]``
    ``tiled`` (EF-Train's intra-tile continuous allocation): the tensor is cut into blocks of
    ``tn`` channels x ``th`` rows x ``tw`` columns (edge blocks are smaller); blocks follow each
    other in ``(n, channel tile, row tile, column tile)`` order, and inside a block the order
    is ``(y, x, channel)``, channel fastest. A tile is one contiguous run of bytes.
    ``naive``: plain NCHW, W fastest; a tile is ``channels x rows`` short runs.

Weights ``[M, C, K, K]`` (OIHW)
    ``tiled``: blocks of ``tm`` output x ``tn`` input channels, in ``(m tile, c tile)`` order;
    inside a block the order is ``(ky, kx, channel group, m, lane)`` where a channel group is
    ``lanes`` input channels. Consecutive beats of a block therefore walk ``m`` for a fixed
    kernel position and channel group, which is what the DMA's BP corner turn consumes.
    ``naive``: plain OIHW.

Buffer row format (what the DMA writes into, and reads from, a ``MemoryPortSignature`` port)
    One buffer row is one bus beat: ``lanes`` int16 elements, lane ``j`` in bits
    ``16*j .. 16*j+15``.

    * Activation tile ``[tc, rows, cols]`` (after padding): row ``(y * cols + x) * (tc //
      lanes) + g`` holds channels ``g*lanes .. g*lanes+lanes-1`` at ``(y, x)``.
    * FP weight block ``[tm, tc, K, K]``: row ``(ky*K + kx) * tm * (tc//lanes) + m * (tc//lanes)
      + g`` holds input channels ``g*lanes ..`` of output channel ``m``.
    * BP weight block: the FP row format applied to ``sim.conv.bp_weights`` of the block
      (rotated 180 degrees, in/out channels swapped), produced by the DMA from the FP-stored
      block.
"""

from dataclasses import dataclass

import numpy as np

from edgetrain.errors import ConfigError

__all__ = ["ELEM_BYTES", "FORMS", "ActivationLayout", "WeightLayout", "Segment",
           "runs", "split_bursts", "round_up", "activation_rows", "weight_rows"]

ELEM_BYTES = 2
FORMS = ("tiled", "naive")


def round_up(value, multiple):
    return -(-value // multiple) * multiple


def _check_int(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}")


def _check_form(form):
    if form not in FORMS:
        raise ConfigError(f"layout form {form!r} does not exist; choose tiled or naive")


def _check_lanes(lanes):
    if lanes not in (2, 4, 8):
        raise ConfigError(f"lanes must be 2, 4 or 8 (a 32/64/128-bit bus), not {lanes!r}")


def _spans(extent, tile):
    return [(s, min(tile, extent - s)) for s in range(0, extent, tile)]


class _Layout:
    """Shared parts: the address array, the byte size, pack and unpack."""

    def addresses(self):
        """Return the byte address of every element, shaped like the tensor (int64)."""
        return self._addr

    @property
    def size_bytes(self):
        """The bytes the tensor occupies from ``base`` (including channel rounding)."""
        return self._size

    def pack(self, array, image):
        """Write ``array`` (int16-valued) into ``image`` (a writable uint8 buffer)."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise ValueError(f"array shape {array.shape} does not match layout {self.shape}")
        view = np.frombuffer(image, dtype="<i2") if isinstance(image, bytearray) else \
            np.asarray(image).view("<i2")
        view[self._addr // ELEM_BYTES] = array.astype(np.int16)

    def unpack(self, image):
        """Return the tensor (int16) read from ``image``."""
        view = np.frombuffer(bytes(image), dtype="<i2")
        return view[self._addr // ELEM_BYTES].astype(np.int16)


class ActivationLayout(_Layout):
    """Addresses of an activation or gradient ``[N, C, H, W]`` at byte address ``base``.

    ``tile`` is ``(tn, th, tw)``; ``tn`` must be a multiple of ``lanes``. See the module
    docstring for the two forms.
    """

    def __init__(self, *, shape, tile, form, lanes, base=0):
        _check_form(form)
        _check_lanes(lanes)
        if len(shape) != 4 or len(tile) != 3:
            raise ConfigError(f"need shape (N, C, H, W) and tile (tn, th, tw), not "
                              f"{shape!r} and {tile!r}")
        for name, v in zip(("N", "C", "H", "W", "tn", "th", "tw"), (*shape, *tile)):
            _check_int(name, v)
        if tile[0] % lanes:
            raise ConfigError(f"channel tile tn={tile[0]} must be a multiple of the bus lanes "
                              f"{lanes}")
        _check_int("base", base, 0)
        self.shape, self.tile, self.form, self.lanes, self.base = \
            tuple(shape), tuple(tile), form, lanes, base
        self._addr, self._size = (self._tiled() if form == "tiled" else self._naive())

    @property
    def padded_channels(self):
        return round_up(self.shape[1], self.lanes) if self.form == "tiled" else self.shape[1]

    def _naive(self):
        n, c, h, w = self.shape
        idx = np.arange(n * c * h * w, dtype=np.int64).reshape(self.shape)
        return self.base + idx * ELEM_BYTES, n * c * h * w * ELEM_BYTES

    def _tiled(self):
        n, c, h, w = self.shape
        tn, th, tw = self.tile
        addr = np.empty((n, self.padded_channels, h, w), dtype=np.int64)
        cursor = self.base
        for b in range(n):
            for c0, tc in _spans(self.padded_channels, tn):
                for y0, rows in _spans(h, th):
                    for x0, cols in _spans(w, tw):
                        inner = np.arange(rows * cols * tc, dtype=np.int64)
                        block = inner.reshape(rows, cols, tc).transpose(2, 0, 1)
                        addr[b, c0:c0 + tc, y0:y0 + rows, x0:x0 + cols] = \
                            cursor + block * ELEM_BYTES
                        cursor += rows * cols * tc * ELEM_BYTES
        self._full = addr
        return addr[:, :c], cursor - self.base

    def tiles(self):
        """Yield every tile as ``(n, c0, tc, y0, rows, x0, cols)`` in storage order."""
        n, _, h, w = self.shape
        tn, th, tw = self.tile
        for b in range(n):
            for c0, tc in _spans(self.padded_channels, tn):
                for y0, rows in _spans(h, th):
                    for x0, cols in _spans(w, tw):
                        yield b, c0, tc, y0, rows, x0, cols

    def region_addresses(self, n, c0, tc, y0, rows, x0, cols):
        """Return the addresses of a region, padding channels (tiled form) included."""
        full = self._full if self.form == "tiled" else self._addr
        return full[n, c0:c0 + tc, y0:y0 + rows, x0:x0 + cols]


class WeightLayout(_Layout):
    """Addresses of a weight tensor ``[M, C, K, K]`` at byte address ``base``.

    ``tile`` is ``(tm, tn)``; both must be multiples of ``lanes`` (the BP corner turn swaps
    ``lanes`` x ``lanes`` squares).
    """

    def __init__(self, *, shape, tile, form, lanes, base=0):
        _check_form(form)
        _check_lanes(lanes)
        if len(shape) != 4 or shape[2] != shape[3] or len(tile) != 2:
            raise ConfigError(f"need shape (M, C, K, K) and tile (tm, tn), not {shape!r} and "
                              f"{tile!r}")
        for name, v in zip(("M", "C", "K", "tm", "tn"), (*shape[:3], *tile)):
            _check_int(name, v)
        for name, v in zip(("tm", "tn"), tile):
            if v % lanes:
                raise ConfigError(f"weight tile {name}={v} must be a multiple of the bus "
                                  f"lanes {lanes}")
        _check_int("base", base, 0)
        self.shape, self.tile, self.form, self.lanes, self.base = \
            tuple(shape), tuple(tile), form, lanes, base
        self._addr, self._size = (self._tiled() if form == "tiled" else self._naive())

    @property
    def padded_shape(self):
        m, c, k, _ = self.shape
        if self.form == "naive":
            return self.shape
        return (round_up(m, self.lanes), round_up(c, self.lanes), k, k)

    def _naive(self):
        size = int(np.prod(self.shape))
        idx = np.arange(size, dtype=np.int64).reshape(self.shape)
        return self.base + idx * ELEM_BYTES, size * ELEM_BYTES

    def _tiled(self):
        m, c, k, _ = self.padded_shape
        tm, tn = self.tile
        lanes = self.lanes
        addr = np.empty((m, c, k, k), dtype=np.int64)
        cursor = self.base
        for m0, bm in _spans(m, tm):
            for c0, bc in _spans(c, tn):
                inner = np.arange(k * k * bc * bm, dtype=np.int64)
                # storage order (ky, kx, group, m, lane) -> index as [m, c, ky, kx]
                block = inner.reshape(k, k, bc // lanes, bm, lanes)
                block = block.transpose(3, 2, 4, 0, 1).reshape(bm, bc, k, k)
                addr[m0:m0 + bm, c0:c0 + bc] = cursor + block * ELEM_BYTES
                cursor += k * k * bc * bm * ELEM_BYTES
        self._full = addr
        mo, co = self.shape[:2]
        return addr[:mo, :co], cursor - self.base

    def tiles(self):
        """Yield every block as ``(m0, bm, c0, bc)`` in storage order."""
        m, c, _, _ = self.padded_shape
        for m0, bm in _spans(m, self.tile[0]):
            for c0, bc in _spans(c, self.tile[1]):
                yield m0, bm, c0, bc

    def region_addresses(self, m0, bm, c0, bc):
        """Return the addresses of a block, padding channels (tiled form) included."""
        full = self._full if self.form == "tiled" else self._addr
        return full[m0:m0 + bm, c0:c0 + bc]


@dataclass(frozen=True)
class Segment:
    """A contiguous run of ``nbytes`` bytes at byte address ``addr``."""
    addr: int
    nbytes: int


def runs(addresses):
    """Return the ``Segment`` runs covering element ``addresses`` in ascending order."""
    a = np.unique(np.asarray(addresses, dtype=np.int64).ravel())
    if a.size == 0:
        return []
    breaks = np.nonzero(np.diff(a) != ELEM_BYTES)[0]
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [a.size - 1]))
    return [Segment(int(a[s]), int(a[e] - a[s]) + ELEM_BYTES) for s, e in zip(starts, ends)]


def split_bursts(segment, *, bus_bytes, max_beats):
    """Return the ``(addr, beats)`` INCR bursts that read or write ``segment``.

    The segment is widened to whole bus words; bursts are at most ``max_beats`` long and never
    cross a 4 KiB boundary. This is the rule ``ReshapeDMA`` implements.
    """
    start = segment.addr // bus_bytes * bus_bytes
    end = round_up(segment.addr + segment.nbytes, bus_bytes)
    out = []
    while start < end:
        to_4k = (4096 - start % 4096) // bus_bytes
        beats = min(max_beats, to_4k, (end - start) // bus_bytes)
        out.append((start, beats))
        start += beats * bus_bytes
    return out


def activation_rows(tile, lanes):
    """Return buffer rows ``[rows*cols*tc/lanes, lanes]`` of an activation tile ``[tc, h, w]``."""
    tc, h, w = tile.shape
    if tc % lanes:
        raise ValueError(f"tile channels {tc} are not a multiple of lanes {lanes}")
    return np.ascontiguousarray(tile.transpose(1, 2, 0)).reshape(-1, lanes)


def weight_rows(block, lanes):
    """Return buffer rows ``[K*K*tm*tc/lanes, lanes]`` of a weight block ``[tm, tc, K, K]``."""
    tm, tc, k, _ = block.shape
    if tc % lanes:
        raise ValueError(f"block input channels {tc} are not a multiple of lanes {lanes}")
    return np.ascontiguousarray(block.transpose(2, 3, 0, 1)).reshape(-1, lanes)
