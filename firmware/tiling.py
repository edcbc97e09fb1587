"""Conv layers as accelerator programs: tiles under the buffer budget, ping-pong halves, tokens.

A layer whose operands do not fit one half of each on-chip buffer runs as *tiles*, each one
engine COMPUTE on a sub-layer, with the tensors in DRAM in the engine's row layout
(``RowLayout``: an activation's rows ``((n * ceil(C/T) + c // T) * H + y) * W + x`` of ``T``
int16 lanes, a weight's ``T x T`` blocks ``((m // T * ceil(C/T) + c // T) * K + ky) * K +
kx``, the master / gradient words of each block after each other). ``tile_layer`` chooses the
tiles; ``layer_program`` turns them into instructions.

How each mode is cut
    FP: along output channels (the weights of a channel tile stay in ``WGT`` while every
    image and row tile of it runs: weight reuse across the batch), then images, then output
    rows when one image does not fit. A whole-height tile lets the engine pad; a row tile is
    loaded with its halo and padded on the fly by the DMA (one LOAD per image channel
    group), and the engine runs it unpadded.
    BP: along input channels (dx's) and images; one image's dy and dx stay whole (BP reads
    dy rows around each dx row, and the engine's symmetric padding cannot be cut).
    WU / UPDATE: along output and input channels, the whole batch in each tile while one
    channel tile's fits. Otherwise (or under a lifetime schedule) WU cuts one channel group
    pair along the images: its tiles after the first *add* their exact gradients to the
    ``MST`` rows (``accumulate``), so the sum is the whole batch's, and only the last one
    stores. UPDATE cuts the batch the same way: every tile but the last runs as such a WU
    into the *other* ``MST`` half (the masters' half is free of gradients), and the last
    runs as UPDATE with ``partial``: the updater adds those sums to its own block before
    the SGD, which so sees the whole batch's exact gradient (``hw/engine/updater.py``). A
    build without the SGD unit (``update_lanes`` 0) refuses that cut.

Lifetime schedule (``lifetime``: a buffer's refresh policy is ``lifetime``, i.e. none at
all) every COMPUTE is also cut short enough that what it reads dies before it expires:
at most ``retention_cycles / 2 - TILE_OVERHEAD`` cycles (``_Budget``), FP along output rows
if need be, WU along images; FP / BP tiles load their own weights. A layer whose smallest
tile is longer (BP keeps one image of ``dy`` whole) is refused by name.

The first tile's loads run before anything computes and the last tile's store after
everything, so ``_ramped`` cuts those tiles down: FP / BP the first tile's produced channels
to one group (with weight tiles of their own), then the first and the last tile to one
image; WU the first and the last tile to one output and one input group (the last one's
64-bit gradients being the longest store).

Every requantized element keeps the index it has in the whole layer (``descriptor_fields``'
``whole`` / ``origin``), so a tiled layer with stochastic rounding equals the untiled one bit
for bit.

Schedule (``layer_program``): tile ``i`` uses half ``i % 2`` of ``ACT`` and ``OUT``, and
half ``wtile % 2`` of ``WGT`` and ``MST`` (one per weight tile, or WU / UPDATE channel
tile); its loads ``L_i`` push ``l2c`` with the last LOAD, its COMPUTE ``C_i`` pops it and
pushes ``c2s`` for its STORE ``S_i``. ``L_{i+d}`` waits for the ``c2l`` of ``C_i`` and
``C_{i+d}`` for the ``s2c`` of ``S_i`` (a WU cut along the batch: the first COMPUTE of
channel tile ``k + d`` for the one store of channel tile ``k``): with ``d = 2`` (FP, BP, WU)
tile ``i+1`` loads while tile ``i`` computes and tile ``i``'s store overlaps the next
compute. UPDATE loads, updates and stores ``MST`` rows in place, so it runs with ``d = 1``
(loads overlap the previous store only); ``serial=True`` forces ``d = 1`` for every mode, for
debugging. Program order is ``L_0 .. L_{d-1}`` then ``C_i, L_{i+d}, S_i``, so the fetch never
waits on a queue whose head waits for a compute that has not been fetched.
"""

import itertools
from dataclasses import dataclass, replace

import numpy as np

