"""The conv engine's layer descriptor: what one run computes, as runtime values.

A descriptor names the mode and every loop bound, address stride and requantization setting
of one layer (one tile, once a planner splits layers). It is the *only* place layer shapes
reach the hardware, so one build runs every layer and every random test shape.

``LayerShape`` is the host-side view (N, C, H, W, M, K, stride, pad). ``descriptor_fields``
turns it into the hardware fields; ``DescriptorLayout`` is the bit layout the engine accepts
on its ``desc`` stream; ``pack_descriptor`` packs the fields into that integer with the
layout's ``const`` (testbenches and the driver use it; ``DescriptorLayout(cfg).from_bits``
reads one back).

Buffer layouts (``hw.buffers.Buffer``; all three use the same row order, ``tm == tn == T``
lanes per row):

* ``ACT`` rows: ``((n * ceil(C/T) + c // T) * H + y) * W + x`` holding channels
  ``c // T * T ..`` (lane ``c % T``). FP reads x, BP reads dy (channels M, extent Ho x Wo),
  WU reads x.
* ``OUT`` rows: same order over the output tensor (FP: y ``[N, M, Ho, Wo]``, BP: dx
  ``[N, C, H, W]``); a row holds T int16 lanes then T ReLU-mask bits. WU reads dy here.
* ``WGT`` rows: ``((m // T * ceil(C/T) + c // T) * K + ky) * K + kx``, a T x T block, lane
  ``(m % T) * T + c % T``. BP reads the same rows and swaps the block's roles on the way in.
"""

from dataclasses import dataclass

from amaranth.hdl import Shape, signed
from amaranth.lib import data

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig

__all__ = ["MODES", "LayerShape", "DescriptorLayout", "descriptor_fields", "pack_descriptor",
           "buffer_rows", "mode_rows", "fits"]

MODES = ("fp", "bp", "wu", "update")


