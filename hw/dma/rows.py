"""Join the DMA's bus-wide buffer rows into the wider rows of a buffer behind it."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.memport import MemoryPortSignature

__all__ = ["WideRowAdapter"]


class WideRowAdapter(wiring.Component):
    """Present a buffer of ``wide_bits`` rows as rows of ``narrow_bits`` (``ratio`` per row).

    Narrow row ``a`` is slot ``a % ratio`` (bits ``narrow_bits * slot ..``) of wide row
    ``a // ratio``. ``narrow`` answers the DMA (``MemoryPortSignature``), ``wide`` drives the
    buffer. Writes: the ``ratio`` slots of a wide row must be written one after the other
    (any slot order, nothing else in between); the last one is passed through together with
    the collected ones, so a wide row costs no extra cycle. A write to another wide row before
    the current one is complete sets the sticky ``error`` (that wide row is then never
    written). Reads: each narrow read is one wide read; ``r_last`` is passed on with the read
    of the row's last slot. With the DMA's row format and ``ratio = T / lanes`` activation
    tiles become the engine's ``T``-channel rows; with ``ratio = T*T / lanes`` a FP weight
    block becomes its ``T x T`` rows (m-major).
    """

    def __init__(self, *, narrow_bits, ratio, wide_addr_bits):
        if not isinstance(ratio, int) or ratio < 1 or ratio & (ratio - 1):
            raise TypeError(f"ratio must be a power of two >= 1, not {ratio!r}")
        if not isinstance(narrow_bits, int) or narrow_bits < 1:
            raise TypeError(f"narrow_bits must be a positive integer, not {narrow_bits!r}")
        self._narrow_bits, self._ratio = narrow_bits, ratio
        self._slot_bits = ratio.bit_length() - 1
        super().__init__({
            "narrow": In(MemoryPortSignature(addr_bits=wide_addr_bits + self._slot_bits,
                                             data_bits=narrow_bits)),
            "wide": Out(MemoryPortSignature(addr_bits=wide_addr_bits,
                                            data_bits=narrow_bits * ratio)),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, w, ratio, sb = self.narrow, self.wide, self._ratio, self._slot_bits
        slot = n.addr[:sb] if sb else 0
        row = n.addr[sb:]
        held = Array(Signal(self._narrow_bits, name=f"slot{i}") for i in range(ratio))
        count = Signal(range(ratio + 1))
        current = Signal.like(row)
        final = count == ratio - 1
        m.d.comb += [w.addr.eq(row), w.r_en.eq(n.r_en),
                     w.r_last.eq(n.r_last & (slot == ratio - 1)),
                     n.r_data.eq(w.r_data.word_select(self._read_slot(m, n, slot),
                                                      self._narrow_bits))]
        parts = [Mux(slot == i, n.w_data, held[i]) for i in range(ratio)]
        m.d.comb += [w.w_en.eq(n.w_en & final), w.w_data.eq(Cat(*parts)),
                     n.ready.eq(Mux(n.w_en & final | n.r_en, w.ready, 1))]
        with m.If(n.w_en & n.ready):
            m.d.sync += held[slot].eq(n.w_data)
            m.d.sync += count.eq(Mux(final, 0, count + 1))
            m.d.sync += current.eq(row)
            with m.If((count != 0) & (row != current)):
                m.d.sync += self.error.eq(1)
        return m

    def _read_slot(self, m, n, slot):
        """The slot of the last accepted read, for its data one cycle later."""
        last = Signal(max(self._slot_bits, 1))
        with m.If(n.r_en & n.ready):
            m.d.sync += last.eq(slot)
        return last
