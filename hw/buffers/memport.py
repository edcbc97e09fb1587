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
* A port with ``lane_writes`` also has ``w_lanes``: one write enable per 16-bit lane of the
  row (lane k = bits 16k..16k+15, the last lane possibly narrower; see ``row_lanes``). A write
  changes only the lanes whose bit is set; ``w_lanes`` is all ones unless driven. A host that
  writes one 16-bit word of a wide row uses it instead of a read-modify-write of the row.
"""

from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .lanes import LANE_BITS, row_lanes

__all__ = ["LANE_BITS", "MemoryPortSignature", "SRAMBuffer", "row_lanes"]


class MemoryPortSignature(wiring.Signature):
    """Signature of one buffer port, from the requester's side (``Out`` = driven by it)."""

    def __init__(self, *, addr_bits, data_bits, lane_writes=False):
        if not isinstance(addr_bits, int) or addr_bits < 1:
            raise TypeError(f"addr_bits must be a positive integer, not {addr_bits!r}")
        if not isinstance(data_bits, int) or data_bits < 1:
            raise TypeError(f"data_bits must be a positive integer, not {data_bits!r}")
        self._addr_bits, self._data_bits = addr_bits, data_bits
        self._lane_writes = bool(lane_writes)
        lanes = {}
        if self._lane_writes:
            n = row_lanes(data_bits)
            lanes = {"w_lanes": Out(n, init=(1 << n) - 1)}
        super().__init__({
            "addr": Out(addr_bits),
            "r_en": Out(1),
            "r_last": Out(1),
            "w_en": Out(1),
            "w_data": Out(data_bits),
            **lanes,
            "r_data": In(data_bits),
            "ready": In(1),
        })

    @property
    def addr_bits(self):
        return self._addr_bits

    @property
    def data_bits(self):
        return self._data_bits

    @property
    def lane_writes(self):
        return self._lane_writes

    def _key(self):
        return self.addr_bits, self.data_bits, self.lane_writes

    def __eq__(self, other):
        return isinstance(other, MemoryPortSignature) and self._key() == other._key()

    def __repr__(self):
        lanes = ", lane_writes=True" if self.lane_writes else ""
        return (f"MemoryPortSignature(addr_bits={self.addr_bits}, "
                f"data_bits={self.data_bits}{lanes})")


class SRAMBuffer(wiring.Component):
    """A plain (SRAM-like, never forgetting) buffer of ``depth`` rows of ``data_bits``.

    ``port`` is a ``MemoryPortSignature`` port (flipped: the buffer answers it); it is always
    ready. ``r_last`` is accepted and ignored. With ``lane_writes`` the port has ``w_lanes``
    and the memory a write enable per 16-bit lane (the row is padded to whole lanes inside).
    """

    def __init__(self, *, depth, data_bits, init=(), lane_writes=False):
        if not isinstance(depth, int) or depth < 2:
            raise TypeError(f"depth must be an integer >= 2, not {depth!r}")
        self._depth, self._data_bits = depth, data_bits
        self._init = list(init)
        self._lane_writes = bool(lane_writes)
        super().__init__({
            "port": In(MemoryPortSignature(addr_bits=(depth - 1).bit_length(),
                                           data_bits=data_bits, lane_writes=lane_writes)),
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
        lanes = row_lanes(self._data_bits) if self._lane_writes else 1
        width = lanes * LANE_BITS if self._lane_writes else self._data_bits
        m.submodules.mem = mem = memory.Memory(shape=width, depth=self._depth,
                                               init=self._init, attrs={"no_rw_check": 1})
        rd = mem.read_port()
        wr = mem.write_port(granularity=LANE_BITS if self._lane_writes else None)
        m.d.comb += [
            self.port.ready.eq(1),
            rd.addr.eq(self.port.addr),
            rd.en.eq(self.port.r_en),
            self.port.r_data.eq(rd.data),
            wr.addr.eq(self.port.addr),
            wr.data.eq(self.port.w_data),
        ]
        if self._lane_writes:
            m.d.comb += wr.en.eq(self.port.w_lanes & self.port.w_en.replicate(lanes))
        else:
            m.d.comb += wr.en.eq(self.port.w_en)
        return m
