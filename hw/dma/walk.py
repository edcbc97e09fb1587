"""Walk the buffer rows of a DMA descriptor: three nested counters with signed strides."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .descriptor import COUNT_BITS, PAD_BITS

__all__ = ["BufferWalker"]


class BufferWalker(wiring.Component):
    """Step through rows ``base + i2*s2 + i1*s1 + i0*s0`` (``i0`` fastest).

    ``start`` (one cycle, while not ``running``) resets the counters; the walk inputs must stay
    stable until the walk ends. While ``running``, ``addr`` is the current row, ``pad`` says it
    lies in the padding frame and ``step`` (one cycle) moves to the next; stepping from the
    last row clears ``running``. The caller has checked that every row fits the buffer.
    """

    def __init__(self, *, buf_addr_bits):
        self._abits = buf_addr_bits
        stride = signed(buf_addr_bits + 2)
        super().__init__({
            "start": In(1), "step": In(1),
            "base": In(buf_addr_bits),
            "n0": In(COUNT_BITS), "n1": In(COUNT_BITS), "n2": In(COUNT_BITS),
            "s0": In(stride), "s1": In(stride), "s2": In(stride),
            "pad_top": In(PAD_BITS), "pad_bottom": In(PAD_BITS),
            "pad_left": In(PAD_BITS), "pad_right": In(PAD_BITS),
            "running": Out(1),
            "addr": Out(buf_addr_bits),
            "pad": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        wide = signed(self._abits + COUNT_BITS + 4)
        a, a1, a2 = Signal(wide), Signal(wide), Signal(wide)
        i0, i1, i2 = Signal(COUNT_BITS), Signal(COUNT_BITS), Signal(COUNT_BITS)
        m.d.comb += [
            self.addr.eq(a),
            self.pad.eq((i2 < self.pad_top) | (i2 + self.pad_bottom >= self.n2) |
                        (i1 < self.pad_left) | (i1 + self.pad_right >= self.n1)),
        ]
        with m.If(self.start):
            m.d.sync += [a.eq(self.base), a1.eq(self.base), a2.eq(self.base),
                         i0.eq(0), i1.eq(0), i2.eq(0), self.running.eq(1)]
        with m.Elif(self.step & self.running):
            with m.If(i0 + 1 < self.n0):
                m.d.sync += [i0.eq(i0 + 1), a.eq(a + self.s0)]
            with m.Elif(i1 + 1 < self.n1):
                m.d.sync += [i0.eq(0), i1.eq(i1 + 1), a1.eq(a1 + self.s1), a.eq(a1 + self.s1)]
            with m.Elif(i2 + 1 < self.n2):
                nxt = a2 + self.s2
                m.d.sync += [i0.eq(0), i1.eq(0), i2.eq(i2 + 1), a2.eq(nxt), a1.eq(nxt),
                             a.eq(nxt)]
            with m.Else():
                m.d.sync += self.running.eq(0)
        return m
