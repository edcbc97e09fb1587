"""The counter-based random generator as hardware: ``rng_bits(key, index)`` per lane.

``mix32`` (Jenkins' six-step integer hash; its reference is ``edgetrain.sim.golden.numerics``)
needs only adders, xors and wiring. This is the one hardware copy: ``MIX32_STAGES`` groups its
steps so that no stage holds more than one carry chain: (1), (2, 3), (4), (5, 6). ``RngBits``
evaluates it on every lane with a register after each group; ``mix32_comb`` is the same
function without registers (the eDRAM buffer's decay pattern).
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pipe import stage

__all__ = ["MIX32_STAGES", "mix32_comb", "mix32_stage", "RngBits"]


def _wrap(x):
    return x[:32]


def _step1(x):
    return _wrap(x + 0x7ED55D16 + (x << 12))


def _step2(x):
    return x ^ 0xC761C23C ^ (x >> 19)


def _step3(x):
    return _wrap(x + 0x165667B1 + (x << 5))


def _step4(x):
    return _wrap(x + 0xD3A2646C) ^ _wrap(x << 9)


def _step5(x):
    return _wrap(x + 0xFD7046C5 + (x << 3))


def _step6(x):
    return x ^ 0xB55A4F09 ^ (x >> 16)


# Each group holds at most one carry chain (adds), so each stage is one add deep.
MIX32_STAGES = ((_step1,), (_step2, _step3), (_step4,), (_step5, _step6))


def mix32_stage(k, x):
    """Return the combinational logic of pipeline stage ``k`` of ``mix32`` applied to ``x``."""
    for step in MIX32_STAGES[k]:
        x = step(x)
    return x


def mix32_comb(m, x, *, name):
    """Return ``mix32(x)`` of the 32-bit ``x`` as combinational logic added to ``m``.

    Each stage's result is a named 32-bit signal (``<name>_s1`` .. ``<name>_s4``).
    """
    for k in range(len(MIX32_STAGES)):
        s = Signal(32, name=f"{name}_s{k + 1}")
        m.d.comb += s.eq(mix32_stage(k, x))
        x = s
    return x


class RngBits(wiring.Component):
    """Compute ``rng_bits(key, index[n])`` for every lane ``n``, pipelined.

    ``index`` and ``key`` are sampled on each cycle where ``en`` is high; the word for them
    appears on ``bits`` after ``latency`` enabled cycles. While ``en`` is low nothing moves.
    """

    latency = len(MIX32_STAGES)

    def __init__(self, *, lanes):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise TypeError(f"lanes must be a positive integer, not {lanes!r}")
        self._lanes = lanes
        words = data.ArrayLayout(unsigned(32), lanes)
        super().__init__({
            "en": In(1),
            "key": In(32),
            "index": In(words),
            "bits": Out(words),
        })

    @property
    def lanes(self):
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        for n in range(self._lanes):
            x = self.key ^ self.index[n]
            for k in range(self.latency):
                x = stage(m, self.en, mix32_stage(k, x), name=f"lane{n}_mix{k + 1}")
            m.d.comb += self.bits[n].eq(x)
        return m
