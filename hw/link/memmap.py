"""The host's view of device memory: 16-bit words in regions, wide buffer rows as lanes.

The bridge's memory port addresses 16-bit words. ``HostMemoryMap`` splits that space into
regions of ``REGION_WORDS`` words (region = address >> 20, up to 8 regions): region 0 is the
"DRAM" stand-in (a plain 16-bit memory), the others are the accelerator's wide buffers
(the conv engine's ``act``, ``wgt``, ``out``, ...). In a wide region, word
``row << lane_bits | lane`` is the 16-bit lane ``lane`` of buffer row ``row`` (lane 0 = bits
0..15), with ``lane_bits`` the smallest that covers the row.

A write takes one cycle. A wide region's port has lane writes (``w_lanes``, see
``hw.memport``): a host write drives its 16-bit word onto every lane and enables only its
own, so nothing is read back, merged or held in a row-wide register. A read takes three
cycles: the row is read, each region's lane of it is registered, then the addressed
region's lane; the only wide logic is one lane multiplexer per region.

Accesses outside a region's rows or lanes, or to a region that does not exist, read 0,
write nothing and set the sticky ``bad_access`` flag.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.memport import LANE_BITS, MemoryPortSignature, row_lanes

__all__ = ["HostMemoryMap", "REGION_BITS", "REGION_WORDS", "Region", "map_words"]

REGION_BITS = 20
REGION_WORDS = 1 << REGION_BITS


class Region:
    """One region: ``name``, ``depth`` rows of ``data_bits`` (16 for a plain memory).

    ``lane_writes``: the region's port has ``w_lanes`` (see ``hw.memport``). A region wider
    than one 16-bit lane must have it (the map writes single lanes); a one-lane region may.
    """

    def __init__(self, name, *, depth, data_bits, lane_writes=None):
        self.name, self.depth, self.data_bits = name, depth, data_bits
        self.lanes = row_lanes(data_bits)
        self.lane_bits = (self.lanes - 1).bit_length()
        self.addr_bits = max(1, (depth - 1).bit_length())
        self.lane_writes = self.lanes > 1 if lane_writes is None else bool(lane_writes)
        if depth << self.lane_bits > REGION_WORDS:
            raise ValueError(f"region {name!r} needs {depth << self.lane_bits} words, more "
                             f"than {REGION_WORDS}")
        if self.lanes > 1 and not self.lane_writes:
            raise ValueError(f"region {name!r} has {self.lanes} lanes of 16 bits, so its port "
                             f"needs lane writes: pass lane_writes=True")

    def port_signature(self):
        """Return the ``MemoryPortSignature`` the map drives for this region."""
        return MemoryPortSignature(addr_bits=self.addr_bits, data_bits=self.data_bits,
                                   lane_writes=self.lane_writes)

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
            **{r.name: Out(r.port_signature()) for r in self._regions},
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
        region_idx = host.addr[REGION_BITS:]
        lane_bits = max(1, max(r.lane_bits for r in self._regions))
        # A read is answered from registers, in three steps: the region's port reads its row
        # (cycle c); each region's lane of that row is registered (c + 1); the addressed
        # region's lane is registered as ``host.r_data`` while the host's request is accepted
        # (c + 2), so the data is there one cycle after acceptance, as the port contract
        # says. The 64:1 lane multiplexer behind a block RAM's slow clock-to-out was the
        # routed ULX3S build's critical path when it ended in the bridge.
        read_region = Signal(range(len(self._regions)))
        read_lane = Signal(lane_bits)
        word = Signal(LANE_BITS)
        m.d.comb += host.r_data.eq(word)
        lane_words, hits, targets = [], [], []
        for i, r in enumerate(self._regions):
            port = getattr(self, r.name)
            # The host holds addr and w_data until ready, so every port takes its row address
            # and its (lane-replicated) write data straight from the host.
            row, lane = host.addr[r.lane_bits:REGION_BITS], host.addr[:r.lane_bits]
            hit = Signal(name=f"{r.name}_hit")
            m.d.comb += hit.eq((region_idx == i) & _below(row, r.depth) &
                               (lane < r.lanes if r.lane_bits else 1))
            hits.append(hit)
            targets.append((port, lane))
            m.d.comb += [port.addr.eq(row), port.w_data.eq(host.w_data.replicate(r.lanes))]
            if r.lane_writes:
                m.d.comb += port.w_lanes.eq(Const(1, r.lanes) << lane)
            r_data = Signal(r.lanes * LANE_BITS, name=f"{r.name}_r_data")
            lane_word = Signal(LANE_BITS, name=f"{r.name}_lane_word")
            m.d.comb += r_data.eq(port.r_data)
            m.d.sync += lane_word.eq(r_data.word_select(read_lane[:r.lane_bits], LANE_BITS)
                                     if r.lane_bits else r_data)
            lane_words.append(lane_word)
        with m.FSM(name="map_fsm"):
            with m.State("IDLE"):
                for i, (hit, (port, lane)) in enumerate(zip(hits, targets)):
                    with m.If(hit):
                        m.d.comb += [port.r_en.eq(host.r_en), port.w_en.eq(host.w_en),
                                     host.ready.eq(port.ready & host.w_en)]
                        with m.If(host.r_en & port.ready):
                            m.d.sync += [read_region.eq(i), read_lane.eq(lane)]
                            m.next = "LANE"
                with m.If(~Cat(hits).any() & (host.r_en | host.w_en)):
                    # Outside every region: accept at once, write nothing, read 0, flag it.
                    m.d.comb += host.ready.eq(1)
                    m.d.sync += self.bad_access.eq(1)
                    with m.If(host.r_en):
                        m.d.sync += word.eq(0)
            with m.State("LANE"):
                m.next = "WORD"
            with m.State("WORD"):
                with m.Switch(read_region):
                    for i, w in enumerate(lane_words):
                        with m.Case(i):
                            m.d.sync += word.eq(w)
                m.d.comb += host.ready.eq(1)
                m.next = "IDLE"
        return m


def _below(value, bound):
    """``value < bound``, as a test of the high bits when ``bound`` is a power of two."""
    if bound & (bound - 1) == 0:
        return value[(bound - 1).bit_length():] == 0
    return value < bound
