"""The conv engine's descriptor check: a multi-cycle verdict with no multiplier.

``DescriptorCheck`` decides whether a descriptor can run. Its rules are those of
``descriptor_fields`` (so every descriptor it produces for a valid layer passes); a descriptor
is *bad* when any of these holds (``T = tm``, ``s = 2 if stride2 else 1``):

* a zero ``batch``, ``out_tiles``, ``red_tiles``, ``out_ch``, ``red_ch``, ``out_h``,
  ``out_w``, ``in_h``, ``in_w`` or ``kernel``;
* ``batch > max_batch``, ``out_ch`` or ``red_ch > max_channels``, ``kernel > max_kernel``,
  ``pad >= kernel``;
* a tile count other than ``ceil(ch / T)`` (``out_tiles`` for ``out_ch``, ``red_tiles`` for
  ``red_ch``);
* per axis, with ``side, result = in, out`` (BP: ``out, in``, the layer run backwards):
  ``side > max_size`` or ``result != (side + 2 pad - kernel) // s + 1`` (floor division);
* a run whose last row, every loop at its end, lies past a buffer:
  ``(batch-1) act_n + (red_tiles-1) act_plane + in_h in_w > input_depth``,
  ``(batch-1) out_n + (out_tiles-1) out_plane + out_h out_w > output_depth`` or
  ``(out_tiles-1) w_out + (red_tiles-1) w_red + kernel kernel > weight_depth``;
* ``stochastic`` set in a build without stochastic rounding
  (``config.stochastic_rounding`` false).

The nine products of the extents go through one shift-add multiplier, one multiplier bit per
cycle, into one accumulator; the other rules are compares, registered in two stages. The
verdict takes ``DescriptorCheck(config=cfg).latency`` cycles: 37 for the iCEBreaker build,
46 for the default configuration (8 x 8, limits 5/64/32/32).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.common.constmul import times_constant
from edgetrain.hw.config import AcceleratorConfig
from .descriptor import MODES, DescriptorLayout

__all__ = ["DescriptorCheck"]


class DescriptorCheck(wiring.Component):
    """Check descriptor ``desc`` against the rules of the module docstring.

    ``desc`` must be held from ``start`` until ``done``. A ``start`` pulse while idle begins a
    check (a ``start`` during a check is ignored); ``done`` is high for one cycle, ``latency``
    cycles after the ``start`` cycle, and ``bad`` is the verdict: valid with ``done`` and held
    until the next verdict.
    """

    def __init__(self, *, config):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._cfg = config
        super().__init__({
            "desc": In(DescriptorLayout(config)),
            "start": In(1),
            "done": Out(1),
            "bad": Out(1),
        })

    @property
    def config(self):
        return self._cfg

    @property
    def latency(self):
        """Cycles from the ``start`` cycle to the ``done`` cycle."""
        bits = sum(len(mult) for group in self._extents() for _, mult, _ in group[2])
        return bits + 3     # load, one cycle per multiplier bit, last compare, verdict

    def _extents(self):
        """Return per buffer ``(name, depth, [(state, multiplier, multiplicand)])``."""
        d, cfg = self.desc, self._cfg

        def minus_one(v):
            return (v - 1)[:len(v)]     # a zero field is refused by another rule
        return [
            ("ACT", Buffer.ACT.depth(cfg), [("ACT-BATCH", minus_one(d.batch), d.act_n),
                                      ("ACT-TILES", minus_one(d.red_tiles), d.act_plane),
                                      ("ACT-PLANE", d.in_h, d.in_w)]),
            ("OUT", Buffer.OUT.depth(cfg), [("OUT-BATCH", minus_one(d.batch), d.out_n),
                                       ("OUT-TILES", minus_one(d.out_tiles), d.out_plane),
                                       ("OUT-PLANE", d.out_h, d.out_w)]),
            ("WGT", Buffer.WGT.depth(cfg), [("WGT-OUT-TILES", minus_one(d.out_tiles), d.w_out),
                                       ("WGT-RED-TILES", minus_one(d.red_tiles), d.w_red),
                                       ("WGT-TAPS", d.kernel, d.kernel)]),
        ]

    def elaborate(self, platform):
        m = Module()
        rules_bad = self._rules(m)
        self._extent_check(m, rules_bad)
        return m

    def _extent_check(self, m, rules_bad):
        """Sum each buffer's extent by shift-add, compare it with the depth; give the verdict."""
        terms = [(state, mult, mcand, depth, i == len(group) - 1)
                 for _, depth, group in self._extents()
                 for i, (state, mult, mcand) in enumerate(group)]
        width = max(len(a) + len(b) for _, b, a, _, _ in terms)
        mcand, mult = Signal(width), Signal(max(len(b) for _, b, _, _, _ in terms))
        bit = Signal(range(len(mult)))
        acc, total = Signal(width + 2), Signal(width + 2)      # three products, no overflow
        limit = Signal(range(max(depth for *_, depth, _ in terms) + 1))
        pending, over = Signal(), Signal()
        acc_next = acc + Mux(mult[0], mcand, 0)

        def load(i):
            _, b, a, _, _ = terms[i]
            return [mcand.eq(a), mult.eq(b), bit.eq(0)]

        # One group's total is compared with its depth while the next group multiplies.
        m.d.sync += [self.done.eq(0), pending.eq(0)]
        with m.If(pending):
            m.d.sync += over.eq(over | (total > limit))
        with m.FSM(name="check"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += load(0) + [acc.eq(0), over.eq(0)]
                    m.next = terms[0][0]
            for i, (state, b, _, depth, closes) in enumerate(terms):
                with m.State(state):
                    m.d.sync += [acc.eq(acc_next), mcand.eq(mcand << 1), mult.eq(mult >> 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == len(b) - 1):
                        if closes:
                            m.d.sync += [total.eq(acc_next), limit.eq(depth), pending.eq(1),
                                         acc.eq(0)]
                        if i + 1 < len(terms):
                            m.d.sync += load(i + 1)
                        m.next = terms[i + 1][0] if i + 1 < len(terms) else "LAST-COMPARE"
            with m.State("LAST-COMPARE"):
                m.next = "VERDICT"
            with m.State("VERDICT"):
                m.d.sync += [self.done.eq(1), self.bad.eq(rules_bad | over)]
                m.next = "IDLE"

    def _rules(self, m):
        """Return the register "a rule other than the extents is broken" (2 cycles behind)."""
        d, cfg, t = self.desc, self._cfg, self._cfg.tm
        bp = d.mode == MODES.index("bp")
        fields = ("batch", "out_tiles", "red_tiles", "out_ch", "red_ch", "out_h", "out_w",
                  "in_h", "in_w", "kernel")
        checks = [d[f] == 0 for f in fields]
        # tiles == ceil(ch / T)  <=>  (tiles - 1) * T < ch <= tiles * T
        for side in ("out", "red"):
            span = times_constant(d[f"{side}_tiles"], t)
            checks += [span < d[f"{side}_ch"], span >= d[f"{side}_ch"] + t]
        checks += [d.kernel > cfg.max_kernel, d.pad >= d.kernel, d.batch > cfg.max_batch,
                   d.out_ch > cfg.max_channels, d.red_ch > cfg.max_channels]
        if getattr(cfg, "stochastic_rounding", True) is False:
            checks.append(d.stochastic)
        # Output sides: (side + 2 pad - K) // s + 1 == (side + 2 pad + s - K) >> (s - 1), which
        # is negative, so never equal, when K exceeds the padded side.
        reach, result = [], []
        for out, inp in (("out_h", "in_h"), ("out_w", "in_w")):
            side = Mux(bp, d[out], d[inp])
            r = (side + (d.pad << 1) + 1 + d.stride2 - d.kernel).as_signed() >> d.stride2
            reach.append(Signal(r.shape(), name=f"reach_{out[-1]}"))
            result.append(Signal.like(d[inp], name=f"result_{out[-1]}"))
            m.d.sync += [reach[-1].eq(r), result[-1].eq(Mux(bp, d[inp], d[out]))]
            checks.append(side > cfg.max_size)
        plain, bad = Signal(len(checks)), Signal()
        m.d.sync += [plain.eq(Cat(*checks)),
                     bad.eq(plain.any() | Cat(*(a != b for a, b in zip(reach, result))).any())]
        return bad