def _ceil(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class LayerShape:
    """One convolution layer: input ``[n, c, h, w]``, weights ``[m, c, k, k]``."""
    n: int
    c: int
    h: int
    w: int
    m: int
    k: int
    stride: int = 1
    pad: int = 0

    @property
    def out_h(self):
        return (self.h + 2 * self.pad - self.k) // self.stride + 1

    @property
    def out_w(self):
        return (self.w + 2 * self.pad - self.k) // self.stride + 1

    def check(self, cfg):
        """Raise ``ConfigError`` naming the value if this layer does not fit ``cfg``."""
        for name in ("n", "c", "h", "w", "m", "k", "stride"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"layer {name} must be a positive integer, not {v!r}")
        limits = (("n", cfg.max_batch, "max_batch"), ("c", cfg.max_channels, "max_channels"),
                  ("m", cfg.max_channels, "max_channels"), ("h", cfg.max_size, "max_size"),
                  ("w", cfg.max_size, "max_size"), ("k", cfg.max_kernel, "max_kernel"))
        for name, limit, field in limits:
            if getattr(self, name) > limit:
                raise ConfigError(f"layer {name}={getattr(self, name)} exceeds the config's "
                                  f"{field}={limit}: split the layer or raise {field}")
        if self.stride not in (1, 2):
            raise ConfigError(f"stride must be 1 or 2, not {self.stride!r}")
        if not isinstance(self.pad, int) or not 0 <= self.pad < self.k:
            raise ConfigError(f"pad must be in 0..k-1={self.k - 1}, not {self.pad!r}")
        if self.out_h < 1 or self.out_w < 1:
            raise ConfigError(f"kernel {self.k} is larger than the padded input "
                              f"{self.h + 2 * self.pad}x{self.w + 2 * self.pad}")
        if self.out_h > cfg.max_size or self.out_w > cfg.max_size:
            # The WU reduction N*Ho*Wo sizes the accumulators through max_size.
            raise ConfigError(f"output {self.out_h}x{self.out_w} exceeds the config's "
                              f"max_size={cfg.max_size} (padding {self.pad} grows the map): "
                              f"lower pad or raise max_size")


def buffer_rows(cfg, layer):
    """Return ``{Buffer: rows}``: the ``ACT``, ``WGT`` and ``OUT`` rows of ``layer`` in FP."""
    t = cfg.tm
    ct, mt = _ceil(layer.c, t), _ceil(layer.m, t)
    return {Buffer.ACT: layer.n * ct * layer.h * layer.w,
            Buffer.WGT: mt * ct * layer.k ** 2,
            Buffer.OUT: layer.n * mt * layer.out_h * layer.out_w}


def _bits(v):
    return max(1, int(v).bit_length())


def mode_rows(cfg, mode, layer):
    """Return ``{Buffer: rows}`` that ``layer`` uses in ``mode`` (``buffer_rows``; BP reads dy,
    the FP output's rows, from ``ACT`` and writes dx, the input's, to ``OUT``)."""
    rows = buffer_rows(cfg, layer)
    if mode == "bp":
        rows |= {Buffer.ACT: rows[Buffer.OUT], Buffer.OUT: rows[Buffer.ACT]}
    return rows


def fits(cfg, mode, layer):
    """Return whether ``layer`` in ``mode`` fits the buffer depths of ``cfg``."""
    return all(need <= buffer.depth(cfg) for buffer, need in mode_rows(cfg, mode, layer).items())


def DescriptorLayout(cfg):
    """Return the ``StructLayout`` of a descriptor for configuration ``cfg``."""
    t = cfg.tm
    size, tiles = _bits(cfg.max_size), _bits(_ceil(cfg.max_channels, t))
    act, wgt, out = (b.addr_bits(cfg) for b in (Buffer.ACT, Buffer.WGT, Buffer.OUT))
    return data.StructLayout({
        "mode": 2, "batch": _bits(cfg.max_batch),
        "out_tiles": tiles, "red_tiles": tiles, "out_ch": _bits(cfg.max_channels),
        "red_ch": _bits(cfg.max_channels),
        "out_h": size, "out_w": size, "in_h": size, "in_w": size,
        "kernel": _bits(cfg.max_kernel), "stride2": 1, "pad": _bits(cfg.max_kernel),
        "act_n": act, "act_plane": act, "out_n": out, "out_plane": out,
        "w_out": wgt, "w_red": wgt, "idx_n": 32, "idx_tile": 32, "idx_lane": 32,
        "idx_off": 32,
        "shift": signed(8), "stochastic": 1, "relu": 1, "key": 32,
        # UPDATE only: SGD with momentum (``shift`` is g_shift, ``key`` the gradient's key).
        "w_idx_out": _bits(cfg.max_channels * cfg.max_kernel ** 2),
        "mu_q": 16, "lr_q": 16, "lr_shift": 8, "key_v": 32, "key_w": 32,
        # UPDATE over a batch cut: add the other MST half's partial sums (``WeightUpdater``).
        "partial": 1,
    })


def descriptor_fields(cfg, mode, layer, *, shift=0, stochastic=False, key=0, relu=False,
                      mu_q=0, lr_q=0, lr_shift=0, key_v=0, key_w=0, partial=False, whole=None,
                      origin=None):
    """Return the descriptor fields (a dict of ints) that run ``layer`` in ``mode``.

    ``shift`` is the output shift (FP/BP) or ``g_shift`` (UPDATE); ``key`` the rng key of
    the requantized tensor (UPDATE: of the weight gradient); ``mu_q``, ``lr_q``,
    ``lr_shift``, ``key_v``, ``key_w`` are the SGD settings of ``numerics.sgd_momentum``.
    ``partial`` (UPDATE with an SGD unit only) adds the gradient sums of the batch's earlier
    tiles, read from the other ``MST`` half, to each block before the SGD.

    ``whole`` and ``origin`` run ``layer`` as one tile of the layer ``whole``: ``origin``
    (``{"n", "m", "c", "y"}``, missing keys 0) is where the tile's first image, output
    channel (FP, UPDATE), input channel (BP, UPDATE) and output row (FP, BP) sit in the
    whole layer's tensors, so every requantized element gets the index it has there
    (``idx_off``, ``idx_n``, ``idx_tile``, ``idx_lane``, ``w_idx_out``) and stochastic
    rounding draws the random words the untiled layer would.

    Raises ``ConfigError`` when the layer exceeds the configuration or the buffer depths.
    """
    if not isinstance(cfg, AcceleratorConfig):
        raise TypeError(f"cfg must be an AcceleratorConfig, not {cfg!r}")
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    layer.check(cfg)
    for buffer, need in mode_rows(cfg, mode, layer).items():
        if need > buffer.depth(cfg):
            raise ConfigError(f"layer needs {need} {buffer.port_name} buffer rows but the "
                              f"depth is {buffer.depth(cfg)}: tile the layer or raise "
                              f"{buffer.depth_field}")
    if not -128 <= shift < 128:
        raise ConfigError(f"shift must fit in signed 8 bits, not {shift!r}")
    if not (0 <= mu_q < 1 << 16 and 0 <= lr_q < 1 << 16 and 0 <= lr_shift < 256):
        raise ConfigError(f"mu_q and lr_q must be unsigned 16-bit and lr_shift 0..255, not "
                          f"{mu_q!r}, {lr_q!r}, {lr_shift!r}")
    if partial and (mode != "update" or not cfg.update_lanes):
        raise ConfigError(f"partial adds earlier batch tiles' gradients before the SGD: it "
                          f"needs mode update and update_lanes >= 1, not mode {mode!r} with "
                          f"update_lanes={cfg.update_lanes}")
    t = cfg.tm
    n, c, h, w, m, k = layer.n, layer.c, layer.h, layer.w, layer.m, layer.k
    ho, wo = layer.out_h, layer.out_w
    ct, mt = _ceil(c, t), _ceil(m, t)
    if mode == "bp":
        # dy [N, M, Ho, Wo] in, dx [N, C, H, W] out: channel roles swapped.
        geo = dict(out_tiles=ct, red_tiles=mt, out_ch=c, red_ch=m, out_h=h, out_w=w,
                   in_h=ho, in_w=wo, act_n=mt * ho * wo, act_plane=ho * wo,
                   out_n=ct * h * w, out_plane=h * w, w_out=k * k, w_red=ct * k * k,
                   idx_n=c * h * w, idx_tile=t * h * w)
    else:
        geo = dict(out_tiles=mt, red_tiles=ct, out_ch=m, red_ch=c, out_h=ho, out_w=wo,
                   in_h=h, in_w=w, act_n=ct * h * w, act_plane=h * w,
                   out_n=mt * ho * wo, out_plane=ho * wo, w_out=ct * k * k, w_red=k * k,
                   idx_n=m * ho * wo, idx_tile=t * ho * wo)
    geo["idx_lane"] = geo["out_plane"]
    # A row stride whose loop has one step is multiplied by 0 only (addrgen.py), and may be
    # a whole buffer, one past its field: it is given as 0.
    unused = {"act_n": n == 1, "out_n": n == 1, "act_plane": geo["red_tiles"] == 1,
              "out_plane": geo["out_tiles"] == 1, "w_out": geo["out_tiles"] == 1}
    geo |= {name: 0 for name, one in unused.items() if one}
    index = _tile_index(t, mode, layer, whole, origin) if whole is not None else {}
    geo |= {"w_idx_out": c * k * k, "idx_off": 0} | index
    return dict(mode=MODES.index(mode), batch=n, kernel=k, stride2=int(layer.stride == 2),
                pad=layer.pad, shift=shift & 0xFF, stochastic=int(bool(stochastic)),
                relu=int(bool(relu)), key=key & 0xFFFFFFFF,
                mu_q=mu_q, lr_q=lr_q, lr_shift=lr_shift, key_v=key_v & 0xFFFFFFFF,
                key_w=key_w & 0xFFFFFFFF, partial=int(bool(partial)), **geo)


def _tile_index(t, mode, tile, whole, origin):
    """The index fields of ``tile`` run at ``origin`` inside ``whole`` (see
    ``descriptor_fields``); ``ConfigError`` if the tile does not sit inside it."""
    if not isinstance(whole, LayerShape):
        raise TypeError(f"whole must be a LayerShape, not {whole!r}")
    o = {"n": 0, "m": 0, "c": 0, "y": 0} | dict(origin or {})
    if set(o) != {"n", "m", "c", "y"}:
        raise ConfigError(f"tile origin keys are n, m, c, y, not {sorted(o)}")
    if o["m"] % t or o["c"] % t:
        raise ConfigError(f"a tile's first channels (m {o['m']}, c {o['c']}) must be "
                          f"multiples of tm={t}")
    bp = mode == "bp"
    out_w, whole_w = (tile.w, whole.w) if bp else (tile.out_w, whole.out_w)
    if out_w != whole_w or tile.k != whole.k or tile.stride != whole.stride:
        raise ConfigError(f"a tile keeps the whole layer's output width {whole_w}, kernel "
                          f"and stride: {tile} is not a tile of {whole}")
    k2 = whole.k ** 2
    if mode in ("wu", "update"):
        return {"w_idx_out": whole.c * k2, "idx_off": (o["m"] * whole.c + o["c"]) * k2}
    ch, h, w = (whole.c, whole.h, whole.w) if bp else (whole.m, whole.out_h, whole.out_w)
    plane = h * w
    first = o["c"] if bp else o["m"]
    return {"idx_n": ch * plane, "idx_tile": t * plane, "idx_lane": plane,
            "idx_off": o["n"] * ch * plane + first * plane + o["y"] * w}


def pack_descriptor(cfg, fields):
    """Pack descriptor ``fields`` (raw bit patterns, e.g. ``descriptor_fields``) into the
    integer the engine's ``desc`` payload carries.

    Raises ``ConfigError`` naming the field if a value does not fit its width.
    """
    layout = DescriptorLayout(cfg)
    raw = {}
    for name, f in layout:
        v, width = int(fields[name]), Shape.cast(f.shape).width
        if not 0 <= v < 1 << width:
            raise ConfigError(f"descriptor field {name}={v} does not fit in {width} bits")
        raw[name] = v
    return layout.const(raw).as_value().value
