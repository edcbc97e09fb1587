"""``RegisterSlice``: a full-throughput stream register whose every output is a flip-flop."""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegisterSlice"]


class RegisterSlice(wiring.Component):
    """Pass stream ``i`` to stream ``o`` through a register, one beat per cycle.

    Parameters (keyword-only): ``shape``, the payload's shape or layout.

    A beat accepted on ``i`` is on ``o`` from the next cycle on; while ``o.ready`` is high a
    beat passes every cycle. ``o.valid``, ``o.payload`` and ``i.ready`` all come from
    flip-flops (AXI's "full" register slice), so no combinational path crosses the slice in
    either direction: when ``o`` stalls, the beat accepted in that cycle waits in a second
    (skid) register and ``i.ready`` is low from the next cycle until it has moved on. A beat
    on ``o`` stays, unchanged, until it is taken.
    """

    def __init__(self, *, shape):
        try:
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"shape must be a shape or a data layout, not {shape!r}") from None
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    shape = property(lambda self: self._shape)

    def elaborate(self, platform):
        m = Module()
        out, out_full = Signal(self._shape, reset_less=True), Signal()
        skid, skid_full = Signal(self._shape, reset_less=True), Signal()
        m.d.comb += [self.i.ready.eq(~skid_full), self.o.valid.eq(out_full),
                     self.o.payload.eq(out)]
        with m.If(~out_full | self.o.ready):
            with m.If(skid_full):
                m.d.sync += [out.eq(skid), out_full.eq(1), skid_full.eq(0)]
            with m.Else():
                m.d.sync += [out.eq(self.i.payload), out_full.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_full):
            m.d.sync += [skid.eq(self.i.payload), skid_full.eq(1)]
        return m
