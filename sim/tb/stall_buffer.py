"""A test buffer that is not ready on pseudo-random cycles, to exercise the stall paths.

``StallingBuffer`` wraps ``SRAMBuffer`` (with lane writes) behind the same port and drops
``ready`` on about one cycle in four (a 16-bit LFSR, seeded per buffer), as a refreshing
eDRAM bank or a busy arbiter would. Requests are passed to the SRAM only when accepted, so
``r_data`` keeps the last accepted read as the port contract says.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.memport import MemoryPortSignature, SRAMBuffer

__all__ = ["StallingBuffer", "stalling_factory"]


class StallingBuffer(wiring.Component):
    """An ``SRAMBuffer`` whose port is not ready on pseudo-random cycles."""

    def __init__(self, *, depth, data_bits, seed=1):
        if not 0 < seed < 1 << 16:
            raise ValueError(f"seed must be in 1..65535, not {seed!r}")
        self._sram = SRAMBuffer(depth=depth, data_bits=data_bits, lane_writes=True)
        self._seed = seed
        super().__init__({"port": In(MemoryPortSignature(
            addr_bits=(depth - 1).bit_length(), data_bits=data_bits, lane_writes=True))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.sram = sram = self._sram
        lfsr = Signal(16, init=self._seed)
        m.d.sync += lfsr.eq((lfsr << 1) | (lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]))
        ready = ~(lfsr[3] & lfsr[7])
        p = self.port
        m.d.comb += [p.ready.eq(ready), p.r_data.eq(sram.port.r_data),
                     sram.port.addr.eq(p.addr), sram.port.w_data.eq(p.w_data),
                     sram.port.w_lanes.eq(p.w_lanes),
                     sram.port.r_en.eq(p.r_en & ready), sram.port.w_en.eq(p.w_en & ready),
                     sram.port.r_last.eq(p.r_last)]
        return m


_SEEDS = {Buffer.ACT: 0xACE1, Buffer.WGT: 0x1D2C, Buffer.OUT: 0x0B5E, Buffer.MST: 0x7A11}


def stalling_factory(buffer, depth, data_bits):
    """``ConvEngineTile`` buffer factory: a differently seeded ``StallingBuffer`` per
    ``Buffer``."""
    return StallingBuffer(depth=depth, data_bits=data_bits, seed=_SEEDS[buffer])
