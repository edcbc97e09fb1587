"""The host's view of device memory: 16-bit words in regions, wide buffer rows as lanes.

The bridge's memory port addresses 16-bit words. ``HostMemoryMap`` splits that space into
regions of ``REGION_WORDS`` words (region = address >> 20, up to 8 regions): region 0 is the
"DRAM" stand-in (a plain 16-bit memory), the others are the accelerator's wide buffers
(the conv engine's ``act``, ``wgt``, ``out``, ...). In a wide region, word
``row << lane_bits | lane`` is the 16-bit lane ``lane`` of buffer row ``row`` (lane 0 = bits
0..15), with ``lane_bits`` the smallest that covers the row. Every write is a
read-modify-write of its row (in a plain 16-bit region too), so all regions share one read
mux and one merge path.

Accesses outside a region's rows or lanes, or to a region that does not exist, read 0,
write nothing and set the sticky ``bad_access`` flag.
"""

from amaranth.hdl import Module, Signal, Mux, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..hw.memport import MemoryPortSignature

__all__ = ["HostMemoryMap", "REGION_BITS", "REGION_WORDS", "Region", "map_words"]

REGION_BITS = 20
REGION_WORDS = 1 << REGION_BITS


class Region:
    """One region: ``name``, ``depth`` rows of ``data_bits`` (16 for a plain memory)."""

    def __init__(self, name, *, depth, data_bits):
        self.name, self.depth, self.data_bits = name, depth, data_bits
        self.lanes = -(-data_bits // 16)
        self.lane_bits = (self.lanes - 1).bit_length()
        self.addr_bits = max(1, (depth - 1).bit_length())
        if depth << self.lane_bits > REGION_WORDS:
            raise ValueError(f"region {name!r} needs {depth << self.lane_bits} words, more "
                             f"than {REGION_WORDS}")

    def word(self, row, lane=0):
        """Return the in-region word address of ``lane`` of ``row``."""
        return row << self.lane_bits | lane


def map_words(regions):
    """Return the size in words (a power of two) of the address space of ``regions``."""
    return 1 << (REGION_BITS + max(1, (len(regions) - 1).bit_length()))


class HostMemoryMap(wiring.Component):
    """Route the 16-bit ``host`` port to one requester port per ``Region`` (in order)."""

    def __init__(self, *, regions):
        self._regions = list(regions)
        if not 1 <= len(self._regions) <= 8:
            raise ValueError(f"need 1 to 8 regions, not {len(self._regions)}")
        self._region_bits = max(1, (len(self._regions) - 1).bit_length())
        super().__init__({
            "host": In(MemoryPortSignature(addr_bits=REGION_BITS + self._region_bits,
                                           data_bits=16)),
            "bad_access": Out(1),
            **{r.name: Out(MemoryPortSignature(addr_bits=r.addr_bits, data_bits=r.data_bits))
               for r in self._regions},
        })

    @property
    def regions(self):
        return list(self._regions)

    @property
    def words(self):
        """Size of the host address space in 16-bit words (a power of two)."""
        return map_words(self._regions)

    def elaborate(self, platform):
        m = Module()
        host = self.host
        # The host holds addr and w_data until ready, so every port takes its row address
        # straight from host.addr, and all ports share one read-data mux and one merge.
        lane_bits = max(1, max(r.lane_bits for r in self._regions))
        row = Signal(16 << lane_bits)
        merged = Signal(len(row))
        # Region and lane of the last accepted read (a host read or a lane write's read).
        read_region, read_lane, read_bad = Signal(3), Signal(lane_bits), Signal()
        with m.Switch(read_region):
            for i, r in enumerate(self._regions):
                with m.Case(i):
                    m.d.comb += row.eq(getattr(self, r.name).r_data)
        m.d.comb += host.r_data.eq(Mux(read_bad, 0, row.word_select(read_lane, 16)))
        for r in self._regions:
            port = getattr(self, r.name)
            m.d.comb += [port.addr.eq(host.addr[r.lane_bits:REGION_BITS]),
                         port.w_data.eq(merged[:r.data_bits])]
        with m.FSM(name="map_fsm"):
            with m.State("IDLE"):
                self._idle(m, read_region, read_lane, read_bad)
            with m.State("RMW-MERGE"):
                m.d.sync += merged.eq(Cat(
                    Mux(read_lane == k, host.w_data, row[16 * k:16 * (k + 1)])
                    for k in range(1 << lane_bits)))
                m.next = "RMW-WRITE"
            with m.State("RMW-WRITE"):
                with m.Switch(read_region):
                    for i, r in enumerate(self._regions):
                        with m.Case(i):
                            port = getattr(self, r.name)
                            m.d.comb += port.w_en.eq(1)
                            with m.If(port.ready):
                                m.next = "RMW-DONE"
            with m.State("RMW-DONE"):
                # Accept the host's (held) write request now that its row is written.
                m.d.comb += host.ready.eq(1)
                m.next = "IDLE"
        return m

    def _idle(self, m, read_region, read_lane, read_bad):
        """Serve reads at once; a write reads its row first (then merge and write it)."""
        host, region_idx = self.host, self.host.addr[REGION_BITS:]
        with m.Switch(region_idx):
            for i, r in enumerate(self._regions):
                with m.Case(i):
                    port = getattr(self, r.name)
                    row, lane = host.addr[r.lane_bits:REGION_BITS], host.addr[:r.lane_bits]
                    inside = _below(row, r.depth) & (lane < r.lanes if r.lane_bits else 1)
                    with m.If(~inside & (host.r_en | host.w_en)):
                        self._refuse(m, read_bad)
                    with m.Elif(host.r_en | host.w_en):
                        m.d.comb += port.r_en.eq(1)
                        with m.If(port.ready):
                            m.d.sync += [read_region.eq(i), read_lane.eq(lane),
                                         read_bad.eq(0)]
                        with m.If(host.r_en):
                            m.d.comb += host.ready.eq(port.ready)
                        with m.Elif(port.ready):
                            m.next = "RMW-MERGE"
            with m.Default():
                with m.If(host.r_en | host.w_en):
                    self._refuse(m, read_bad)

    def _refuse(self, m, read_bad):
        m.d.comb += self.host.ready.eq(1)
        m.d.sync += self.bad_access.eq(1)
        with m.If(self.host.r_en):
            m.d.sync += read_bad.eq(1)


def _below(value, bound):
    """``value < bound``, as a test of the high bits when ``bound`` is a power of two."""
    if bound & (bound - 1) == 0:
        return value[(bound - 1).bit_length():] == 0
    return value < bound
