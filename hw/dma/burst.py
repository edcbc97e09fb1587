"""Cut a DMA descriptor's DRAM pattern into AXI4 INCR bursts."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .descriptor import COUNT_BITS

__all__ = ["BurstIssuer"]


class BurstIssuer(wiring.Component):
    """Issue the bursts of ``seg_count2 x seg_count`` segments of ``seg_beats`` beats.

    ``start`` (one cycle, while idle) latches the pattern inputs, which must then stay stable
    until ``done``. A burst is offered on ``addr``/``len`` (AXI ``len``: beats - 1) with
    ``valid`` while ``allow`` is high and is taken in a cycle with ``valid & ready``. Bursts
    are at most ``max_burst_beats`` long and never cross a 4 KiB boundary (the rule of
    ``layout.split_bursts``). ``done`` is high while no burst is left to issue.
    """

    def __init__(self, *, addr_bits, bus_bytes, max_burst_beats):
        if bus_bytes not in (4, 8, 16):
            raise TypeError(f"bus_bytes must be 4, 8 or 16, not {bus_bytes!r}")
        if not isinstance(max_burst_beats, int) or not 1 <= max_burst_beats <= 256:
            raise TypeError(f"max_burst_beats must be an integer in 1..256, not "
                            f"{max_burst_beats!r}")
        self._shift = bus_bytes.bit_length() - 1
        self._max_beats = max_burst_beats
        super().__init__({
            "start": In(1),
            "dram_addr": In(addr_bits), "seg_beats": In(COUNT_BITS),
            "seg_count": In(COUNT_BITS), "seg_stride": In(addr_bits),
            "seg_count2": In(COUNT_BITS), "seg_stride2": In(addr_bits),
            "allow": In(1),
            "valid": Out(1), "ready": In(1),
            "addr": Out(addr_bits), "len": Out(8),
            "done": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        addr = Signal.like(self.addr)
        seg_start, grp_start = Signal.like(self.addr), Signal.like(self.addr)
        seg_left = Signal(COUNT_BITS)
        i_seg, i_grp = Signal(COUNT_BITS), Signal(COUNT_BITS)

        # Beats to the next 4 KiB boundary, then the shortest of the three limits.
        to_4k = Signal(13)
        beats = Signal(COUNT_BITS)
        m.d.comb += to_4k.eq((4096 - addr[:12]) >> self._shift)
        lim = Mux(to_4k < self._max_beats, to_4k, self._max_beats)
        m.d.comb += [
            beats.eq(Mux(seg_left < lim, seg_left, lim)),
            self.addr.eq(addr),
            self.len.eq(beats - 1),
            self.valid.eq(~self.done & self.allow),
        ]

        with m.If(self.start):
            m.d.sync += [addr.eq(self.dram_addr), seg_start.eq(self.dram_addr),
                         grp_start.eq(self.dram_addr), seg_left.eq(self.seg_beats),
                         i_seg.eq(0), i_grp.eq(0), self.done.eq(0)]
        with m.Elif(self.valid & self.ready):
            with m.If(beats != seg_left):
                m.d.sync += [addr.eq(addr + (beats << self._shift)),
                             seg_left.eq(seg_left - beats)]
            with m.Else():
                m.d.sync += seg_left.eq(self.seg_beats)
                with m.If(i_seg + 1 < self.seg_count):
                    m.d.sync += [i_seg.eq(i_seg + 1), seg_start.eq(seg_start + self.seg_stride),
                                 addr.eq(seg_start + self.seg_stride)]
                with m.Elif(i_grp + 1 < self.seg_count2):
                    nxt = grp_start + self.seg_stride2
                    m.d.sync += [i_seg.eq(0), i_grp.eq(i_grp + 1), grp_start.eq(nxt),
                                 seg_start.eq(nxt), addr.eq(nxt)]
                with m.Else():
                    m.d.sync += self.done.eq(1)
        return m
