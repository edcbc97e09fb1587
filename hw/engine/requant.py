"""Requantization in hardware: shift, round (nearest-even or stochastic), saturate, ReLU.

``RoundShift`` is the per-lane arithmetic of ``numerics.requantize`` as a stall-together
pipeline (shared with the SGD update unit); ``Requantizer`` is the stream unit the conv engine
instantiates: it adds the random words, the handshake and the statistics the host reads.

Shift range
    ``shift`` is ``signed(8)``; every value in -128..127 gives the exact result of the
    integer definition in ``numerics.requantize`` (the unit never wraps). Shifts beyond what
    can change a result are clamped internally to equivalent ones: a left shift by more than
    ``out_bits`` saturates every non-zero value; a right shift by ``s > in_bits + 31`` gives
    the same result as ``in_bits + 31`` (for nearest rounding every ``s >= in_bits`` gives 0).

How a shift by ``s`` is computed (one funnel shift, then an increment)
    With ``s`` clamped to ``-out_bits .. in_bits + 31`` and ``a = s + out_bits``, one barrel
    shift gives ``Y = (value << (32 + out_bits)) >> a``: its low 32 bits are the 32 bits of
    ``value`` just below bit ``s`` (the fraction ``f``, zeros below bit 0), the next
    ``out_bits + 1`` bits are ``q = floor(value / 2**s)`` when ``q`` fits in them, which is
    the case exactly when no two neighbouring bits of ``value`` at or above bit ``a`` differ
    (a mask test, not a shift). The result is ``q + inc``, saturated:

    * nearest even: ``inc = f[31] and (f[30:0] or sticky or q[0])``, ``sticky`` being any bit
      of ``value`` below ``f`` (only for ``s > 32``);
    * stochastic: ``inc`` is the carry out of ``f + word`` (32 bits). For ``s <= 32`` the low
      ``32 - s`` bits of ``f`` are zero, so this is the carry of adding the top ``s`` bits of
      the word below bit ``s``; for ``s > 32`` it is ``((value >> (s - 32)) + word) >> 32``
      minus ``q``. Both are ``numerics``' definitions. For ``s <= 0``, ``f = 0`` and
      ``inc = 0`` in either mode.

    A nearest-only unit (``stochastic=False``) keeps one fraction bit instead of 32 (``32``
    above reads ``1``: ``Y = (value << (1 + out_bits)) >> a``, ``s`` clamped to ``in_bits``,
    ``sticky`` = any bit of ``value`` below bit ``s - 1``): the same ``inc``, a funnel
    window of ``out_bits + 2`` bits instead of ``out_bits + 33``.

Pipelines
    ``"deep"`` (the default): 7 stages, at most one carry chain or barrel level each, for
    fast clocks. ``"shallow"``: the same logic cut into 2 stages (decode and funnel shift;
    rounding and saturation) for slow clocks; the ``Requantizer`` around it then stalls
    every stage together instead of queueing results in flip-flops.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.common.pipe import StreamPipeline, delay, stage
from edgetrain.hw.common.rng import RngBits
from edgetrain.hw.config import PIPELINES

__all__ = ["RoundShift", "Requantizer"]


def _coarse(amount):
    """The multiple-of-8 part of a shift amount: barrel shifts run as coarse, then fine."""
    return Cat(Const(0, 3), amount[3:])


def _fine(amount):
    return amount[:3]


def _check_bits(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise TypeError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")


def _check_flag(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")


def _check_pipeline(value):
    if value not in PIPELINES:
        raise TypeError(f"pipeline must be one of {', '.join(map(repr, PIPELINES))}, not "
                        f"{value!r}")


class RoundShift(wiring.Component):
    """Requantize ``lanes`` values by a shared ``shift``; a stall-together pipeline.

    A beat is ``value`` (per lane), ``shift``, ``stochastic`` and ``relu``, all sampled on an
    enabled cycle (``en`` high). The random word of each lane is sampled from ``rand``
    exactly ``rand_delay`` enabled cycles later (ignored for nearest rounding). With
    ``stochastic=False`` the unit rounds to nearest even only and has neither the
    ``stochastic`` nor the ``rand`` port. With ``fixed_shift`` (an integer) every beat is
    shifted by it and there is no ``shift`` port (the shifter is built for that one amount).
    After ``latency`` enabled cycles the beat's results are on the outputs:

    * ``data``: ``requantize(value, shift, bits=out_bits)``, then ``max(., 0)`` if ``relu``;
    * ``mask``: ``relu`` and the requantized value > 0;
    * ``sat``: the lane's requantized value was saturated (before the ReLU).
    """

    latency = 7
    rand_delay = 4
    # Stage boundaries (registers after): 1 shift amounts, 2 masks, 3 coarse funnel shift,
    # 4 fine funnel shift, 5 increment, 6 rounded value, 7 saturation and ReLU.
    _CUTS = {"deep": (1, 2, 3, 4, 5, 6, 7), "shallow": (4, 7)}

    def __init__(self, *, lanes, in_bits, out_bits, stochastic=True, fixed_shift=None,
                 pipeline="deep"):
        _check_bits("lanes", lanes, 1, 1024)
        _check_bits("in_bits", in_bits, 2, 64)
        _check_bits("out_bits", out_bits, 2, 32)
        _check_flag("stochastic", stochastic)
        if fixed_shift is not None:
            _check_bits("fixed_shift", fixed_shift, -128, 127)
        _check_pipeline(pipeline)
        self._lanes, self._in_bits, self._out_bits = lanes, in_bits, out_bits
        self._stochastic, self._fixed_shift = stochastic, fixed_shift
        self._pipeline, self._cuts = pipeline, self._CUTS[pipeline]
        if pipeline != "deep":
            self.latency, self.rand_delay = self.timing(pipeline)
        # Fraction bits the funnel keeps: stochastic rounding adds a 32-bit word to them;
        # nearest rounding needs only the half bit (the rest is in the sticky bit).
        self._frac = 32 if stochastic else 1
        random = {"stochastic": In(1),
                  "rand": In(data.ArrayLayout(unsigned(32), lanes))} if stochastic else {}
        shift = {"shift": In(signed(8))} if fixed_shift is None else {}
        super().__init__({
            "en": In(1),
            "value": In(data.ArrayLayout(signed(in_bits), lanes)),
            **shift,
            **random,
            "relu": In(1),
            "data": Out(data.ArrayLayout(signed(out_bits), lanes)),
            "mask": Out(data.ArrayLayout(unsigned(1), lanes)),
            "sat": Out(data.ArrayLayout(unsigned(1), lanes)),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def in_bits(self):
        return self._in_bits

    @property
    def out_bits(self):
        return self._out_bits

    @property
    def stochastic_rounding(self):
        """Whether the unit can round stochastically (has ``stochastic`` and ``rand``)."""
        return self._stochastic

    @property
    def pipeline(self):
        """``"deep"`` (7 stages, one carry chain or barrel level each) or ``"shallow"`` (2)."""
        return self._pipeline

    @classmethod
    def timing(cls, pipeline):
        """Return ``(latency, rand_delay)`` of a ``pipeline`` unit (the class attributes are
        the deep unit's)."""
        _check_pipeline(pipeline)
        cuts = cls._CUTS[pipeline]
        return len(cuts), sum(k <= 4 for k in cuts)

    def _amounts(self):
        """Return ``(a, p)``: the funnel shift ``clamp(shift) + out_bits`` and the sticky
        width ``max(clamp(shift) - frac, 0)``; ``Const``s for a fixed shift."""
        w, b, f = self._in_bits, self._out_bits, self._frac
        limit = w + f - 1  # right shifts above it give the same results as it
        a_shape, p_shape = unsigned((limit + b).bit_length()), unsigned((w - 1).bit_length())
        s = self._fixed_shift
        if s is not None:
            s = min(max(s, -b), limit)
            return Const(s + b, a_shape), Const(max(s - f, 0), p_shape)
        s = self.shift
        return (Mux(s < -b, 0, Mux(s > limit, limit + b, s + b))[:a_shape.width],
                Mux(s > limit, limit - f, Mux(s > f, s - f, 0))[:p_shape.width])

    def _at(self, m, cut, value, name):
        """Register ``value`` at stage boundary ``cut`` if this pipeline has that boundary
        (constants never)."""
        if cut not in self._cuts or isinstance(value, Const):
            return value
        return stage(m, self.en, value, name=name)

    def _masks(self, a, p):
        """The sticky mask (value bits below the fraction) and the fit mask (neighbour pairs
        at or above bit ``a``): shifts of constants, a few LUT levels per bit, no chains."""
        w = self._in_bits
        if isinstance(a, Const):
            return (Const((1 << p.value) - 1, w),
                    Const(((1 << (w - 1)) - 1) & ~((1 << a.value) - 1), w - 1))
        ones = Const(-1, w + 1)
        return ~(ones << p)[:w], (ones << a)[:w - 1]

    def _controls(self, m):
        """Return {stage: the beat's controls as stage k's logic sees them}.

        Boundary 1 registers the shift amounts, boundary 2 the masks made from them; each
        control is then kept as long as a stage needs it. A fixed shift's are constants.
        """
        a, p = self._amounts()
        c1 = {"a": self._at(m, 1, a, "ctl1_a"), "p": self._at(m, 1, p, "ctl1_p"),
              "relu": self._at(m, 1, self.relu, "ctl1_relu")}
        if self._stochastic:
            c1["stochastic"] = self._at(m, 1, self.stochastic, "ctl1_stochastic")
        sticky_mask, fit_mask = self._masks(c1["a"], c1["p"])
        c = {2: {k: self._at(m, 2, v, f"ctl2_{k}") for k, v in
                 {"a": c1["a"], "relu": c1["relu"], "sticky_mask": sticky_mask,
                  "fit_mask": fit_mask, **({"stochastic": c1["stochastic"]}
                                           if self._stochastic else {})}.items()}}
        needs = {3: ("a", "stochastic", "relu"), 4: ("stochastic", "relu"),
                 5: ("stochastic", "relu"), 6: ("relu",)}
        for k, names in needs.items():
            c[k] = {x: self._at(m, k, c[k - 1][x], f"ctl{k}_{x}") for x in names
                    if x in c[k - 1]}
        return c

    def elaborate(self, platform):
        m = Module()
        c = self._controls(m)
        for n in range(self._lanes):
            self._lane(m, n, c)
        return m

    def _lane(self, m, n, c):
        """The stages of lane ``n``; ``c[k]`` are the beat's controls as stage k sees them."""
        w, b, f = self._in_bits, self._out_bits, self._frac

        def at(cut, value, name):
            return self._at(m, cut, value, f"lane{n}_{name}")

        def through(cuts, value, name):
            for k in cuts:
                value = at(k, value, f"{name}_d{k}")
            return value
        v2 = through((1, 2), self.value[n], "value")
        # Stage 3: coarse funnel shift; does q fit in b + 1 bits; the sticky bit.
        window = f + 1 + b  # fraction (f) and q (b + 1)
        funnel = v2 << (f + b)
        t3 = at(3, (funnel >> _coarse(c[2]["a"]))[:window + 7], "funnel_coarse")
        pairs = v2[:w - 1] ^ v2[1:]
        fits3 = at(3, ~(pairs & c[2]["fit_mask"]).any(), "fits")
        sticky3 = at(3, (v2.as_unsigned() & c[2]["sticky_mask"]).any(), "sticky")
        sign3 = at(3, v2[-1], "sign")
        # Stage 4: fine funnel shift.
        y4 = at(4, (t3 >> _fine(c[3]["a"]))[:window], "funnel")
        # Stage 5: the increment (the random word arrives here).
        frac, q = y4[:f], y4[f:]
        below_half = through((4,), sticky3, "sticky")
        if f > 1:
            below_half = frac[:f - 1].any() | below_half
        inc = frac[f - 1] & (below_half | q[0])
        if self._stochastic:
            inc = Mux(c[4]["stochastic"], (frac + self.rand[n])[32], inc)
        inc5 = at(5, inc, "inc")
        q5 = at(5, q.as_signed(), "q")
        # Stage 6: the rounded value (b + 2 bits: it cannot overflow while q fits).
        r6 = at(6, q5 + inc5, "rounded")
        fits6 = through((4, 5, 6), fits3, "fits")
        sign6 = through((4, 5, 6), sign3, "sign")
        # Stage 7: saturation and ReLU.
        # r6 is in -2**b .. 2**b: its top three bits tell whether it fits in b bits.
        hi, lo = Const((1 << (b - 1)) - 1, signed(b)), Const(-(1 << (b - 1)), signed(b))
        negative, top = r6[b + 1], r6[b - 1:b + 1]
        too_big = Mux(fits6, ~negative & top.any(), ~sign6)
        too_small = Mux(fits6, negative & ~top.all(), sign6)
        clipped = Mux(too_big, hi, Mux(too_small, lo, r6[:b].as_signed()))
        positive = Mux(fits6, ~negative & r6.any(), ~sign6)
        out = Mux(c[6]["relu"] & ~positive, 0, clipped)
        m.d.comb += [
            self.data[n].eq(at(7, out, "data")),
            self.mask[n].eq(at(7, c[6]["relu"] & positive, "mask")),
            self.sat[n].eq(at(7, too_big | too_small, "sat")),
        ]


class Requantizer(wiring.Component):
    """Requantize a stream of accumulator beats into ``out_bits`` values (+ ReLU and mask).

    Each beat on ``i`` holds ``lanes`` accumulators and, per lane, ``index``: the element's
    flat row-major position in the whole logical tensor (it selects the random word). ``shift``,
    ``stochastic``, ``key`` and ``relu`` are sampled with each beat as it is accepted (hold them
    during a run). The result beat appears on ``o`` ``latency`` cycles after acceptance (later
    if ``o`` was not ready for earlier beats); one beat per cycle while ``o`` is ready; under
    backpressure ``i.ready`` drops (no beat is ever dropped or repeated).

    ``o.data[n]`` is ``requantize(acc[n], shift, bits=out_bits, rounding, key, index[n])``
    (``numerics``), then ``max(., 0)`` if ``relu``; ``o.mask[n]`` is ``relu`` and the
    requantized value > 0. See the module docstring for the shift range.

    ``saturations`` counts saturated elements and ``amax`` holds the largest ``|acc|`` of the
    beats since ``clear`` was last high; a beat is included ``stats_delay`` cycles after it
    left on ``o``. Pulse ``clear`` while no beat is in flight.

    ``stochastic=False`` builds a nearest-even-only unit without the random generator: it
    ignores the ``stochastic`` and ``key`` inputs (its user must refuse stochastic requests).

    ``pipeline="deep"`` (default) is a free-running pipeline behind a queue
    (``StreamPipeline``): no combinational path from ``o.ready`` to ``i.ready``, one carry
    chain or barrel level per stage, for fast clocks. ``"shallow"`` is a stall-together
    pipeline of few stages without a queue, for slow clocks (far fewer flip-flops):
    ``i.ready`` is ``o.ready`` whenever a beat waits on ``o``.
    """

    stats_delay = 2

    def __init__(self, *, lanes, acc_bits, out_bits=16, stochastic=True, pipeline="deep"):
        _check_bits("lanes", lanes, 1, 256)
        _check_bits("acc_bits", acc_bits, 2, 64)
        _check_bits("out_bits", out_bits, 2, 32)
        _check_flag("stochastic", stochastic)
        _check_pipeline(pipeline)
        self._lanes, self._acc_bits, self._out_bits = lanes, acc_bits, out_bits
        self._stochastic, self._pipeline = stochastic, pipeline
        self._core_latency, rand_delay = RoundShift.timing(pipeline)
        # The random words are computed while RoundShift decodes and pre-shifts.
        self._lead = RngBits.latency - rand_delay if stochastic else 0
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(signed(acc_bits), lanes),
                "index": data.ArrayLayout(unsigned(32), lanes)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(out_bits), lanes),
                "mask": data.ArrayLayout(unsigned(1), lanes)}))),
            "shift": In(signed(8)),
            "stochastic": In(1),
            "key": In(32),
            "relu": In(1),
            "saturations": Out(32),
            "amax": Out(acc_bits),
            "clear": In(1),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def acc_bits(self):
        return self._acc_bits

    @property
    def out_bits(self):
        return self._out_bits

    @property
    def stochastic_rounding(self):
        """Whether the unit was built with stochastic rounding (else nearest-even only)."""
        return self._stochastic

    @property
    def pipeline(self):
        return self._pipeline

    @property
    def latency(self):
        """Cycles from a beat's acceptance on ``i`` to its presentation on ``o``."""
        stages = self._lead + self._core_latency
        return stages + StreamPipeline.QUEUE_LATENCY if self._pipeline == "deep" else stages

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = RoundShift(
            lanes=self._lanes, in_bits=self._acc_bits, out_bits=self._out_bits,
            stochastic=self._stochastic, pipeline=self._pipeline)
        stages = self._lead + core.latency
        if self._pipeline == "deep":
            pipe = StreamPipeline(m, i=self.i, o=self.o, stages=stages,
                                  extra_shape=self._lanes)
            en, left, sat = pipe.en, pipe.left, pipe.extra_out
            m.d.comb += [pipe.result.data.eq(core.data), pipe.result.mask.eq(core.mask),
                         pipe.extra.eq(core.sat)]
        else:
            en, left, sat = self._stall_together(m, stages), self.o.valid & self.o.ready, \
                core.sat
            m.d.comb += [self.o.payload.data.eq(core.data), self.o.payload.mask.eq(core.mask)]
        if self._stochastic:
            m.submodules.rng = rng = RngBits(lanes=self._lanes)
            m.d.comb += [
                rng.en.eq(en), rng.key.eq(self.key), rng.index.eq(self.i.payload.index),
                core.stochastic.eq(delay(m, en, self.stochastic, self._lead,
                                         name="stochastic")),
                core.rand.eq(rng.bits),
            ]
        lead = self._lead
        m.d.comb += [
            core.en.eq(en),
            core.value.eq(delay(m, en, self.i.payload.acc, lead, name="acc")),
            core.shift.eq(delay(m, en, self.shift, lead, name="shift")),
            core.relu.eq(delay(m, en, self.relu, lead, name="relu")),
        ]
        self._count_saturations(m, left, sat)
        self._track_amax(m)
        return m

    def _stall_together(self, m, stages):
        """Valid bits of a pipeline that advances unless a beat on ``o`` is not taken."""
        valid = [Signal(name=f"stage{k + 1}_valid") for k in range(stages)]
        en = Signal()
        m.d.comb += [en.eq(~valid[-1] | self.o.ready), self.i.ready.eq(en),
                     self.o.valid.eq(valid[-1])]
        with m.If(en):
            m.d.sync += valid[0].eq(self.i.valid)
            m.d.sync += [after.eq(before) for before, after in zip(valid, valid[1:])]
        return en

    def _count_saturations(self, m, left, sat):
        flags = Signal(self._lanes)
        count = Signal(range(self._lanes + 1))
        m.d.sync += flags.eq(Mux(left, sat, 0))
        m.d.sync += count.eq(sum(flags[n] for n in range(self._lanes)))
        m.d.sync += self.saturations.eq(self.saturations + count)
        with m.If(self.clear):
            m.d.sync += [flags.eq(0), count.eq(0), self.saturations.eq(0)]

    def _track_amax(self, m):
        # Deep: one comparator level per cycle, a max tree over the lanes, then the running
        # max. Shallow: the whole tree in the cycle after the beat. The tree compares
        # (acc ^ sign, sign), whose order is that of |acc| = (acc ^ sign) + sign up to ties,
        # so no lane needs a negation; one adder finishes the winner.
        accepted = self.i.valid & self.i.ready
        w, regs = self._acc_bits, []

        def level_of(values, name):
            if self._pipeline != "deep":
                return values
            out = [Signal(len(v), name=f"{name}{k}") for k, v in enumerate(values)]
            m.d.sync += [r.eq(v) for r, v in zip(out, values)]
            regs.extend(out)
            return out
        keys = []
        for n in range(self._lanes):
            acc = self.i.payload.acc[n]
            sign = acc[-1]
            keys.append(Mux(accepted, Cat(sign, acc.as_unsigned() ^ sign.replicate(w)), 0))
        level, depth = level_of(keys, "key"), 1
        while len(level) > 1:
            pairs = [level[k:k + 2] for k in range(0, len(level), 2)]
            level = level_of([Mux(p[-1] > p[0], p[-1], p[0]) for p in pairs],
                             f"max{depth}_")
            depth += 1
        (top,) = level_of([(level[0][1:] + level[0][0])[:w]], "max_abs")
        m.d.sync += self.amax.eq(Mux(top > self.amax, top, self.amax))
        with m.If(self.clear):
            m.d.sync += [s.eq(0) for s in regs]
            m.d.sync += self.amax.eq(0)
        assert (depth + 2 if self._pipeline == "deep" else 1) <= self.latency + self.stats_delay