from edgetrain.errors import ConfigError
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.beats import beat_ratio, beat_row
from edgetrain.hw.accel.isa import Instruction, Opcode, check_program, engine_config
from edgetrain.hw.buffers.kinds import MASTER_WORD_BITS, Buffer, master_rows_per_block
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.dma.program import dram_pattern
from edgetrain.hw.engine.descriptor import (
    MODES, LayerShape, descriptor_fields, fits, mode_rows)

__all__ = ["RowLayout", "Tile", "Transfers", "tile_layer", "lifetime_schedule",
           "layer_program", "operands", "TILE_OVERHEAD"]


def _ceil(a, b):
    return -(-a // b)


#: The tensors each mode reads and writes, and the buffer each one passes through.
OPERANDS = {
    "fp": {"x": Buffer.ACT, "w": Buffer.WGT, "y": Buffer.OUT},
    "bp": {"dy": Buffer.ACT, "w": Buffer.WGT, "dx": Buffer.OUT},
    "wu": {"x": Buffer.ACT, "dy": Buffer.OUT, "grad": Buffer.MST},
    "update": {"x": Buffer.ACT, "dy": Buffer.OUT, "mst": Buffer.MST},
}


def operands(mode):
    """Return the names of the DRAM tensors ``layer_program`` needs in ``mode``."""
    return tuple(OPERANDS[mode])


class RowLayout:
    """Byte sizes and offsets of tensors in the engine's row layout for configuration ``cfg``.

    ``act_row`` is one activation row (``T`` int16), ``wgt_row`` one weight block (``T x T``
    int16), ``block`` the master / gradient words of one block (``T x T`` 64-bit words).
    """

    def __init__(self, cfg):
        self.t = cfg.tm
        self.act_row = 2 * self.t
        self.wgt_row = 2 * self.t * self.t
        self.block = self.t * self.t * MASTER_WORD_BITS // 8

    def act_bytes(self, shape):
        n, c, h, w = shape
        return n * _ceil(c, self.t) * h * w * self.act_row

    def wgt_bytes(self, shape):
        m, c, k, _ = shape
        return _ceil(m, self.t) * _ceil(c, self.t) * k * k * self.wgt_row

    def block_bytes(self, shape):
        return self.wgt_bytes(shape) // self.wgt_row * self.block

    def bytes_of(self, mode, layer):
        """Return ``{operand: bytes}`` of ``layer`` in ``mode``."""
        x = (layer.n, layer.c, layer.h, layer.w)
        y = (layer.n, layer.m, layer.out_h, layer.out_w)
        w = (layer.m, layer.c, layer.k, layer.k)
        size = {"x": self.act_bytes(x), "dx": self.act_bytes(x), "y": self.act_bytes(y),
                "dy": self.act_bytes(y), "w": self.wgt_bytes(w), "grad": self.block_bytes(w),
                "mst": self.block_bytes(w)}
        return {name: size[name] for name in OPERANDS[mode]}


@dataclass(frozen=True)
class Tile:
    """One COMPUTE of a tiled layer.

    ``layer`` is what the engine runs. ``n0``/``nb``: images; ``o0``/``ob``: the channels
    the tile produces (FP: ``m``, BP: ``c``; WU/UPDATE: ``m``); ``r0``/``rb``: WU/UPDATE's
    input channels (else the whole ``c`` / ``m``); ``y0``/``yb``: FP output rows; ``pad``:
    ``(top, bottom)`` rows of zeros the DMA inserts (a row tile; the engine does not pad), or
    ``None`` (a whole-height tile; the engine pads). ``wtile`` numbers the weight tiles
    (WU / UPDATE: the channel tiles, whose ``MST`` half is ``wtile % 2``). A WU cut along
    the batch has several tiles per channel tile: ``acc`` on all but the first (their
    gradients are added to the ``MST`` rows), ``stores`` on the last only (the summed
    gradients go to DRAM after it). An UPDATE cut along the batch runs its tiles but the
    last in ``mode`` ``"wu"`` (into the other ``MST`` half), the last with ``partial``.
    """
    layer: LayerShape
    n0: int
    nb: int
    o0: int
    ob: int
    r0: int
    rb: int
    y0: int
    yb: int
    pad: tuple | None
    wtile: int
    acc: bool = False
    stores: bool = True
    mode: str | None = None
    partial: bool = False

    @property
    def continues(self):
        """Whether the tile adds to the previous tile's channel tile (same ``MST`` slot)."""
        return self.acc or self.partial

    def engine_mode(self, mode):
        """The mode the engine runs this tile of a ``mode`` layer in."""
        return self.mode or mode

    def origin(self, mode):
        """The tile's place in the whole layer (``descriptor_fields``' ``origin``)."""
        if mode == "fp":
            return {"n": self.n0, "m": self.o0, "y": self.y0}
        if mode == "bp":
            return {"n": self.n0, "c": self.o0}
        return {"m": self.o0, "c": self.r0}


def _spans(total, size):
    return [(a, min(size, total - a)) for a in range(0, total, size)]


def _largest(limit, ok):
    """The largest ``v`` in ``1..limit`` with ``ok(v)``, or 0."""
    for v in range(limit, 0, -1):
        if ok(v):
            return v
    return 0


def _sub(layer, **changes):
    return replace(layer, **changes)


def _channel_tiles(channels, t):
    """Channel-tile sizes to try, largest first: multiples of ``t`` (the last: all)."""
    for size in range(_ceil(channels, t) * t, 0, -t):
        yield min(size, channels)


def _row_tile(layer, oy0, rows):
    """The engine layer of output rows ``oy0 ..`` (``rows``) and its DMA padding."""
    s, k, p = layer.stride, layer.k, layer.pad
    first = oy0 * s                      # first padded input row
    height = (rows - 1) * s + k
    top = max(0, p - first)
    bottom = max(0, first + height - p - layer.h)
    return _sub(layer, n=1, h=height, w=layer.w + 2 * p, pad=0), (top, bottom)


def _fp_tiles(ecfg, layer, ok):
    t = ecfg.tm
    for mb in _channel_tiles(layer.m, t):
        nb = _largest(layer.n, lambda n: ok("fp", _sub(layer, n=n, m=mb)))
        if nb:
            return [Tile(_sub(layer, n=b, m=mc), n0, b, m0, mc, 0, layer.c, 0, layer.out_h,
                         None, j)
                    for j, (m0, mc) in enumerate(_spans(layer.m, mb))
                    for n0, b in _spans(layer.n, nb)]
        if layer.w + 2 * layer.pad > ecfg.max_size:
            raise ConfigError(
                f"fp layer cannot be tiled: one image needs more rows than a buffer half "
                f"holds, and a row tile would be {layer.w + 2 * layer.pad} columns wide with "
                f"its padding, over max_size={ecfg.max_size}: raise max_size or the depths")
        rows = _largest(layer.out_h,
                        lambda r: ok("fp", _sub(_row_tile(layer, 0, r)[0], m=mb)))
        if rows:
            tiles = []
            for j, (m0, mc) in enumerate(_spans(layer.m, mb)):
                for n0 in range(layer.n):
                    for y0, r in _spans(layer.out_h, rows):
                        sub, pad = _row_tile(layer, y0, r)
                        tiles.append(Tile(_sub(sub, m=mc), n0, 1, m0, mc, 0, layer.c, y0, r,
                                          pad, j))
            return tiles
    raise _refused(ecfg, "fp", _sub(_row_tile(layer, 0, 1)[0], m=min(t, layer.m)),
                   "one output row of one output channel tile", ok)


def _bp_tiles(ecfg, layer, ok):
    t = ecfg.tm
    for cb in _channel_tiles(layer.c, t):
        nb = _largest(layer.n, lambda n: ok("bp", _sub(layer, n=n, c=cb)))
        if nb:
            return [Tile(_sub(layer, n=b, c=cc), n0, b, c0, cc, 0, layer.m, 0, layer.h, None, j)
                    for j, (c0, cc) in enumerate(_spans(layer.c, cb))
                    for n0, b in _spans(layer.n, nb)]
    raise _refused(ecfg, "bp", _sub(layer, n=1, c=min(t, layer.c)),
                   "one image of one input channel tile (BP is not split along rows)", ok)


def _wu_tiles(ecfg, mode, layer, ok):
    t = ecfg.tm
    for mb in _channel_tiles(layer.m, t):
        cb = _largest(_ceil(layer.c, t), lambda g: ok(mode, _sub(
            layer, m=mb, c=min(g * t, layer.c))))
        if cb:
            cb = min(cb * t, layer.c)
            return [Tile(_sub(layer, m=mc, c=cc), 0, layer.n, m0, mc, c0, cc, 0, layer.out_h,
                         None, 0)
                    for m0, mc in _spans(layer.m, mb) for c0, cc in _spans(layer.c, cb)]
    one = _sub(layer, m=min(t, layer.m), c=min(t, layer.c))
    if mode == "update" and not ecfg.update_lanes:
        raise ConfigError(f"update layer cannot be tiled: the whole batch {layer.n} of one "
                          f"channel tile does not fit, and a batch cut needs the SGD unit "
                          f"(update_lanes 0): set update_lanes >= 1 or lower the batch")
    nb = _largest(layer.n, lambda n: ok("wu", _sub(one, n=n)) and (
        mode == "wu" or ok(mode, _sub(one, n=n), partial=True)))
    if nb:       # the batch of one channel tile in parts, their gradients summed in MST
        return [_batch_part(mode, _sub(layer, n=b, m=mc, c=cc), n0, b, m0, mc, c0, cc,
                            n0 + b == layer.n)
                for m0, mc in _spans(layer.m, t) for c0, cc in _spans(layer.c, t)
                for n0, b in _spans(layer.n, nb)]
    raise _refused(ecfg, mode, _sub(one, n=1), "one image of one channel tile", ok)


def _batch_part(mode, sub, n0, nb, m0, mc, c0, cc, last):
    """Images ``n0 ..`` (``nb``) of a channel tile cut along the batch: WU adds to the sum
    of the tiles before (``acc``) and the last stores it; UPDATE's last tile is the SGD
    with those sums (``partial``), the ones before are WU tiles."""
    tile = Tile(sub, n0, nb, m0, mc, c0, cc, 0, sub.out_h, None, 0, acc=n0 > 0, stores=last)
    if mode == "wu":
        return tile
    if last:
        return replace(tile, acc=False, partial=True)
    return replace(tile, mode="wu", stores=False)


#: The axes a tile is cut along by ``_cut``: its first index and count fields, and the
#: field of its ``layer`` they size (produced channels: per mode).
_AXES = {"image": ("n0", "nb", "n"), "in": ("r0", "rb", "c"),
         "fp": ("o0", "ob", "m"), "bp": ("o0", "ob", "c"), "wu": ("o0", "ob", "m")}


def _cut(tile, axis, sizes):
    """``tile`` cut along ``axis`` (of ``_AXES``) into consecutive parts of ``sizes``."""
    start, count, key = _AXES[axis]
    parts, at = [], getattr(tile, start)
    for size in sizes:
        parts.append(replace(tile, layer=_sub(tile.layer, **{key: size}),
                             **{start: at, count: size}))
        at += size
    return parts


def _one_off(tile, axis, unit, first):
    """``tile`` with one ``unit`` of ``axis`` cut off its start (``first``) or its end (the
    last, possibly partial, unit); the tile alone if it has one unit only."""
    total = getattr(tile, _AXES[axis][1])
    if total <= unit:
        return [tile]
    lo = unit if first else (_ceil(total, unit) - 1) * unit
    return _cut(tile, axis, [lo, total - lo])


def _ramped(mode, tiles, t):
    """Shorten what no compute overlaps: the first tile's loads (and WU's last store).

    The first tile's LOADs run before anything computes, the last tile's STORE after, so
    their tiles are cut down: the first tile's produced channels to one group (its weight
    load, FP / BP, or its ``dy``, WU), then also WU's input channels; WU's last tile the
    same way (its gradient store is 64-bit words). FP / BP give the head and the rest of
    the first tile weight tiles of their own, and the images after them reload the whole
    weight tile: more load traffic, all of it overlapped with compute. FP / BP also cut
    the first and the last tile to one image (WU cannot: it sums over the batch).
    """
    if mode not in ("fp", "bp", "wu") or not tiles:
        return tiles
    first, *rest = _one_off(tiles[0], mode, t, first=True)
    if mode == "wu":
        body = [*rest, *tiles[1:]]
        if body:
            *rest, last = _one_off(body[-1], mode, t, first=False)
            body = [*body[:-1], *rest, *_in_groups(last, t)]
        return _in_groups(first, t) + body
    if rest:
        tiles = [replace(first, wtile=0), replace(rest[0], wtile=1),
                 *(replace(x, wtile=x.wtile + 2) for x in tiles[1:])]
    tiles = [*_one_off(tiles[0], "image", 1, first=True), *tiles[1:]]
    return [*tiles[:-1], *_one_off(tiles[-1], "image", 1, first=False)]


def _in_groups(tile, t):
    """A WU tile cut into one tile per input group."""
    return _cut(tile, "in", [size for _, size in _spans(tile.rb, t)])


def _refused(ecfg, mode, smallest, what, ok):
    """The ``ConfigError`` of a layer whose smallest tile does not fit (the buffers or the
    lifetime budget ``ok``)."""
    full = {b: need for b, need in mode_rows(ecfg, mode, smallest).items()
            if need > b.depth(ecfg)}
    if not full:
        return ConfigError(
            f"{mode} layer cannot be tiled for the lifetime refresh policy: {what} computes "
            f"for {ok.cycles(mode, smallest)} cycles, and its data must die within "
            f"{ok.bound} (half of retention_cycles {ecfg.retention_cycles}, less the "
            f"engine's overhead): use refresh policy live for act/out or raise "
            f"retention_cycles")
    over = [f"{b.port_name} {need} > {b.depth(ecfg)}" for b, need in full.items()]
    fix = ", ".join(sorted({b.depth_field for b in full}))
    return ConfigError(f"{mode} layer cannot be tiled: {what} needs more rows than a buffer "
                       f"half holds ({'; '.join(over)}): raise {fix} or shrink the layer")


#: Cycles a COMPUTE takes beyond its taps (dispatch, pipeline fill and drain), reserved
#: from a lifetime schedule's budget.
TILE_OVERHEAD = 64


class _Budget:
    """Whether a tile fits: one half of every buffer and, for a lifetime schedule, a
    COMPUTE short enough that its data die before they expire.

    With double buffering a row is written while the previous tile computes and read until
    its own tile's COMPUTE ends, so a schedule whose COMPUTEs each take at most ``bound``
    cycles keeps every row under ``2 * bound + 2 * TILE_OVERHEAD <= retention_cycles``.
    A COMPUTE takes its taps (``ceil(M/T) ceil(C/T) N max(H W, OH OW) K^2``), or in WU the
    rows the gradient writer adds into ``MST`` per block if those are more (UPDATE: twice
    them, read and written back; with ``partial`` also the other half's rows read and
    added first: ``3 R + 2``).
    """

    def __init__(self, cfg, ecfg, lifetime):
        self.ecfg = ecfg
        self.bound = (cfg.retention_cycles // 2 - TILE_OVERHEAD) if lifetime else None
        self.mst_rows = master_rows_per_block(cfg)

    def cycles(self, mode, layer, partial=False):
        t = self.ecfg.tm
        per_block = layer.n * max(layer.h * layer.w, layer.out_h * layer.out_w)
        if mode in ("wu", "update"):      # MST rows per block: written, or read and written
            rows = {"wu": self.mst_rows, "update": 2 * self.mst_rows}[mode]
            if partial:                   # and the partial sums read and added first
                rows += self.mst_rows + 2
            per_block = max(per_block, rows)
        return _ceil(layer.m, t) * _ceil(layer.c, t) * layer.k ** 2 * per_block

    def __call__(self, mode, layer, partial=False):
        return fits(self.ecfg, mode, layer) and (
            self.bound is None or self.cycles(mode, layer, partial) <= self.bound)


def lifetime_schedule(cfg):
    """Return whether ``cfg``'s programs must keep every buffered row under its retention
    (``refresh`` policy ``lifetime`` for a buffer that DMA loads fill: ``act``, ``wgt`` or
    ``out``): no refresh will keep it."""
    return "lifetime" in cfg.refresh


def tile_layer(cfg, mode, layer, *, lifetime=None):
    """Return the tiles (``Tile``) that run ``layer`` in ``mode`` on ``cfg``'s accelerator.

    Each tile's ``layer`` fits one half of every buffer. With ``lifetime`` (default:
    ``lifetime_schedule(cfg)``) every COMPUTE is also short enough that what it reads dies
    before ``retention_cycles`` (``_Budget``), and every FP / BP tile loads its own weights.
    Raises ``ConfigError`` naming the buffer and the depth field (or the lifetime budget)
    when even the smallest tile does not fit.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    ecfg = engine_config(cfg)
    layer.check(cfg)
    lifetime = lifetime_schedule(cfg) if lifetime is None else lifetime
    ok = _Budget(cfg, ecfg, lifetime)
    if mode == "fp":
        tiles = _fp_tiles(ecfg, layer, ok)
    elif mode == "bp":
        tiles = _bp_tiles(ecfg, layer, ok)
    else:
        tiles = _wu_tiles(ecfg, mode, layer, ok)
    tiles = _ramped(mode, tiles, ecfg.tm)
    if mode in ("wu", "update"):          # number the channel tiles: their MST halves
        slot = -1
        tiles = [replace(x, wtile=(slot := slot + (not x.continues))) for x in tiles]
    elif lifetime:                        # weights die young too: reloaded by every tile
        tiles = [replace(x, wtile=i) for i, x in enumerate(tiles)]
    for tile in tiles:
        tile.layer.check(ecfg)
    return tiles


class Transfers:
    """LOAD / STORE bodies between DRAM runs and consecutive rows of a buffer half."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.bus = cfg.axi_data_bits // 8

    def rows(self, buffer, half, row, runs, run_bytes, *, store=False):
        """Move ``len(runs) * run_bytes`` bytes: the runs starting at the byte addresses
        ``runs`` (in order) to / from rows ``row ..`` of ``buffer``'s ``half``."""
        beats = (np.asarray(runs, dtype=np.int64)[:, None] +
                 np.arange(0, run_bytes, self.bus, dtype=np.int64)[None, :]).ravel()
        desc = Descriptor(**dram_pattern(beats, self.bus, self.cfg.axi_addr_bits),
                          buf_addr=beat_row(self.cfg, buffer, half, row), n0=beats.size,
                          store=int(store))
        return {"buffer": buffer, "dma": vars(desc)}

    def padded(self, half, row, start, real_rows, width, pad, top, bottom):
        """LOAD ``real_rows`` rows of ``width`` activation rows from ``start`` into ``ACT``
        with ``pad`` zero columns each side and ``top`` / ``bottom`` zero rows."""
        ratio = beat_ratio(self.cfg, Buffer.ACT)
        run = real_rows * width * ratio * self.bus
        beats = np.arange(start, start + run, self.bus, dtype=np.int64)
        wide = width + 2 * pad
        desc = Descriptor(**dram_pattern(beats, self.bus, self.cfg.axi_addr_bits),
                          buf_addr=beat_row(self.cfg, Buffer.ACT, half, row),
                          n0=ratio, s0=1, n1=wide, s1=ratio,
                          n2=real_rows + top + bottom, s2=wide * ratio, pad_top=top,
                          pad_bottom=bottom, pad_left=pad, pad_right=pad)
        return {"buffer": Buffer.ACT, "dma": vars(desc)}


def _act_runs(rl, shape, at, n0, nb, g0, gb, y0=0):
    """DRAM byte addresses of the runs of activation ``shape`` ``[N, C, H, W]`` at ``at`` (row
    layout ``rl``) that hold images ``n0 ..`` (``nb``), channel groups ``g0 ..`` (``gb``) and
    rows ``y0 ..`` (all columns), one run per (image, group), in buffer order."""
    n, c, h, w = shape
    groups = _ceil(c, rl.t)
    return [at + (((b * groups + g) * h + y0) * w) * rl.act_row
            for b in range(n0, n0 + nb) for g in range(g0, g0 + gb)]


class _Program:
    """The instructions of one tiled layer (see the module docstring for the schedule)."""

    def __init__(self, cfg, mode, layer, at, options, serial):
        self.cfg, self.mode, self.layer, self.at = cfg, mode, layer, at
        self.options = options
        self.rl = RowLayout(cfg)
        self.xfer = Transfers(cfg)
        self.d = 1 if serial or mode == "update" else 2

    def loads(self, i, tile, first_of_wtile):
        """The LOAD bodies of tile ``i``."""
        lay, rl, t, half = self.layer, self.rl, self.rl.t, i % 2
        xs = (lay.n, lay.c, lay.h, lay.w)
        ys = (lay.n, lay.m, lay.out_h, lay.out_w)
        bodies = []
        if self.mode == "fp":
            if first_of_wtile:
                bodies.append(self._weights(tile, tile.wtile % 2))
            if tile.pad is None:
                bodies.append(self._act(Buffer.ACT, half, self.at["x"], xs, tile.n0, tile.nb,
                                        0, _ceil(lay.c, t)))
            else:
                bodies += self._padded_rows(tile, half, xs)
        elif self.mode == "bp":
            if first_of_wtile:
                bodies.append(self._weights(tile, tile.wtile % 2))
            bodies.append(self._act(Buffer.ACT, half, self.at["dy"], ys, tile.n0, tile.nb, 0,
                                    _ceil(lay.m, t)))
        else:
            bodies.append(self._act(Buffer.ACT, half, self.at["x"], xs, tile.n0, tile.nb,
                                    tile.r0 // t, _ceil(tile.rb, t)))
            bodies.append(self._act(Buffer.OUT, half, self.at["dy"], ys, tile.n0, tile.nb,
                                    tile.o0 // t, _ceil(tile.ob, t)))
            if tile.engine_mode(self.mode) == "update":
                bodies.append(self._blocks(tile, tile.wtile % 2, self.at["mst"],
                                           store=False))
        return bodies

    def _act(self, buffer, half, at, shape, n0, nb, g0, gb):
        """A whole-height run of images and channel groups, one LOAD."""
        n, c, h, w = shape
        return self.xfer.rows(buffer, half, 0, _act_runs(self.rl, shape, at, n0, nb, g0,
                                                         gb), h * w * self.rl.act_row)

    def _padded_rows(self, tile, half, xs):
        """The halo rows of an FP row tile, padded by the DMA: one LOAD per channel group."""
        lay, sub = self.layer, tile.layer
        top, bottom = tile.pad
        real = sub.h - top - bottom
        y_first = tile.y0 * lay.stride - lay.pad + top
        return [self.xfer.padded(half, g * sub.h * sub.w, run, real, lay.w, lay.pad, top,
                                 bottom)
                for g, run in enumerate(_act_runs(self.rl, xs, self.at["x"], tile.n0,
                                                  1, 0, _ceil(lay.c, self.rl.t), y_first))]

    def _weight_runs(self, tile):
        """(first block of each run, blocks per run) of ``tile``'s weight blocks in WGT-row
        order: for each of its output groups, the run of its input groups."""
        lay, t, kk = self.layer, self.rl.t, self.layer.k ** 2
        cg = _ceil(lay.c, t)
        outs = range(tile.o0 // t, tile.o0 // t + _ceil(tile.ob, t))
        if self.mode == "bp":     # every output group, the tile's (dx) input groups
            outs, g0, gb = range(_ceil(lay.m, t)), tile.o0 // t, _ceil(tile.ob, t)
        elif self.mode == "fp":   # the tile's output groups, every input group
            g0, gb = 0, cg
        else:                     # the tile's output and input groups
            g0, gb = tile.r0 // t, _ceil(tile.rb, t)
        return [(m * cg + g0) * kk for m in outs], gb * kk

    def _weights(self, tile, half):
        runs, blocks = self._weight_runs(tile)
        size = self.rl.wgt_row
        return self.xfer.rows(Buffer.WGT, half, 0, [self.at["w"] + r * size for r in runs],
                              blocks * size)

    def _blocks(self, tile, half, at, *, store):
        """The MST rows of the tile's weight blocks (WU gradients, UPDATE masters)."""
        runs, blocks = self._weight_runs(tile)
        size = self.rl.block
        return self.xfer.rows(Buffer.MST, half, 0, [at + r * size for r in runs],
                              blocks * size, store=store)

    def store(self, i, tile):
        lay, rl, t, half = self.layer, self.rl, self.rl.t, i % 2
        if self.mode in ("wu", "update"):
            name = "grad" if self.mode == "wu" else "mst"
            return self._blocks(tile, tile.wtile % 2, self.at[name], store=True)
        if self.mode == "fp":
            shape = (lay.n, lay.m, lay.out_h, lay.out_w)
            runs = _act_runs(rl, shape, self.at["y"], tile.n0, tile.nb, tile.o0 // t,
                             _ceil(tile.ob, t), tile.y0)
            run = tile.yb * lay.out_w * rl.act_row
        else:
            shape = (lay.n, lay.c, lay.h, lay.w)
            runs = _act_runs(rl, shape, self.at["dx"], tile.n0, tile.nb, tile.o0 // t,
                             _ceil(tile.ob, t))
            run = lay.h * lay.w * rl.act_row
        return self.xfer.rows(Buffer.OUT, half, 0, runs, run, store=True)

    def compute(self, i, tile, last_of_wtile):
        """The COMPUTE body of tile ``i``: its halves, whether it adds into ``MST``, and the
        buffers whose data die with it (released): what it reads from ``ACT`` (and WU's
        ``dy`` in ``OUT``), and ``WGT`` after the last tile of a weight tile; FP / BP
        results in ``OUT`` are released by their STORE's reads. An UPDATE's WU tiles sum
        their gradients in the other ``MST`` half than the channel tile's masters."""
        mode = tile.engine_mode(self.mode)
        sums = mode != self.mode
        halves = {Buffer.ACT: i % 2, Buffer.OUT: i % 2, Buffer.MST: (tile.wtile + sums) % 2,
                  Buffer.WGT: tile.wtile % 2}
        fields = descriptor_fields(engine_config(self.cfg), mode, tile.layer,
                                   whole=self.layer, origin=tile.origin(self.mode),
                                   partial=tile.partial, **self.options)
        dead = {Buffer.ACT} | ({Buffer.OUT} if self.mode in ("wu", "update") else
                               {Buffer.WGT} if last_of_wtile else set())
        return {"halves": sum(h << b.value for b, h in halves.items()),
                "accumulate": int(tile.acc), "release": sum(1 << b.value for b in dead),
                "desc": fields}

    def build(self, tiles, finish):
        """The program: loads, computes and stores of ``tiles`` with their tokens.

        A tile's *slot* is its result: an ``OUT`` half (FP / BP) or a channel tile's
        ``MST`` half (WU / UPDATE), stored once after its last tile (``stores``). The first
        COMPUTE of slot ``k`` waits for the store of slot ``k - d``, which reads the half it
        is about to write; that store gives the token (the last one gives FINISH's).
        """
        n, d = len(tiles), self.d
        slot = list(itertools.accumulate((not x.continues for x in tiles), initial=-1))[1:]
        slots = slot[-1] + 1 if tiles else 0
        groups = []
        for i, tile in enumerate(tiles):
            first = i == 0 or tiles[i - 1].wtile != tile.wtile
            bodies = self.loads(i, tile, first)
            last = len(bodies) - 1
            groups.append([Instruction(Opcode.LOAD, body, pop_next=j == 0 and i >= d,
                                       push_next=j == last) for j, body in enumerate(bodies)])
        program = [insn for group in groups[:d] for insn in group]
        for i, tile in enumerate(tiles):
            k = slot[i]
            last_of_wtile = i == n - 1 or tiles[i + 1].wtile != tile.wtile
            program.append(Instruction(Opcode.COMPUTE, self.compute(i, tile, last_of_wtile),
                                       pop_prev=True,
                                       pop_next=not tile.continues and k >= d,
                                       push_prev=i + d < n, push_next=tile.stores))
            if i + d < n:
                program += groups[i + d]
            if tile.stores:
                program.append(Instruction(Opcode.STORE, self.store(i, tile), pop_prev=True,
                                           push_prev=k + d < slots or k == slots - 1))
        if finish:
            program.append(Instruction(Opcode.FINISH, pop_next=True))
        return program


def layer_program(cfg, mode, layer, at, *, tiles=None, serial=False, finish=True, **options):
    """Return the instructions that run ``layer`` in ``mode`` from DRAM to DRAM.

    ``at`` maps each of ``operands(mode)`` to its byte address (``RowLayout`` form); UPDATE
    reads and writes ``mst`` in place. ``options`` are ``descriptor_fields``' requantization
    and SGD settings (``shift``, ``stochastic``, ``key``, ``relu``, ``mu_q``, ...).
    ``tiles`` defaults to ``tile_layer``; ``serial`` runs one tile at a time. With
    ``finish`` the program ends in FINISH (it then waits for the last store).
    """
    missing = [name for name in OPERANDS.get(mode, {}) if name not in at]
    if mode in OPERANDS and missing:
        raise ConfigError(f"{mode} layer program needs the DRAM address of "
                          f"{', '.join(missing)}")
    tiles = tile_layer(cfg, mode, layer) if tiles is None else tiles
    for name, addr in at.items():
        if addr % (cfg.axi_data_bits // 8):
            raise ConfigError(f"DRAM address of {name} {addr:#x} is not a multiple of the "
                              f"{cfg.axi_data_bits // 8}-byte bus")
    program = _Program(cfg, mode, layer, at, options, serial).build(tiles, finish)
    if finish:
        check_program(program)
    return program
