"""The Tm x Tn array of signed 16 x 16 multiply-accumulators shared by FP, BP and WU.

FP/BP (output-stationary): PE(i, j) multiplies ``a[i][j]`` (a weight) by ``b[j]`` (an input
channel); a registered adder tree reduces each row over j and one exact accumulator per row
sums the reduction. WU (outer product): ``a[i][j] = dy[i]``, ``b[j] = x[j]`` and each PE keeps
its own exact accumulator, with no adder tree.

Every stage is a register (operands, products, each tree level, accumulators), so no adder
tree or accumulator sits on a multiplier's path: operands and products are the input and
output registers Yosys can place around an ECP5 MULT18X18D / iCE40 SB_MAC16.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PEArray"]


def _delay(m, en, sig, n, name):
    """Return ``sig`` delayed by ``n`` enabled cycles, and every tap along the way."""
    taps = [sig]
    for k in range(n):
        r = Signal.like(sig, name=f"{name}_d{k + 1}")
        with m.If(en):
            m.d.sync += r.eq(taps[-1])
        taps.append(r)
    return taps


class PEArray(wiring.Component):
    """Multiply, reduce and accumulate one tap per enabled cycle.

    Inputs are sampled when ``en`` is high: ``valid``, ``wu`` (WU mode, held during a run),
    ``first``/``last`` (first/last tap of one reduction), ``side`` (opaque bits that come out
    with the reduction's result), ``a`` (``a[i * tn + j]``) and ``b``. A result appears on
    ``fp_*`` (``tm`` lanes, ``fp_latency`` enabled cycles after the ``last`` tap) or
    ``wu_*`` (``tm * tn`` lanes, ``wu_latency`` cycles after) and holds while ``en`` is low.
    Accumulators are ``acc_bits`` wide; the caller guarantees that suffices.
    """

    def __init__(self, *, tm, tn, acc_bits, side_bits=1):
        for name, v in (("tm", tm), ("tn", tn), ("acc_bits", acc_bits), ("side_bits", side_bits)):
            if not isinstance(v, int) or v < 1:
                raise TypeError(f"{name} must be a positive integer, not {v!r}")
        if acc_bits < 32 + (tn - 1).bit_length():
            raise ValueError(f"acc_bits {acc_bits} cannot hold a sum of {tn} products")
        self._tm, self._tn, self._acc_bits = tm, tn, acc_bits
        self._levels = (tn - 1).bit_length()
        super().__init__({
            "en": In(1), "valid": In(1), "wu": In(1), "first": In(1), "last": In(1),
            "side": In(side_bits),
            "a": In(data.ArrayLayout(signed(16), tm * tn)),
            "b": In(data.ArrayLayout(signed(16), tn)),
            "fp_valid": Out(1), "fp_side": Out(side_bits),
            "fp_acc": Out(data.ArrayLayout(signed(acc_bits), tm)),
            "wu_valid": Out(1), "wu_side": Out(side_bits),
            "wu_acc": Out(data.ArrayLayout(signed(acc_bits), tm * tn)),
        })

    @property
    def fp_latency(self):
        """Enabled cycles from a ``last`` tap at the inputs to its result on ``fp_acc``."""
        return 3 + self._levels

    @property
    def wu_latency(self):
        """Enabled cycles from a ``last`` tap at the inputs to its result on ``wu_acc``."""
        return 3

    def elaborate(self, platform):
        m = Module()
        tm, tn, en = self._tm, self._tn, self.en
        ra = Signal.like(self.a)
        rb = Signal.like(self.b)
        prod = [Signal(signed(32), name=f"p_{i}_{j}") for i in range(tm) for j in range(tn)]
        with m.If(en):
            m.d.sync += [ra.eq(self.a), rb.eq(self.b)]
            m.d.sync += [prod[i * tn + j].eq(ra[i * tn + j] * rb[j])
                         for i in range(tm) for j in range(tn)]
        ctl = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1,
                                        "side": len(self.side)}))
        m.d.comb += [ctl.valid.eq(self.valid), ctl.first.eq(self.first),
                     ctl.last.eq(self.last), ctl.side.eq(self.side)]
        ctl_taps = _delay(m, en, ctl, 2 + self._levels, "ctl")
        self._accumulate(m, prod, ctl_taps[2], self.wu, self.wu_valid, self.wu_side,
                         self.wu_acc, "wu")
        sums = self._tree(m, prod)
        self._accumulate(m, sums, ctl_taps[2 + self._levels], ~self.wu, self.fp_valid,
                         self.fp_side, self.fp_acc, "fp")
        return m

    def _tree(self, m, prod):
        """Return ``tm`` row sums of ``prod`` after ``levels`` registered adder levels."""
        tm, tn = self._tm, self._tn
        rows = [prod[i * tn:(i + 1) * tn] for i in range(tm)]
        for lv in range(self._levels):
            nxt = []
            for i, row in enumerate(rows):
                out = []
                for k in range(0, len(row), 2):
                    r = Signal(signed(33 + lv), name=f"t{lv}_{i}_{k // 2}")
                    with m.If(self.en):
                        m.d.sync += r.eq(row[k] + row[k + 1] if k + 1 < len(row) else row[k])
                    out.append(r)
                nxt.append(out)
            rows = nxt
        return [row[0] for row in rows]

    def _accumulate(self, m, terms, ctl, active, o_valid, o_side, o_acc, name):
        """Accumulate ``terms`` lane-wise; on a ``last`` tap emit the sums to ``o_acc``."""
        acc = [Signal(signed(self._acc_bits), name=f"{name}_acc{k}") for k in range(len(terms))]
        with m.If(self.en):
            m.d.sync += o_valid.eq(ctl.valid & ctl.last & active)
            with m.If(ctl.valid & active):
                for k, term in enumerate(terms):
                    total = Mux(ctl.first, 0, acc[k]) + term
                    m.d.sync += acc[k].eq(total)
                    with m.If(ctl.last):
                        m.d.sync += o_acc[k].eq(total)
                with m.If(ctl.last):
                    m.d.sync += o_side.eq(ctl.side)
