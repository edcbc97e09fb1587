"""The SGD-with-momentum update unit: new master weights and velocities, lane by lane.

Per lane it computes exactly ``numerics.sgd_momentum``::

    g = requantize(g_acc, g_shift, bits=32)                       # key_g
    v = sat32(requantize(mu_q * v, 16, bits=32) + g)              # key_v
    w = sat32(w - requantize(lr_q * v, lr_shift, bits=32))        # key_w

with three ``RoundShift`` pipelines, two 16 x 32 multipliers (each split into two 16 x 16
products, one ECP5 MULT18X18D apiece) and saturating adders, each in its own stage.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .pipe import delay, stage, stream_pipeline
from .requant import RoundShift
from .rng import RngBits

__all__ = ["SGDUpdate"]

MU_FRAC = 16
WORD = 32
PRODUCT_BITS = 48  # 16-bit unsigned x 32-bit signed


def _check(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise TypeError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")


def _product(m, en, coef, word, *, name):
    """Two stages: ``coef`` (unsigned 16) times ``word`` (signed 32), as two 16 x 16 halves."""
    lo = stage(m, en, coef * word[:16], name=f"{name}_lo")
    hi = stage(m, en, coef * word[16:].as_signed(), name=f"{name}_hi")
    return stage(m, en, ((hi << 16) + lo)[:PRODUCT_BITS].as_signed(), name=name)


def _saturate(m, en, value, *, name):
    """One stage: clip ``value`` to a signed 32-bit word; return (word, clipped flag)."""
    hi, lo = (1 << (WORD - 1)) - 1, -(1 << (WORD - 1))
    too_big, too_small = value > hi, value < lo
    word = Mux(too_big, hi, Mux(too_small, lo, value))[:WORD].as_signed()
    return (stage(m, en, word, name=name),
            stage(m, en, too_big | too_small, name=f"{name}_sat"))


class SGDUpdate(wiring.Component):
    """Apply one SGD-with-momentum step to a stream of ``lanes`` weights per beat.

    Each beat on ``i`` holds per lane the batch-summed gradient accumulator ``g_acc``, the
    int32 ``master`` weight and ``velocity``, and ``index`` (the weight's flat position in the
    weight tensor; it selects the random words). ``g_shift``, ``mu_q``, ``lr_q``,
    ``lr_shift``, ``stochastic`` and the three keys are sampled with each beat as it is
    accepted. After ``latency`` cycles ``o`` carries the new ``master`` and ``velocity``,
    bit-exact with ``numerics.sgd_momentum``; one beat per cycle; backpressure stalls the
    whole pipeline. Shifts in the full ``signed(8)`` / ``unsigned(8)`` ranges are exact (see
    ``hw/requant.py``).

    ``saturations`` counts saturation events (up to five per weight, as ``sgd_momentum``
    counts them) since ``clear``; a beat is included ``stats_delay`` cycles after it left.
    """

    stats_delay = 1

    def __init__(self, *, lanes, acc_bits):
        _check("lanes", lanes, 1, 256)
        _check("acc_bits", acc_bits, 2, 64)
        self._lanes, self._acc_bits = lanes, acc_bits
        words = data.ArrayLayout(signed(WORD), lanes)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "g_acc": data.ArrayLayout(signed(acc_bits), lanes),
                "master": words, "velocity": words,
                "index": data.ArrayLayout(unsigned(32), lanes)}))),
            "o": Out(stream.Signature(data.StructLayout({"master": words, "velocity": words}))),
            "g_shift": In(signed(8)),
            "mu_q": In(16),
            "lr_q": In(16),
            "lr_shift": In(8),
            "stochastic": In(1),
            "key_g": In(32),
            "key_v": In(32),
            "key_w": In(32),
            "saturations": Out(32),
            "clear": In(1),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def acc_bits(self):
        return self._acc_bits

    @property
    def latency(self):
        """Cycles from a beat's acceptance on ``i`` to its presentation on ``o``."""
        # product (2) + requantize + add + saturate, twice
        return 2 * (2 + RoundShift.latency + 2)

    def _requantizer(self, m, name, in_bits):
        core = RoundShift(lanes=self._lanes, in_bits=in_bits, out_bits=WORD)
        m.submodules[name] = core
        return core

    def _random_words(self, m, en, key, name):
        m.submodules[name] = rng = RngBits(lanes=self._lanes)
        m.d.comb += [rng.en.eq(en), rng.key.eq(key), rng.index.eq(self.i.payload.index)]
        return rng.bits

    def elaborate(self, platform):
        m = Module()
        en = stream_pipeline(m, i=self.i, o=self.o, latency=self.latency)
        beat = self.i.payload
        # Beat time t: the stage a value is registered in (inputs are sampled at t = 0).
        rand_at = RngBits.latency              # t = 4: random words ready
        core_at = rand_at - RoundShift.rand_delay  # t = 2: first requantizations start
        core_g = self._requantizer(m, "requant_g", self._acc_bits)
        core_v = self._requantizer(m, "requant_v", PRODUCT_BITS)
        core_w = self._requantizer(m, "requant_w", PRODUCT_BITS)
        stochastic = delay(m, en, self.stochastic, core_at, name="stochastic")
        m.d.comb += [
            core_g.en.eq(en),
            core_g.value.eq(delay(m, en, beat.g_acc, core_at, name="g_acc")),
            core_g.shift.eq(delay(m, en, self.g_shift, core_at, name="g_shift")),
            core_g.stochastic.eq(stochastic),
            core_g.rand.eq(self._random_words(m, en, self.key_g, "rng_g")),
            core_v.en.eq(en),
            core_v.shift.eq(MU_FRAC),
            core_v.stochastic.eq(stochastic),
            core_v.rand.eq(self._random_words(m, en, self.key_v, "rng_v")),
            core_w.en.eq(en),
        ]
        v_at = core_at + RoundShift.latency + 2   # t = 10: new velocity
        w_core_at = v_at + 2                      # t = 12: third requantization starts
        lr_shift = Mux(self.lr_shift > 127, 127, self.lr_shift)[:8].as_signed()
        m.d.comb += [
            core_w.shift.eq(delay(m, en, lr_shift, w_core_at, name="lr_shift")),
            core_w.stochastic.eq(delay(m, en, stochastic, w_core_at - core_at,
                                       name="stochastic_w")),
            core_w.rand.eq(delay(m, en, self._random_words(m, en, self.key_w, "rng_w"),
                                 w_core_at - core_at, name="rand_w")),
        ]
        mu_q = self.mu_q
        lr_q = delay(m, en, self.lr_q, v_at, name="lr_q")
        w_at = w_core_at + RoundShift.latency     # t = 18: weight step ready
        master = delay(m, en, beat.master, w_at, name="master")
        flags = []  # (flag, beat time it is valid at), counted once the beat leaves
        for n in range(self._lanes):
            m.d.comb += core_v.value[n].eq(
                _product(m, en, mu_q, beat.velocity[n], name=f"lane{n}_mu_v"))
            total = stage(m, en, core_v.data[n] + core_g.data[n], name=f"lane{n}_v_sum")
            velocity, v_sat = _saturate(m, en, total, name=f"lane{n}_velocity")
            m.d.comb += core_w.value[n].eq(
                _product(m, en, lr_q, velocity, name=f"lane{n}_lr_v"))
            diff = stage(m, en, master[n] - core_w.data[n], name=f"lane{n}_w_diff")
            new_master, w_sat = _saturate(m, en, diff, name=f"lane{n}_master")
            m.d.comb += [
                self.o.payload.master[n].eq(new_master),
                self.o.payload.velocity[n].eq(
                    delay(m, en, velocity, self.latency - v_at, name=f"lane{n}_velocity_out")),
            ]
            flags += [(core_g.sat[n], v_at - 2), (core_v.sat[n], v_at - 2), (v_sat, v_at),
                      (core_w.sat[n], w_at), (w_sat, self.latency)]
        self._count_saturations(m, [delay(m, en, flag, self.latency - at, name=f"flag{k}")
                                    for k, (flag, at) in enumerate(flags)])
        return m

    def _count_saturations(self, m, flags):
        left = self.o.valid & self.o.ready
        beat_total = Signal(range(len(flags) + 1))
        m.d.sync += beat_total.eq(Mux(left, sum(flags), 0))
        m.d.sync += self.saturations.eq(self.saturations + beat_total)
        with m.If(self.clear):
            m.d.sync += [beat_total.eq(0), self.saturations.eq(0)]
