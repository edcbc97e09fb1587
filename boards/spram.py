"""The iCE40UP5K's single-port RAMs (SB_SPRAM256KA) as one buffer behind a memory port."""

from amaranth.hdl import Module, Signal, Instance, Array, ClockSignal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from edgetrain.hw.buffers.memport import MemoryPortSignature

__all__ = ["SPRAMBuffer"]

SPRAM_WORDS = 16384


class SPRAMBuffer(wiring.Component):
    """``banks`` x 16384 words of 16 bits in iCE40UP5K SPRAM, behind ``port`` (always ready).

    Follows ``MemoryPortSignature``: read data one cycle after the request, held until the
    next read. Only for iCE40UP5K builds (the primitive has no simulation model here).
    """

    def __init__(self, *, banks=4):
        if banks not in (1, 2, 4):
            raise ValueError(f"banks must be 1, 2 or 4 (the UP5K has 4 SPRAMs), not {banks!r}")
        self._banks = banks
        super().__init__({"port": In(MemoryPortSignature(
            addr_bits=14 + (banks - 1).bit_length(), data_bits=16))})

    @property
    def depth(self):
        return self._banks * SPRAM_WORDS

    def elaborate(self, platform):
        m = Module()
        port = self.port
        bank = port.addr[14:]
        outputs = Array(Signal(16, name=f"bank{i}_data") for i in range(self._banks))
        for i in range(self._banks):
            selected = (bank == i) if self._banks > 1 else 1
            m.submodules[f"spram{i}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=port.addr[:14], i_DATAIN=port.w_data, i_MASKWREN=0b1111,
                i_WREN=port.w_en, i_CHIPSELECT=selected & (port.r_en | port.w_en),
                i_CLOCK=ClockSignal(), i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                o_DATAOUT=outputs[i])
        # A bank's output is only defined right after its read: hold the last read word.
        read_bank, reading, held = Signal.like(bank), Signal(), Signal(16)
        m.d.sync += [read_bank.eq(bank), reading.eq(port.r_en)]
        with m.If(reading):
            m.d.sync += held.eq(outputs[read_bank])
        m.d.comb += [port.ready.eq(1),
                     port.r_data.eq(Mux(reading, outputs[read_bank], held))]
        return m
