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
* A port with ``add_words`` also has ``w_add``: an accepted write with ``w_add`` *adds*
  ``w_data`` to the row, word by word (``add_words``-bit words, wrapping), instead of
  replacing it. The buffer reads the row in the cycle it accepts the write and writes the
  sum in the next one, so adds stream at one row per cycle; in that next cycle a request
  that addresses the same row, or a plain write (whose write port the sum takes), waits.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .lanes import LANE_BITS, row_lanes

__all__ = ["LANE_BITS", "MemoryPortSignature", "SRAMBuffer", "row_lanes"]


class MemoryPortSignature(wiring.Signature):
    """Signature of one buffer port, from the requester's side (``Out`` = driven by it)."""

    def __init__(self, *, addr_bits, data_bits, lane_writes=False, add_words=None):
        if not isinstance(addr_bits, int) or addr_bits < 1:
            raise TypeError(f"addr_bits must be a positive integer, not {addr_bits!r}")
        if not isinstance(data_bits, int) or data_bits < 1:
            raise TypeError(f"data_bits must be a positive integer, not {data_bits!r}")
        self._addr_bits, self._data_bits = addr_bits, data_bits
        self._lane_writes = bool(lane_writes)
        self._add_words = _check_add_words(add_words, data_bits)
        extra = {}
        if self._lane_writes:
            n = row_lanes(data_bits)
            extra["w_lanes"] = Out(n, init=(1 << n) - 1)
        if self._add_words:
            extra["w_add"] = Out(1)
        super().__init__({
            "addr": Out(addr_bits),
            "r_en": Out(1),
            "r_last": Out(1),
            "w_en": Out(1),
            "w_data": Out(data_bits),
            **extra,
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

    @property
    def add_words(self):
        return self._add_words

    def _key(self):
        return self.addr_bits, self.data_bits, self.lane_writes, self.add_words

    def __eq__(self, other):
        return isinstance(other, MemoryPortSignature) and self._key() == other._key()

    def __repr__(self):
        lanes = ", lane_writes=True" if self.lane_writes else ""
        adds = f", add_words={self.add_words}" if self.add_words else ""
        return (f"MemoryPortSignature(addr_bits={self.addr_bits}, "
                f"data_bits={self.data_bits}{lanes}{adds})")


def _check_add_words(add_words, data_bits):
    """``add_words`` (``None`` or a word width dividing ``data_bits``), checked."""
    if add_words is None:
        return None
    if not isinstance(add_words, int) or add_words < 1 or data_bits % add_words:
        raise TypeError(f"add_words must be a positive integer dividing data_bits "
                        f"{data_bits}, not {add_words!r}")
    return add_words


class SRAMBuffer(wiring.Component):
    """A plain (SRAM-like, never forgetting) buffer of ``depth`` rows of ``data_bits``.

    ``port`` is a ``MemoryPortSignature`` port (flipped: the buffer answers it); it is always
    ready, but for the cycle after an add (``add_words``, see the module docstring). ``r_last``
    is accepted and ignored. With ``lane_writes`` the port has ``w_lanes`` and the memory a
    write enable per 16-bit lane (the row is padded to whole lanes inside). An add reads its
    row, so ``r_data`` then shows the row before the add.
    """

    def __init__(self, *, depth, data_bits, init=(), lane_writes=False, add_words=None):
        if not isinstance(depth, int) or depth < 2:
            raise TypeError(f"depth must be an integer >= 2, not {depth!r}")
        self._depth, self._data_bits = depth, data_bits
        self._init = list(init)
        self._lane_writes = bool(lane_writes)
        self._add_words = add_words
        super().__init__({
            "port": In(MemoryPortSignature(addr_bits=(depth - 1).bit_length(),
                                           data_bits=data_bits, lane_writes=lane_writes,
                                           add_words=add_words)),
        })

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        # A port never reads and writes one row in one cycle (an add's write waits for the
        # cycle after its read, and a request to that row waits for it), so a read never
        # meets a write to its row: ``no_rw_check`` tells Yosys so. Without it, it builds a
        # flip-flop and a bypass multiplexer per data bit after the block RAM (read-before-
        # write emulation), and the block RAM's slow clock-to-out (5.6 ns on ECP5) then has
        # logic behind it.
        p = self.port
        lanes = row_lanes(self._data_bits) if self._lane_writes else 1
        width = lanes * LANE_BITS if self._lane_writes else self._data_bits
        m.submodules.mem = mem = memory.Memory(shape=width, depth=self._depth,
                                               init=self._init, attrs={"no_rw_check": 1})
        rd = mem.read_port()
        wr = mem.write_port(granularity=LANE_BITS if self._lane_writes else None)
        m.d.comb += [
            p.ready.eq(1),
            rd.addr.eq(p.addr),
            rd.en.eq(p.r_en),
            p.r_data.eq(rd.data),
            wr.addr.eq(p.addr),
            wr.data.eq(p.w_data),
        ]
        # Written as before adds existed, so a buffer without them is the same netlist
        # (the boards' timing depends on it).
        if self._lane_writes:
            m.d.comb += wr.en.eq(p.w_lanes & p.w_en.replicate(lanes))
        else:
            m.d.comb += wr.en.eq(p.w_en)
        if self._add_words:
            self._adds(m, rd, wr, p.w_lanes if self._lane_writes else Const(1, 1), lanes)
        return m

    def _adds(self, m, rd, wr, enables, lanes):
        """Writes with ``w_add``: read the row now, write row + data next cycle."""
        p, bits = self.port, self._add_words
        pending = Signal()
        at = Signal.like(p.addr)
        addend = Signal.like(p.w_data)
        mask = Signal(lanes)
        blocked = pending & ((p.addr == at) & (p.r_en | p.w_en) | p.w_en & ~p.w_add)
        m.d.comb += p.ready.eq(~blocked)
        adding = p.w_en & p.w_add & ~blocked
        m.d.comb += rd.en.eq(p.r_en & ~blocked | adding)
        with m.If(adding):
            m.d.comb += wr.en.eq(0)
        m.d.sync += [pending.eq(adding), at.eq(p.addr), addend.eq(p.w_data),
                     mask.eq(enables)]
        old = rd.data[:len(p.w_data)]
        total = Cat(*((old[i:i + bits] + addend[i:i + bits])[:bits]
                      for i in range(0, len(p.w_data), bits)))
        with m.If(pending):
            m.d.comb += [wr.addr.eq(at), wr.data.eq(total), wr.en.eq(mask)]
