"""The conv engine's address generator: one layer's loop nest, one tap per cycle.

FP and BP walk pixels outside and the reduction inside (output-stationary)::

    n > out_tile > oy > ox > red_tile > ky > kx

WU walks weight blocks outside and the batch-and-pixel reduction inside::

    out_tile > red_tile > ky > kx > n > oy > ox

Per axis, FP and WU read input row ``iy = oy * s - pad + ky`` (zero padding outside the
input). BP computes ``dx`` at position ``y`` from the taps that do not land on the stride's
dilation zeros: ``ky = r, r + s, ...`` with ``r = (y + pad) mod s`` reading
``dy[(y + pad - ky) / s]``. The dy row walks down while ``ky`` walks up, which is the 180-degree
weight rotation; taps of the dilation zeros are skipped, not computed. A position whose
``r >= K`` has no tap at all and is issued as one null tap (zero data, no useful MACs).

Pipeline: counters (S0) -> coordinates (C) -> address products (P) -> address sums (A).
Everything advances when ``en`` is high; ``tap`` and ``tap_valid`` are the A registers.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import AcceleratorConfig
from .engine_desc import MODES, DescriptorLayout

__all__ = ["AddressGenerator", "TapLayout"]

_ORDERS = {
    "pixel": ("n", "ot", "oy", "ox", "rt", "ky", "kx"),
    "block": ("ot", "rt", "ky", "kx", "n", "oy", "ox"),
}
_REDUCTION = {"pixel": ("rt", "ky", "kx"), "block": ("n", "oy", "ox")}


def _bits(v):
    return max(1, int(v).bit_length())


def TapLayout(cfg):
    """Return the layout of one generated tap for configuration ``cfg``."""
    lanes = _bits(cfg.tm)
    return data.StructLayout({
        "act_addr": _bits(cfg.input_depth - 1), "out_addr": _bits(cfg.output_depth - 1),
        "w_addr": _bits(cfg.weight_depth - 1), "idx": 32,
        "inb": 1, "real": 1, "first": 1, "last": 1, "done": 1,
        "out_lanes": lanes, "red_lanes": lanes,
    })


class AddressGenerator(wiring.Component):
    """Generate the taps of the run described by ``desc``.

    ``desc`` must be held from ``start`` until ``running`` and ``tap_valid`` are low. A
    ``start`` pulse (only while idle) begins a run. Each cycle with ``en`` high every stage
    advances; ``tap`` is valid when ``tap_valid`` is high. ``tap.first``/``tap.last`` mark
    the first and last tap of one reduction (one output pixel in FP/BP, one weight block in
    WU), ``tap.done`` the last tap of the run, ``tap.inb`` a tap whose input lies inside the
    tensor, ``tap.real`` a tap of the kernel (not a BP null tap).
    """

    def __init__(self, *, config):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._cfg = config
        super().__init__({
            "desc": In(DescriptorLayout(config)),
            "start": In(1),
            "en": In(1),
            "running": Out(1),
            "tap": Out(TapLayout(config)),
            "tap_valid": Out(1),
        })

    @property
    def config(self):
        return self._cfg

    def _counters(self):
        cfg = self._cfg
        size, tiles = _bits(cfg.max_size), _bits(-(-cfg.max_channels // cfg.tm))
        kbits = _bits(cfg.max_kernel) + 1
        widths = dict(n=_bits(cfg.max_batch), ot=tiles, rt=tiles, oy=size, ox=size,
                      ky=kbits, kx=kbits)
        return {name: Signal(w, name=f"c_{name}") for name, w in widths.items()}

    def elaborate(self, platform):
        m = Module()
        d = self.desc
        bp = d.mode == MODES.index("bp")
        wu = (d.mode == MODES.index("wu")) | (d.mode == MODES.index("update"))
        step = Mux(bp & d.stride2, 2, 1)
        cnt = self._counters()
        # Loop bounds minus one, registered: the descriptor is constant during a run, and
        # the counters' carry logic then compares against registers, not subtractors.
        bounds = dict(n=d.batch, ot=d.out_tiles, rt=d.red_tiles, oy=d.out_h, ox=d.out_w)
        top = {k: Signal.like(cnt[k], name=f"top_{k}") for k in bounds}
        k_top = Signal(signed(len(cnt["ky"]) + 1))
        m.d.sync += [top[k].eq(v - 1) for k, v in bounds.items()]
        m.d.sync += k_top.eq(d.kernel - step)
        last = {k: cnt[k] == top[k] for k in bounds}
        last["ky"] = cnt["ky"] >= k_top
        last["kx"] = cnt["kx"] >= k_top

        def phase(pos):
            # BP's first tap along an axis: (pos + pad) mod 2 for stride 2, else 0.
            return bp & d.stride2 & (pos[0] ^ d.pad[0])

        s0_valid, first = Signal(), Signal()
        m.d.comb += self.running.eq(s0_valid)
        with m.If(self.start):
            m.d.sync += [s0_valid.eq(1), first.eq(1)]
            m.d.sync += [c.eq(0) for k, c in cnt.items() if k not in ("ky", "kx")]
            m.d.sync += [cnt["ky"].eq(phase(Const(0, 1))), cnt["kx"].eq(phase(Const(0, 1)))]
        with m.Elif(self.en & s0_valid):
            for order_name, cond in (("pixel", ~wu), ("block", wu)):
                with m.If(cond):
                    nxt = self._advance(_ORDERS[order_name], cnt, last, step, phase)
                    m.d.sync += [cnt[k].eq(v) for k, v in nxt.items()]
            done = Cat(*last.values()).all()
            m.d.sync += [first.eq(self._last_red(wu, last)), s0_valid.eq(~done)]

        coords = self._coordinate_stage(m, cnt, last, first, s0_valid, bp, wu)
        self._address_stages(m, coords)
        return m

    @staticmethod
    def _advance(order, cnt, last, step, phase):
        """Return the next counter values for loop order ``order`` (outer first)."""
        nxt = {}
        for i, name in enumerate(order):
            inner = [last[o] for o in order[i + 1:]]
            carry = Cat(*inner).all() if inner else Const(1)
            if name in ("ky", "kx"):
                pos = {"ky": "oy", "kx": "ox"}[name]
                start = phase(nxt[pos]) if pos in nxt else 0
                inc = cnt[name] + step
            else:
                start, inc = 0, cnt[name] + 1
            nxt[name] = Mux(carry, Mux(last[name], start, inc), cnt[name])
        return nxt

    @staticmethod
    def _last_red(wu, last):
        return Mux(wu, Cat(*(last[k] for k in _REDUCTION["block"])).all(),
                   Cat(*(last[k] for k in _REDUCTION["pixel"])).all())

    def _coordinate_stage(self, m, cnt, last, first, s0_valid, bp, wu):
        """Stage C: input coordinates, bounds, lane counts (registered)."""
        d, t = self.desc, self._cfg.tm
        size = _bits(self._cfg.max_size) + 3
        c = {k: Signal.like(v, name=f"cs_{k}") for k, v in cnt.items()}
        iy, ix = Signal(signed(size)), Signal(signed(size))
        valid, inb, real = Signal(), Signal(), Signal()
        flags = {k: Signal(name=f"cs_{k}") for k in ("first", "last", "done")}
        lanes = {k: Signal(range(t + 1), name=f"cs_{k}") for k in ("out_lanes", "red_lanes")}

        def in_pos(o, k):
            fwd = Mux(d.stride2, o << 1, o) - d.pad + k
            back = (o + d.pad - k).as_signed() >> d.stride2
            return Mux(bp, back, fwd)

        def lane_count(chans, tile):
            rest = (chans - tile * t).as_signed()
            return Mux(rest >= t, t, rest)

        y, x = in_pos(cnt["oy"], cnt["ky"]), in_pos(cnt["ox"], cnt["kx"])
        is_real = (cnt["ky"] < d.kernel) & (cnt["kx"] < d.kernel)
        inside = is_real & (y >= 0) & (y < d.in_h) & (x >= 0) & (x < d.in_w)
        with m.If(self.en):
            m.d.sync += [c[k].eq(v) for k, v in cnt.items()]
            m.d.sync += [valid.eq(s0_valid), inb.eq(inside), real.eq(is_real),
                         iy.eq(Mux(inside, y, 0)), ix.eq(Mux(inside, x, 0)),
                         flags["first"].eq(first), flags["last"].eq(self._last_red(wu, last)),
                         flags["done"].eq(Cat(*last.values()).all()),
                         lanes["out_lanes"].eq(lane_count(d.out_ch, cnt["ot"])),
                         lanes["red_lanes"].eq(lane_count(d.red_ch, cnt["rt"]))]
            m.d.sync += c["ky"].eq(Mux(is_real, cnt["ky"], 0))
        return dict(c=c, iy=iy, ix=ix, valid=valid, inb=inb, real=real, **flags, **lanes)

    def _address_stages(self, m, s):
        """Stages P (products, registered) and A (sums, registered = the tap outputs)."""
        d, c = self.desc, s["c"]
        products = {
            "act": (c["n"] * d.act_n, c["rt"] * d.act_plane, s["iy"].as_unsigned() * d.in_w),
            "out": (c["n"] * d.out_n, c["ot"] * d.out_plane, c["oy"] * d.out_w),
            "w": (c["ot"] * d.w_out, c["rt"] * d.w_red, c["ky"] * d.kernel),
            "idx": (c["n"] * d.idx_n, c["ot"] * d.idx_tile),
        }
        preg = {k: [Signal(len(e), name=f"p_{k}{i}") for i, e in enumerate(v)]
                for k, v in products.items()}
        passed = {k: Signal.like(s[k], name=f"p_{k}")
                  for k in ("valid", "inb", "real", "first", "last", "done", "out_lanes",
                            "red_lanes", "ix")}
        pix = {k: Signal.like(c[k], name=f"p_{k}") for k in ("ox", "kx")}
        with m.If(self.en):
            for k, exprs in products.items():
                m.d.sync += [r.eq(e) for r, e in zip(preg[k], exprs)]
            m.d.sync += [passed[k].eq(s[k]) for k in passed]
            m.d.sync += [pix[k].eq(c[k]) for k in pix]
        tap = self.tap
        with m.If(self.en):
            m.d.sync += [
                self.tap_valid.eq(passed["valid"]),
                tap.act_addr.eq(sum(preg["act"]) + passed["ix"].as_unsigned()),
                tap.out_addr.eq(sum(preg["out"]) + pix["ox"]),
                tap.w_addr.eq(sum(preg["w"]) + pix["kx"]),
                tap.idx.eq(sum(preg["idx"]) + preg["out"][2] + pix["ox"]),
            ]
            m.d.sync += [getattr(tap, k).eq(passed[k])
                         for k in ("inb", "real", "first", "last", "done", "out_lanes",
                                   "red_lanes")]
