"""The Tm x Tn array of signed 16 x 16 multiply-accumulators shared by FP, BP and WU.

FP/BP (output-stationary): PE(i, j) multiplies ``a[i][j]`` (a weight) by ``b[j]`` (an input
channel); a registered adder tree reduces each row over j and one exact accumulator per row
sums the reduction. WU (outer product): ``a[i][j] = dy[i]``, ``b[j] = x[j]`` and each PE keeps
its own exact accumulator, with no adder tree.

The array is free-running: it has no enable, every register loads every cycle and a ``valid``
bit travels with each tap. An empty cycle is a tap whose operands are zero, so it adds nothing
to any accumulator; the accumulators need neither an enable nor a hold. Each stage is a
register (operands, products, each tree level, accumulators), so no adder tree or accumulator
sits on a multiplier's path: operands and products are the input and output registers Yosys
can place around an ECP5 MULT18X18D / iCE40 SB_MAC16. The only wide nets are the delayed
``first``/``last`` bits (registers, one per stage) that every accumulator lane reads.
"""

from amaranth.hdl import ClockSignal, Instance, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.common.fanout import broadcast

__all__ = ["PEArray"]


def _delay(m, sig, n, name):
    """Return the taps ``[sig, sig delayed 1 cycle, ..., sig delayed n cycles]``."""
    taps = [sig]
    for k in range(n):
        r = Signal.like(sig, name=f"{name}_d{k + 1}")
        m.d.sync += r.eq(taps[-1])
        taps.append(r)
    return taps


def _ecp5_product(m, a, b, prod, *, name):
    """Drive ``prod`` with ``a * b`` two cycles later from one ECP5 MULT18X18D.

    The block's own input (A, B) and output registers are the operand and product stages:
    Yosys maps a ``*`` to a MULT18X18D without its registers, and nextpnr then places the
    fabric flip-flops around it far apart (the routed 4x4 engine's critical path was operand
    flip-flop -> multiplier -> product flip-flop, 6 ns of it routing).
    """
    p = Signal(36, name=f"{name}_p")
    ports = {f"i_A{k}": a[min(k, 15)] for k in range(18)}          # sign-extended to 18
    ports |= {f"i_B{k}": b[min(k, 15)] for k in range(18)}
    ports |= {f"i_C{k}": 0 for k in range(18)}
    ports |= {f"o_P{k}": p[k] for k in range(36)}
    # Only CLK0/CE0/RST0 of the control pins are connected, and no cascade input: nextpnr
    # cannot route the constant net to the unused clock or shift-in (SRIA/SRIB) pins
    # ("Failed to route arc ... of net $PACKER_GND_NET").
    ports |= {"i_CLK0": ClockSignal("sync"), "i_CE0": 1, "i_RST0": 0}
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
        p_GSR="DISABLED",
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0, **ports)
    m.d.comb += prod.eq(p[:32].as_signed())


class PEArray(wiring.Component):
    """Multiply, reduce and accumulate one tap per cycle, without stalls.

    Inputs are sampled every cycle: ``valid`` (this cycle holds a tap), ``wu`` (WU mode, held
    during a run), ``first``/``last`` (first/last tap of one reduction), ``side`` (opaque
    bits that come out with the reduction's result), ``a`` (``a[i * tn + j]``) and ``b``.
    The caller must present zero operands on a cycle without a tap (``valid`` low).

    FP/BP: ``fp_valid`` is high for one cycle ``fp_latency`` cycles after a valid ``last``
    tap; ``fp_acc`` (``tm`` lanes) and ``fp_side`` hold the result in that cycle only.

    WU: ``wu_valid`` is high for one cycle ``wu_latency`` cycles after a valid ``last`` tap;
    ``wu_acc`` (``tm * tn`` lanes) and ``wu_side`` then hold that result until the cycle the
    next WU result arrives. The caller takes each result before then.

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
            "valid": In(1), "wu": In(1), "first": In(1), "last": In(1),
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
        """Cycles from a ``last`` tap at the inputs to its result on ``fp_acc``."""
        return 3 + self._levels

    @property
    def wu_latency(self):
        """Cycles from a ``last`` tap at the inputs to its result on ``wu_acc``."""
        return 3

    def elaborate(self, platform):
        m = Module()
        tm, tn = self._tm, self._tn
        # No reset: Yosys can then pack these into the DSP block's input and output
        # registers (an iCE40 SB_MAC16 register has no reset). A stale value after a reset
        # is discarded by the next ``first`` tap.
        prod = [Signal(signed(32), name=f"p_{i}_{j}", reset_less=True)
                for i in range(tm) for j in range(tn)]
        if getattr(platform, "family", None) == "ecp5":
            for i in range(tm):
                for j in range(tn):
                    _ecp5_product(m, self.a[i * tn + j], self.b[j], prod[i * tn + j],
                                  name=f"mult_{i}_{j}")
        else:
            ra = Signal.like(self.a, reset_less=True)
            rb = Signal.like(self.b, reset_less=True)
            m.d.sync += [ra.eq(self.a), rb.eq(self.b)]
            m.d.sync += [prod[i * tn + j].eq(ra[i * tn + j] * rb[j])
                         for i in range(tm) for j in range(tn)]
        m.d.sync += [self.fp_valid.eq(0), self.wu_valid.eq(0)]
        ctl = Signal(data.StructLayout({"first": 1, "last": 1, "side": len(self.side)}))
        m.d.comb += [ctl.first.eq(self.valid & self.first), ctl.last.eq(self.valid & self.last),
                     ctl.side.eq(self.side)]
        taps = _delay(m, ctl, 2 + self._levels, "ctl")
        self._accumulate(m, prod, taps[2], self.wu, self.wu_valid, self.wu_side,
                         self.wu_acc, hold=True, name="wu", platform=platform)
        self._accumulate(m, self._tree(m, prod), taps[2 + self._levels], ~self.wu,
                         self.fp_valid, self.fp_side, self.fp_acc, hold=False, name="fp",
                         platform=platform)
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
                    m.d.sync += r.eq(row[k] + row[k + 1] if k + 1 < len(row) else row[k])
                    out.append(r)
                nxt.append(out)
            rows = nxt
        return [row[0] for row in rows]

    def _accumulate(self, m, terms, ctl, active, o_valid, o_side, o_acc, *, hold, name,
                    platform):
        """Accumulate ``terms`` lane-wise into ``o_acc``.

        On a ``last`` tap the sums go to ``o_acc``: every cycle (``hold`` false, valid only
        with ``o_valid``) or only then (``hold`` true: the result stays until the next one).
        With ``T*T`` lanes (``hold``) ``first`` and the result enable each reach some 3,000
        flip-flops, so they go on global networks (``hw.fanout``).
        """
        done, first = ctl.last & active, ctl.first
        if hold:
            done = broadcast(m, platform, done, name=f"{name}_done")
            first = broadcast(m, platform, first, name=f"{name}_first")
        for k, term in enumerate(terms):
            acc = Signal(signed(self._acc_bits), name=f"{name}_acc{k}")
            total = Mux(first, 0, acc) + term
            m.d.sync += acc.eq(total)
            if hold:
                with m.If(done):
                    m.d.sync += o_acc[k].eq(total)
            else:
                m.d.sync += o_acc[k].eq(total)
        with m.If(done):
            m.d.sync += [o_valid.eq(1), o_side.eq(ctl.side)]
