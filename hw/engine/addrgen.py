"""The conv engine's address generator: one layer's loop nest, one tap per cycle, no multiplier.

FP and BP walk pixels outside and the reduction inside (output-stationary)::

    n > out_tile > oy > ox > red_tile > ky > kx

WU and UPDATE walk weight blocks outside and the batch-and-pixel reduction inside::

    out_tile > red_tile > ky > kx > n > oy > ox

Per axis, FP and WU read input row ``iy = oy * s - pad + ky`` (zero padding outside the
input). BP computes ``dx`` at position ``y`` from the taps that do not land on the stride's
dilation zeros: ``ky = r, r + s, ...`` with ``r = (y + pad) mod s`` reading
``dy[(y + pad - ky) / s]``. The dy row walks down while ``ky`` walks up, which is the 180-degree
weight rotation; taps of the dilation zeros are skipped, not computed. A position whose
``r >= K`` has no tap at all and is issued as one *null* tap (``ky = r``, ``kx = r``).

Each tap carries (``T = tm``, ``d`` the descriptor, sums wrap at the field's width):

* ``act_addr = n * act_n + rt * act_plane + (iy * in_w + ix if inb else 0)``
* ``out_addr = n * out_n + ot * out_plane + oy * out_w + ox``
* ``w_addr = ot * w_out + rt * w_red + (ky * kernel + kx if real else 0)``
* ``idx = n * idx_n + ot * idx_tile + oy * out_w + ox`` (the element index for stochastic
  rounding, to which the engine adds ``idx_off + lane * idx_lane`` per output lane; 0 bits
  wide, not generated, in a build without it)
* ``real``: ``ky < kernel`` and ``kx < kernel`` (low only for a null tap); ``inb``: real and
  ``(iy, ix)`` inside ``in_h x in_w``;
* ``first``/``last``: the first and last tap of one reduction (one output pixel in FP/BP,
  one weight block in WU/UPDATE); ``done``: the last tap of the run;
* ``out_lanes = min(T, out_ch - ot * T)``, ``red_lanes = min(T, red_ch - rt * T)``.

No address is multiplied at run time (no DSP block): every product above is a running sum
kept next to its loop counter, which adds its stride when the counter steps and reloads its
start value when the counter wraps. The loop order only decides when a counter steps, so both
orders share the same sums. The input row term ``iy * in_w`` is the sum of an ``oy`` part
(FP/WU ``oy * s * in_w``; BP ``(floor((oy + pad) / s) - floor(pad / s)) * in_w``, which in
stride 2 steps on every other ``oy``), a ``ky`` part (``+-in_w`` per kernel step: the dy row
walks down in BP) and the constant ``-pad * in_w`` (BP ``+floor(pad / s) * in_w``), a
shift-add over the few bits of ``pad``.

Pipeline: counters, their "at the last value" flags and the running sums (S) -> coordinates
and pairwise sums (C) -> input bounds, act row and column (P) -> addresses (A). The flags are
registers (computed from each counter's current value, in parallel), so the loop carries start
from flip-flops, and no path between two registers holds more than one carry chain.
Everything advances when ``en`` is high; ``tap`` and ``tap_valid`` are the A registers.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from .descriptor import MODES, DescriptorLayout

__all__ = ["AddressGenerator", "TapLayout"]

_ORDERS = {
    "pixel": ("n", "ot", "oy", "ox", "rt", "ky", "kx"),
    "block": ("ot", "rt", "ky", "kx", "n", "oy", "ox"),
}
_REDUCTION = {"pixel": ("rt", "ky", "kx"), "block": ("n", "oy", "ox")}


def _bits(v):
    return max(1, int(v).bit_length())


@dataclass(frozen=True)
class _RunningSum:
    """``reg`` holds the address term of loop ``counter``: ``init`` at start, ``+ stride``
    when the counter steps, ``reload`` when it wraps."""
    reg: Signal
    counter: str
    stride: object
    init: object = 0
    reload: object = 0


def TapLayout(cfg):
    """Return the layout of one generated tap for configuration ``cfg``."""
    lanes = _bits(cfg.tm)
    return data.StructLayout({
        "act_addr": Buffer.ACT.addr_bits(cfg), "out_addr": Buffer.OUT.addr_bits(cfg),
        "w_addr": Buffer.WGT.addr_bits(cfg), "idx": 32 if cfg.stochastic_rounding else 0,
        "inb": 1, "real": 1, "first": 1, "last": 1, "done": 1,
        "out_lanes": lanes, "red_lanes": lanes,
    })


class AddressGenerator(wiring.Component):
    """Generate the taps of the run described by ``desc``.

    ``desc`` must be held from ``start`` until ``running`` and ``tap_valid`` are low. A
    ``start`` pulse (only while idle) begins a run. Each cycle with ``en`` high every stage
    advances and a valid ``tap`` is consumed; ``tap`` is valid when ``tap_valid`` is high.
    The taps and their fields are those of the module docstring, in loop order, one per
    cycle with ``en`` high from the first tap to the last (no bubbles): the first tap is on
    ``tap`` after the ``first_tap_cycles``-th cycle with ``en`` high that follows the
    ``start`` cycle (3; 2 with ``config.pipeline == "shallow"``, which has no P stage).
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

    @property
    def first_tap_cycles(self):
        return 2 if self._cfg.pipeline == "shallow" else 3

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

        def phase(pos):
            # BP's first tap along an axis: (pos + pad) mod 2 for stride 2, else 0.
            return bp & d.stride2 & (pos[0] ^ d.pad[0])
        last, last_initial, last_following = self._lasts(m, cnt, step, phase)

        carry = {k: Mux(wu, c_block, c_pixel) for k, c_pixel, c_block in zip(
            _ORDERS["pixel"], *(self._carries(_ORDERS[o], last) for o in _ORDERS))}
        nxt = {k: Mux(carry[k], Mux(last[k], 0, cnt[k] + 1), cnt[k]) for k in ("oy", "ox")}
        starts = dict(ky=phase(nxt["oy"]), kx=phase(nxt["ox"]))
        sums = self._running_sums(m, cnt, bp, dict(
            oy=phase(cnt["oy"]), ox=phase(cnt["ox"]), first=phase(Const(0, 1)), ky=starts["ky"]))

        s0_valid, first = Signal(), Signal()
        m.d.comb += self.running.eq(s0_valid)
        with m.If(self.start):
            m.d.sync += [s0_valid.eq(1), first.eq(1)]
            m.d.sync += [c.eq(0) for k, c in cnt.items() if k not in ("ky", "kx")]
            m.d.sync += [cnt["ky"].eq(phase(Const(0, 1))), cnt["kx"].eq(phase(Const(0, 1)))]
            m.d.sync += [s.reg.eq(s.init) for s in sums.values()]
            m.d.sync += [last[k].eq(v) for k, v in last_initial.items()]
        with m.Elif(self.en & s0_valid):
            for k, c in cnt.items():
                inc = c + (step if k in ("ky", "kx") else 1)
                m.d.sync += c.eq(Mux(carry[k], Mux(last[k], starts.get(k, 0), inc), c))
            for s in sums.values():
                with m.If(carry[s.counter]):
                    m.d.sync += s.reg.eq(Mux(last[s.counter], s.reload, s.reg + s.stride))
            m.d.sync += [last[k].eq(v) for k, v in last_following(carry, starts).items()]
            done = Cat(*last.values()).all()
            m.d.sync += [first.eq(self._last_red(wu, last)), s0_valid.eq(~done)]

        stage_c = self._coordinate_stage(m, cnt, sums, last, first, s0_valid, wu)
        self._address_stages(m, stage_c, self._run_constants(m, bp))
        return m

    def _lasts(self, m, cnt, step, phase):
        """Return per counter the register "at its last value", and a function that gives the
        next values for ``(carry, starts)``.

        The flags are registers so that the carry logic starts from flip-flops: each one is
        computed from the counter's *current* value against registered bounds, in parallel.
        """
        d = self.desc
        bounds = dict(n=d.batch, ot=d.out_tiles, rt=d.red_tiles, oy=d.out_h, ox=d.out_w)
        last = {k: Signal(name=f"last_{k}") for k in cnt}
        # Registered once per run (the descriptor is held): "bound is 1" and "bound - 2";
        # for the kernel loops, whether a start of 0 or 1 is already the last tap.
        single = {k: Signal(name=f"single_{k}") for k in bounds}
        before = {k: Signal(signed(len(cnt[k]) + 1), name=f"before_{k}") for k in bounds}
        k_before = Signal(signed(len(cnt["ky"]) + 2))
        k_start_last = [Signal(name=f"k_start{v}_last") for v in (0, 1)]
        m.d.sync += [single[k].eq(v == 1) for k, v in bounds.items()]
        m.d.sync += [before[k].eq(v - 2) for k, v in bounds.items()]
        m.d.sync += [k_before.eq(d.kernel - (step << 1))]
        m.d.sync += [f.eq(d.kernel - step <= v) for v, f in enumerate(k_start_last)]
        first_k_last = Mux(phase(Const(0, 1)), d.kernel - step <= 1, d.kernel - step <= 0)
        initial = {k: v == 1 for k, v in bounds.items()} | dict(ky=first_k_last, kx=first_k_last)

        def following(carry, starts):
            start_last = dict(single, **{k: Mux(starts[k], *k_start_last[::-1])
                                         for k in ("ky", "kx")})
            inc_last = {k: cnt[k] == before[k] for k in bounds}
            inc_last |= {k: cnt[k] >= k_before for k in ("ky", "kx")}
            return {k: Mux(carry[k], Mux(last[k], start_last[k], inc_last[k]), last[k])
                    for k in cnt}
        return last, initial, following

    @staticmethod
    def _carries(order, last):
        """Return per counter of loop order ``order``: every inner counter is at its last."""
        return [Cat(*(last[o] for o in order[order.index(k) + 1:])).all()
                if k != order[-1] else Const(1) for k in _ORDERS["pixel"]]

    @staticmethod
    def _last_red(wu, last):
        return Mux(wu, Cat(*(last[k] for k in _REDUCTION["block"])).all(),
                   Cat(*(last[k] for k in _REDUCTION["pixel"])).all())

    def _running_sums(self, m, cnt, bp, phases):
        """Return the running sums that replace the products, by name.

        ``phases``: BP's stride-2 phase of the current ``oy`` and ``ox``, of ``oy = 0``
        (``first``) and of the ``oy`` that follows a ``ky`` wrap (``ky``).
        """
        d, tap = self.desc, self.tap
        act, out, wgt, idx = (len(tap.act_addr), len(tap.out_addr), len(tap.w_addr),
                              len(tap.idx))
        coord = signed(_bits(self._cfg.max_size) + 3)
        # Strides that depend on the mode, registered like the loop bounds.
        row_step, ky_row_step = Signal(act), Signal(act)
        ky_w_step = Signal(wgt)
        m.d.sync += [row_step.eq(Mux(bp, d.in_w, d.in_w << d.stride2)),
                     ky_row_step.eq(Mux(bp, -d.in_w, d.in_w)),    # BP: dy row walks down
                     ky_w_step.eq(d.kernel << (bp & d.stride2))]

        def outer_step(axis, stride):
            # BP stride 2: floor((o + pad) / 2) steps on every other o.
            return Mux(bp & d.stride2 & ~phases[axis], 0, stride)

        def rsum(name, counter, width, stride, init=0, reload=0):
            return _RunningSum(Signal(width, name=f"sum_{name}"), counter, stride, init, reload)
        kernel_first = Mux(phases["first"], d.kernel, 0)
        lanes = signed(len(d.out_ch) + 2)
        sums = [
            rsum("n_act", "n", act, d.act_n), rsum("rt_act", "rt", act, d.act_plane),
            rsum("oy_row", "oy", act, outer_step("oy", row_step)),
            rsum("ky_row", "ky", act, ky_row_step),
            rsum("n_out", "n", out, d.out_n), rsum("ot_out", "ot", out, d.out_plane),
            rsum("oy_pix", "oy", 2 * len(cnt["oy"]), d.out_w),
            rsum("ot_w", "ot", wgt, d.w_out), rsum("rt_w", "rt", wgt, d.w_red),
            rsum("ky_w", "ky", wgt, ky_w_step, kernel_first, Mux(phases["ky"], d.kernel, 0)),
            rsum("n_idx", "n", idx, d.idx_n), rsum("ot_idx", "ot", idx, d.idx_tile),
            # Input coordinates less their offset, and the channels left from a tile on.
            rsum("oy_y", "oy", coord, outer_step("oy", Mux(~bp & d.stride2, 2, 1))),
            rsum("ky_y", "ky", coord, Mux(bp, -1, 1)),
            rsum("ox_x", "ox", coord, outer_step("ox", Mux(~bp & d.stride2, 2, 1))),
            rsum("kx_x", "kx", coord, Mux(bp, -1, 1)),
            rsum("ot_rest", "ot", lanes, -self._cfg.tm, d.out_ch, d.out_ch),
            rsum("rt_rest", "rt", lanes, -self._cfg.tm, d.red_ch, d.red_ch)]
        return {s.reg.name[len("sum_"):]: s for s in sums if len(s.reg)}

    def _run_constants(self, m, bp):
        """Return the registered per-run constants of the input position.

        A tap's input column is ``x = ox_x + kx_x + off`` (rows alike) with ``off = -pad``
        (BP ``pad >> stride2``): ``lo``/``hi_y``/``hi_x`` bound ``x - off`` and ``y - off``
        (one cycle after the descriptor is valid); ``pix_off`` is ``off * (in_w + 1)``,
        the offset of the act row and column terms (two cycles after).
        """
        d = self.desc
        coord = signed(_bits(self._cfg.max_size) + 3)
        width = len(self.tap.act_addr)
        q = Mux(bp & d.stride2, d.pad >> 1, d.pad)
        # pad is a few bits wide: a shift-add over its bits, not a multiplier.
        partial = [Mux(q[i], d.in_w << i, 0) for i in range(len(d.pad))]
        pad_pix, pix_off = Signal(width), Signal(width)
        lo, hi_y, hi_x = (Signal(coord, name=n) for n in ("lo", "hi_y", "hi_x"))
        m.d.sync += [pad_pix.eq(sum(partial, q)), pix_off.eq(Mux(bp, pad_pix, -pad_pix)),
                     lo.eq(Mux(bp, -q, d.pad)),
                     hi_y.eq(Mux(bp, d.in_h - q, d.in_h + d.pad)),
                     hi_x.eq(Mux(bp, d.in_w - q, d.in_w + d.pad))]
        return dict(lo=lo, hi_y=hi_y, hi_x=hi_x, pix_off=pix_off)

    def _coordinate_stage(self, m, cnt, sums, last, first, s0_valid, wu):
        """Stage C: coordinates, reality, lane counts and pairwise sums (registered)."""
        d, t, tap = self.desc, self._cfg.tm, self.tap
        v = {k: s.reg for k, s in sums.items()}
        is_real = (cnt["ky"] < d.kernel) & (cnt["kx"] < d.kernel)
        values = dict(
            valid=s0_valid, real=is_real, y=v["oy_y"] + v["ky_y"], x=v["ox_x"] + v["kx_x"],
            first=first, last=self._last_red(wu, last), done=Cat(*last.values()).all(),
            out_lanes=Mux(v["ot_rest"] >= t, t, v["ot_rest"]),
            red_lanes=Mux(v["rt_rest"] >= t, t, v["rt_rest"]),
            act_base=v["n_act"] + v["rt_act"], act_row=v["oy_row"] + v["ky_row"],
            out_base=v["n_out"] + v["ot_out"], out_pix=v["oy_pix"] + cnt["ox"],
            w_base=v["ot_w"] + v["rt_w"], w_kernel=Mux(is_real, v["ky_w"] + cnt["kx"], 0),
            idx_base=v["n_idx"] + v["ot_idx"] if "n_idx" in v else 0)
        widths = dict(valid=1, real=1, y=v["oy_y"].shape(), x=v["ox_x"].shape(), first=1,
                      last=1, done=1, out_lanes=len(tap.out_lanes), red_lanes=len(tap.red_lanes),
                      act_base=len(tap.act_addr), act_row=len(tap.act_addr),
                      out_base=len(tap.out_addr), out_pix=len(v["oy_pix"]) + 1,
                      w_base=len(tap.w_addr), w_kernel=len(tap.w_addr), idx_base=len(tap.idx))
        regs = {k: Signal(w, name=f"cs_{k}") for k, w in widths.items()}
        with m.If(self.en):
            m.d.sync += [regs[k].eq(values[k]) for k in regs]
        return regs

    def _address_stages(self, m, c, run):
        """Stages P (bounds, act row and column) and A (addresses = the tap outputs); a
        shallow pipeline computes A straight from C (no P registers)."""
        tap = self.tap
        inside = ((c["y"] >= run["lo"]) & (c["y"] < run["hi_y"]) &
                  (c["x"] >= run["lo"]) & (c["x"] < run["hi_x"]))
        # Truncated to the registers' widths, as the deep pipeline's P stage stores them.
        inb = c["real"] & inside
        act_far = (c["act_base"] + run["pix_off"])[:len(c["act_base"])]
        act_pix = (c["act_row"] + c["x"])[:len(c["act_row"])]
        p = {k: c[k] for k in c if k not in ("act_row", "y", "x")}
        if self._cfg.pipeline == "deep":
            staged = {k: Signal.like(v, name=f"p_{k}") for k, v in p.items()}
            regs = [Signal(name="p_inb"), Signal.like(c["act_base"], name="p_act_far"),
                    Signal.like(c["act_row"], name="p_act_pix")]
            with m.If(self.en):
                m.d.sync += [staged[k].eq(v) for k, v in p.items()]
                m.d.sync += [r.eq(v) for r, v in zip(regs, (inb, act_far, act_pix))]
            p, (inb, act_far, act_pix) = staged, regs
        with m.If(self.en):
            m.d.sync += [
                self.tap_valid.eq(p["valid"]), tap.inb.eq(inb),
                tap.act_addr.eq(Mux(inb, act_far + act_pix, p["act_base"])),
                tap.out_addr.eq(p["out_base"] + p["out_pix"]),
                tap.w_addr.eq(p["w_base"] + p["w_kernel"]),
                tap.idx.eq(p["idx_base"] + p["out_pix"]),
            ]
            m.d.sync += [getattr(tap, k).eq(p[k])
                         for k in ("real", "first", "last", "done", "out_lanes", "red_lanes")]
