"""The SGD-with-momentum update unit: new master weights and velocities, lane by lane.

Per lane it computes exactly ``numerics.sgd_momentum``::

    g = requantize(g_acc, g_shift, bits=32)                       # key_g
    v = sat32(requantize(mu_q * v, 16, bits=32) + g)              # key_v
    w = sat32(w - requantize(lr_q * v, lr_shift, bits=32))        # key_w

with three ``RoundShift`` pipelines, two 16 x 32 multipliers (each split into two 16 x 16
products, one ECP5 MULT18X18D apiece) and saturating adders, each in its own stage.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.common.pipe import StreamPipeline, delay, stage
from edgetrain.hw.common.rng import RngBits
from .requant import RoundShift

__all__ = ["SGDUpdate"]

MU_FRAC = 16
WORD = 32
PRODUCT_BITS = 48  # 16-bit unsigned x 32-bit signed
PRODUCT_STAGES = 2

# The beat's timeline: t = the number of enabled cycles since the beat was accepted.
CORE_AT = max(PRODUCT_STAGES, RngBits.latency - RoundShift.rand_delay)  # g, mu*v requantize
V_AT = CORE_AT + RoundShift.latency + 2        # new velocity (after the add and saturation)
W_CORE_AT = V_AT + PRODUCT_STAGES              # lr*v requantizes
W_AT = W_CORE_AT + RoundShift.latency          # weight step ready
DEPTH = W_AT + 2                               # new master (after the sub and saturation)


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
    # It fits when every bit from WORD - 1 up equals the sign: no compare chains.
    sign, top = value[-1], value[WORD - 1:]
    too_big, too_small = ~sign & top.any(), sign & ~top.all()
    word = Mux(too_big, hi, Mux(too_small, lo, value))[:WORD].as_signed()
    return (stage(m, en, word, name=name),
            stage(m, en, too_big | too_small, name=f"{name}_sat"))


class SGDUpdate(wiring.Component):
    """Apply one SGD-with-momentum step to a stream of ``lanes`` weights per beat.

    Each beat on ``i`` holds per lane the batch-summed gradient accumulator ``g_acc``, the
    int32 ``master`` weight and ``velocity``, and ``index`` (the weight's flat position in the
    weight tensor; it selects the random words). ``g_shift``, ``mu_q``, ``lr_q``,
    ``lr_shift``, ``stochastic`` and the three keys are sampled with each beat as it is
    accepted. ``latency`` cycles later (at the earliest) ``o`` carries the new ``master`` and
    ``velocity``, bit-exact with ``numerics.sgd_momentum``; one beat per cycle while ``o`` is
    ready; under backpressure ``i.ready`` drops (no beat is ever dropped or repeated). Shifts
    in the full ``signed(8)`` / ``unsigned(8)`` ranges are exact (see ``hw/engine/requant.py``).

    ``saturations`` counts saturation events (up to five per weight, as ``sgd_momentum``
    counts them) since ``clear``; a beat is included ``stats_delay`` cycles after it left.

    ``stochastic=False`` builds a nearest-even-only unit without the three random
    generators: it ignores ``stochastic``, the keys and ``index`` (its user must refuse
    stochastic requests).
    """

    stats_delay = 1

    def __init__(self, *, lanes, acc_bits, stochastic=True):
        _check("lanes", lanes, 1, 256)
        _check("acc_bits", acc_bits, 2, 64)
        if not isinstance(stochastic, bool):
            raise TypeError(f"stochastic must be True or False, not {stochastic!r}")
        self._lanes, self._acc_bits, self._stochastic = lanes, acc_bits, stochastic
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
    def stochastic_rounding(self):
        """Whether the unit was built with stochastic rounding (else nearest-even only)."""
        return self._stochastic

    @property
    def latency(self):
        """Cycles from a beat's acceptance on ``i`` to its presentation on ``o``."""
        return DEPTH + StreamPipeline.QUEUE_LATENCY

    def _requantizer(self, m, en, name, in_bits, *, shift, at, key):
        """A ``RoundShift`` whose beat starts at time ``at``; stochastic with ``key``'s words.

        ``shift`` is a value sampled with the beat, or an integer built into the shifter."""
        fixed = shift if isinstance(shift, int) else None
        m.submodules[name] = core = RoundShift(lanes=self._lanes, in_bits=in_bits,
                                               out_bits=WORD, stochastic=self._stochastic,
                                               fixed_shift=fixed)
        m.d.comb += core.en.eq(en)
        if fixed is None:
            m.d.comb += core.shift.eq(shift)
        if self._stochastic:
            m.d.comb += [core.stochastic.eq(delay(m, en, self.stochastic, at,
                                                  name=f"{name}_stochastic")),
                         core.rand.eq(self._random_words(m, en, key, at, f"{name}_rng"))]
        return core

    def _random_words(self, m, en, key, at, name):
        """Return the lanes' random words, as a ``RoundShift`` starting at ``at`` wants them."""
        m.submodules[name] = rng = RngBits(lanes=self._lanes)
        m.d.comb += [rng.en.eq(en), rng.key.eq(key), rng.index.eq(self.i.payload.index)]
        lag = at + RoundShift.rand_delay - RngBits.latency
        return delay(m, en, rng.bits, lag, name=f"{name}_lag")

    def elaborate(self, platform):
        m = Module()
        pipe = StreamPipeline(m, i=self.i, o=self.o, stages=DEPTH,
                              extra_shape=5 * self._lanes)
        en = pipe.en
        beat = self.i.payload
        core_g = self._requantizer(
            m, en, "requant_g", self._acc_bits, at=CORE_AT, key=self.key_g,
            shift=delay(m, en, self.g_shift, CORE_AT, name="g_shift"))
        core_v = self._requantizer(m, en, "requant_v", PRODUCT_BITS, shift=MU_FRAC,
                                   at=CORE_AT, key=self.key_v)
        lr_shift = Mux(self.lr_shift > 127, 127, self.lr_shift)[:8].as_signed()
        core_w = self._requantizer(
            m, en, "requant_w", PRODUCT_BITS, at=W_CORE_AT, key=self.key_w,
            shift=delay(m, en, lr_shift, W_CORE_AT, name="lr_shift"))
        g_acc = delay(m, en, beat.g_acc, CORE_AT, name="g_acc")
        lr_q = delay(m, en, self.lr_q, V_AT, name="lr_q")
        master = delay(m, en, beat.master, W_AT, name="master")
        flags = []  # (flag, beat time it is valid at), counted once the beat leaves
        for n in range(self._lanes):
            m.d.comb += [
                core_g.value[n].eq(g_acc[n]),
                core_v.value[n].eq(
                    _product(m, en, self.mu_q, beat.velocity[n], name=f"lane{n}_mu_v")),
            ]
            total = stage(m, en, core_v.data[n] + core_g.data[n], name=f"lane{n}_v_sum")
            velocity, v_sat = _saturate(m, en, total, name=f"lane{n}_velocity")
            m.d.comb += core_w.value[n].eq(
                _product(m, en, lr_q, velocity, name=f"lane{n}_lr_v"))
            diff = stage(m, en, master[n] - core_w.data[n], name=f"lane{n}_w_diff")
            new_master, w_sat = _saturate(m, en, diff, name=f"lane{n}_master")
            m.d.comb += [
                pipe.result.master[n].eq(new_master),
                pipe.result.velocity[n].eq(
                    delay(m, en, velocity, DEPTH - V_AT, name=f"lane{n}_velocity_out")),
            ]
            flags += [(core_g.sat[n], V_AT - 2), (core_v.sat[n], V_AT - 2), (v_sat, V_AT),
                      (core_w.sat[n], W_AT), (w_sat, DEPTH)]
        m.d.comb += pipe.extra.eq(Cat(delay(m, en, flag, DEPTH - at, name=f"flag{k}")
                                      for k, (flag, at) in enumerate(flags)))
        self._count_saturations(m, pipe)
        return m

    def _count_saturations(self, m, pipe):
        flags = pipe.extra_out
        beat_total = Signal(range(len(flags) + 1))
        m.d.sync += beat_total.eq(Mux(pipe.left, sum(flags[k] for k in range(len(flags))), 0))
        m.d.sync += self.saturations.eq(self.saturations + beat_total)
        with m.If(self.clear):
            m.d.sync += [beat_total.eq(0), self.saturations.eq(0)]
