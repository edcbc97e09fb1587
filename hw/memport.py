"""The narrow memory-port interface between compute/DMA blocks and on-chip buffers.

Every on-chip buffer (the plain ``SRAMBuffer`` here, the eDRAM-style buffer with its refresh
controller elsewhere) exposes ports of ``MemoryPortSignature``, so an engine or a DMA works
with either. One port carries at most one request per cycle:

* The requester drives ``addr`` and raises ``r_en`` (read) or ``w_en`` (write, with
  ``w_data``); never both.
* The request is *accepted* in a cycle where ``ready`` is high. While ``ready`` is low the
  requester must hold the request unchanged (a refresh or an arbiter owns the bank).
* ``r_data`` holds the row of an accepted read exactly one cycle after acceptance, and keeps
  it until the next accepted read.
* ``r_last`` with an accepted read says "this is the last read of this row": the buffer may
  release it (an eDRAM-style buffer then stops keeping it alive). ``w_en`` makes a row live.
"""

from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MemoryPortSignature", "SRAMBuffer"]


class MemoryPortSignature(wiring.Signature):
    """Signature of one buffer port, from the requester's side (``Out`` = driven by it)."""

    def __init__(self, *, addr_bits, data_bits):
        if not isinstance(addr_bits, int) or addr_bits < 1:
            raise TypeError(f"addr_bits must be a positive integer, not {addr_bits!r}")
        if not isinstance(data_bits, int) or data_bits < 1:
            raise TypeError(f"data_bits must be a positive integer, not {data_bits!r}")
        self._addr_bits, self._data_bits = addr_bits, data_bits
        super().__init__({
            "addr": Out(addr_bits),
            "r_en": Out(1),
            "r_last": Out(1),
            "w_en": Out(1),
            "w_data": Out(data_bits),
            "r_data": In(data_bits),
            "ready": In(1),
        })

    @property
    def addr_bits(self):
        return self._addr_bits

    @property
    def data_bits(self):
        return self._data_bits

    def __eq__(self, other):
        return (isinstance(other, MemoryPortSignature) and
                (self.addr_bits, self.data_bits) == (other.addr_bits, other.data_bits))

    def __repr__(self):
        return f"MemoryPortSignature(addr_bits={self.addr_bits}, data_bits={self.data_bits})"


class SRAMBuffer(wiring.Component):
    """A plain (SRAM-like, never forgetting) buffer of ``depth`` rows of ``data_bits``.

    ``port`` is a ``MemoryPortSignature`` port (flipped: the buffer answers it); it is always
    ready. ``r_last`` is accepted and ignored.
    """

    def __init__(self, *, depth, data_bits, init=()):
        if not isinstance(depth, int) or depth < 2:
            raise TypeError(f"depth must be an integer >= 2, not {depth!r}")
        self._depth, self._data_bits = depth, data_bits
        self._init = list(init)
        super().__init__({
            "port": In(MemoryPortSignature(addr_bits=(depth - 1).bit_length(),
                                           data_bits=data_bits)),
        })

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        # A port never reads and writes in one cycle, so a read never meets a write to its
        # row: ``no_rw_check`` tells Yosys so. Without it, it builds a flip-flop and a bypass
        # multiplexer per data bit after the block RAM (read-before-write emulation), and the
        # block RAM's slow clock-to-out (5.6 ns on ECP5) then has logic behind it.
        m.submodules.mem = mem = memory.Memory(shape=self._data_bits, depth=self._depth,
                                               init=self._init, attrs={"no_rw_check": 1})
        rd = mem.read_port()
        wr = mem.write_port()
        m.d.comb += [
            self.port.ready.eq(1),
            rd.addr.eq(self.port.addr),
            rd.en.eq(self.port.r_en),
            self.port.r_data.eq(rd.data),
            wr.addr.eq(self.port.addr),
            wr.data.eq(self.port.w_data),
            wr.en.eq(self.port.w_en),
        ]
        return m
