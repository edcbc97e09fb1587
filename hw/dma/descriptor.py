"""The descriptor ``ReshapeDMA`` executes: one DRAM access pattern and one buffer walk.

DRAM side
    ``seg_count2`` groups of ``seg_count`` segments of ``seg_beats`` bus beats. Segment ``(o,
    i)`` starts at ``dram_addr + o*seg_stride2 + i*seg_stride`` (bytes). Beats are moved in
    that order. ``dram_addr`` and both strides must be multiples of the bus width in bytes.
Buffer side
    A walk over ``n2 x n1 x n0`` steps (``i0`` fastest); step ``(i2, i1, i0)`` is buffer row
    ``buf_addr + i2*s2 + i1*s1 + i0*s0`` (strides are signed, so the walk can run backwards,
    which is how the BP weight load rotates kernels by 180 degrees).

    * Load (``store = 0``): a step inside the padding frame (``i2 < pad_top``, ``i2 >= n2 -
      pad_bottom``, ``i1 < pad_left`` or ``i1 >= n1 - pad_right``) writes a zero row without
      consuming a beat; any other step writes the next beat. With ``corner_turn`` set (and no
      padding) a step consumes ``lanes`` beats and writes ``lanes`` rows: row ``j`` (at the
      step's address ``+ j*sj``) holds lane ``j`` of each of the beats, beat ``k`` in lane
      ``k``. That transposes ``lanes x lanes`` squares: the BP in/out channel swap.
    * Store (``store = 1``): each step reads one row and sends it as the next beat; padding and
      ``corner_turn`` must be zero.

The descriptor is rejected (an error bit in the DMA's status, nothing moved) when a count is
zero (``err_zero``), an address or stride is misaligned (``err_align``), a row of the walk
falls outside the buffer (``err_bounds``), or the two sides disagree on the number of beats
or the padding is not allowed/larger than the walk (``err_length``).
"""

from dataclasses import dataclass, fields

from amaranth.hdl import signed
from amaranth.lib import data

__all__ = ["COUNT_BITS", "PAD_BITS", "descriptor_layout", "Descriptor"]

COUNT_BITS = 16
PAD_BITS = 8


def descriptor_layout(*, addr_bits, buf_addr_bits):
    """Return the ``StructLayout`` of a descriptor for the given address widths."""
    stride = signed(buf_addr_bits + 2)
    return data.StructLayout({
        "store": 1,
        "corner_turn": 1,
        "dram_addr": addr_bits,
        "seg_beats": COUNT_BITS,
        "seg_count": COUNT_BITS,
        "seg_stride": addr_bits,
        "seg_count2": COUNT_BITS,
        "seg_stride2": addr_bits,
        "buf_addr": buf_addr_bits,
        "n0": COUNT_BITS, "n1": COUNT_BITS, "n2": COUNT_BITS,
        "s0": stride, "s1": stride, "s2": stride, "sj": stride,
        "pad_top": PAD_BITS, "pad_bottom": PAD_BITS,
        "pad_left": PAD_BITS, "pad_right": PAD_BITS,
    })


@dataclass(frozen=True)
class Descriptor:
    """A descriptor as Python integers (see the module docstring for each field)."""
    dram_addr: int
    seg_beats: int
    buf_addr: int
    n0: int
    s0: int = 1
    n1: int = 1
    s1: int = 0
    n2: int = 1
    s2: int = 0
    seg_count: int = 1
    seg_stride: int = 0
    seg_count2: int = 1
    seg_stride2: int = 0
    store: int = 0
    corner_turn: int = 0
    sj: int = 0
    pad_top: int = 0
    pad_bottom: int = 0
    pad_left: int = 0
    pad_right: int = 0

    @property
    def dram_beats(self):
        return self.seg_beats * self.seg_count * self.seg_count2

    def segments(self, bus_bytes):
        """Yield ``(addr, nbytes)`` of each DRAM segment, in transfer order."""
        for o in range(self.seg_count2):
            for i in range(self.seg_count):
                yield (self.dram_addr + o * self.seg_stride2 + i * self.seg_stride,
                       self.seg_beats * bus_bytes)

    def payload(self, layout):
        """Return the descriptor packed as an integer of ``layout``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return layout.const(values).as_value().value
