"""``ReshapeDMA``: an AXI4 master moving tiles between DRAM and one on-chip buffer port."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.common.axi import AXI4Signature, AXI_INCR, AXI_OKAY
from .burst import BurstIssuer
from .descriptor import descriptor_layout
from .walk import BufferWalker

__all__ = ["ReshapeDMA", "STATUS_LAYOUT"]

STATUS_LAYOUT = data.StructLayout({
    "busy": 1, "err_zero": 1, "err_align": 1, "err_bounds": 1, "err_length": 1,
    "err_resp": 1,
})

_STORE_FIFO_DEPTH = 4


class ReshapeDMA(wiring.Component):
    """Execute descriptors (``hw.dma_descriptor``) between AXI4 DRAM and a buffer port.

    Members
        ``desc``: stream of descriptors; one is taken while the DMA is idle.
        ``status``: ``busy`` while a descriptor runs; the ``err_*`` bits are sticky until
        ``clear``. A rejected descriptor sets its error bit and moves nothing; an AXI error
        response sets ``err_resp`` (the transfer still completes).
        ``buf``: the buffer port; rows are one bus beat (``data_bits // 16`` int16 lanes).
        ``m_axi``: the AXI4 master (INCR bursts, ID 0, full-width beats).

    Parameters (keyword-only): ``addr_bits``, ``data_bits`` (32/64/128), ``buf_depth`` (rows
    of the buffer behind ``buf``), ``max_burst_beats`` (<= 256), ``max_outstanding_reads``.
    """

    def __init__(self, *, addr_bits, data_bits, buf_depth, max_burst_beats=256,
                 max_outstanding_reads=4):
        if data_bits not in (32, 64, 128):
            raise TypeError(f"data_bits must be 32, 64 or 128, not {data_bits!r}")
        if not isinstance(buf_depth, int) or buf_depth < 2:
            raise TypeError(f"buf_depth must be an integer >= 2, not {buf_depth!r}")
        if not isinstance(max_burst_beats, int) or not 1 <= max_burst_beats <= 256:
            raise TypeError(f"max_burst_beats must be an integer in 1..256, not "
                            f"{max_burst_beats!r}")
        if not isinstance(max_outstanding_reads, int) or max_outstanding_reads < 1:
            raise TypeError(f"max_outstanding_reads must be a positive integer, not "
                            f"{max_outstanding_reads!r}")
        self._addr_bits, self._data_bits = addr_bits, data_bits
        self._buf_depth, self._max_beats = buf_depth, max_burst_beats
        self._max_reads = max_outstanding_reads
        self._buf_abits = (buf_depth - 1).bit_length()
        self._layout = descriptor_layout(addr_bits=addr_bits, buf_addr_bits=self._buf_abits)
        super().__init__({
            "desc": In(stream.Signature(self._layout)),
            "status": Out(STATUS_LAYOUT),
            "clear": In(1),
            "buf": Out(MemoryPortSignature(addr_bits=self._buf_abits, data_bits=data_bits)),
            "m_axi": Out(AXI4Signature(addr_bits=addr_bits, data_bits=data_bits)),
        })

    @classmethod
    def from_config(cls, config, *, buf_depth):
        """Build the DMA of ``config`` (an ``AcceleratorConfig``) for a buffer of
        ``buf_depth`` rows."""
        return cls(addr_bits=config.axi_addr_bits, data_bits=config.axi_data_bits,
                   buf_depth=buf_depth, max_burst_beats=config.max_burst_beats,
                   max_outstanding_reads=config.max_outstanding_reads)

    @property
    def descriptor_layout(self):
        return self._layout

    @property
    def lanes(self):
        return self._data_bits // 16

    @property
    def bus_bytes(self):
        return self._data_bits // 8

    def elaborate(self, platform):
        m = Module()
        d = Signal(self._layout)
        m.submodules.issuer = issuer = BurstIssuer(
            addr_bits=self._addr_bits, bus_bytes=self.bus_bytes,
            max_burst_beats=self._max_beats)
        m.submodules.walker = walker = BufferWalker(buf_addr_bits=self._buf_abits)
        for name in ("dram_addr", "seg_beats", "seg_count", "seg_stride", "seg_count2",
                     "seg_stride2"):
            m.d.comb += getattr(issuer, name).eq(getattr(d, name))
        for name in ("n0", "n1", "n2", "s0", "s1", "s2", "pad_top", "pad_bottom",
                     "pad_left", "pad_right"):
            m.d.comb += getattr(walker, name).eq(getattr(d, name))
        m.d.comb += walker.base.eq(d.buf_addr)

        self._idle, self._run = Signal(), Signal()
        start = Signal()
        errors = self._check(m, d)
        load_done = self._load(m, d, issuer, walker)
        store_done = self._store(m, d, issuer, walker)
        self._control(m, d, errors, start, load_done, store_done)
        m.d.comb += [issuer.start.eq(start), walker.start.eq(start)]
        self._axi_constants(m)
        return m

    def _axi_constants(self, m):
        axi = self.m_axi
        size = (self.bus_bytes).bit_length() - 1
        m.d.comb += [axi.awid.eq(0), axi.arid.eq(0), axi.awsize.eq(size),
                     axi.arsize.eq(size), axi.awburst.eq(AXI_INCR), axi.arburst.eq(AXI_INCR),
                     axi.wstrb.eq(Const(-1, len(axi.wstrb))), axi.bready.eq(1)]

    def _check(self, m, d):
        """Validate the latched descriptor over two cycles; return the error flags."""
        sh = self.bus_bytes.bit_length() - 1
        lanes = self.lanes
        prod = signed(64)
        e0, e1, e2, ej = (Signal(prod) for _ in range(4))
        rows2, rows1 = Signal(signed(20)), Signal(signed(20))
        dram_beats = Signal(52)
        m.d.sync += [
            e0.eq((d.n0 - 1) * d.s0), e1.eq((d.n1 - 1) * d.s1),
            e2.eq((d.n2 - 1) * d.s2), ej.eq(Mux(d.corner_turn, (lanes - 1) * d.sj, 0)),
            rows2.eq(d.n2 - d.pad_top - d.pad_bottom),
            rows1.eq(d.n1 - d.pad_left - d.pad_right),
            dram_beats.eq(d.seg_beats * d.seg_count * d.seg_count2),
        ]
        lo = d.buf_addr + sum(Mux(e < 0, e, 0) for e in (e0, e1, e2, ej))
        hi = d.buf_addr + sum(Mux(e > 0, e, 0) for e in (e0, e1, e2, ej))
        padded = (d.pad_top | d.pad_bottom | d.pad_left | d.pad_right) != 0
        walk_beats = Mux(d.corner_turn, d.n0 * d.n1 * d.n2 * lanes,
                         rows2.as_unsigned() * rows1.as_unsigned() * d.n0)
        zero = ((d.seg_beats == 0) | (d.seg_count == 0) | (d.seg_count2 == 0) |
                (d.n0 == 0) | (d.n1 == 0) | (d.n2 == 0))
        align = ((d.dram_addr[:sh] | d.seg_stride[:sh] | d.seg_stride2[:sh]) != 0) if sh else 0
        bounds = (lo < 0) | (hi >= self._buf_depth)
        length = ((rows2 <= 0) | (rows1 <= 0) | (padded & (d.store | d.corner_turn)) |
                  (d.store & d.corner_turn) | (walk_beats != dram_beats))
        return {"err_zero": zero, "err_align": align, "err_bounds": bounds,
                "err_length": length}

    def _control(self, m, d, errors, start, load_done, store_done):
        for name in ("err_zero", "err_align", "err_bounds", "err_length", "err_resp"):
            with m.If(self.clear):
                m.d.sync += getattr(self.status, name).eq(0)
        m.d.comb += self.status.busy.eq(~self._idle)
        bad = errors["err_zero"] | errors["err_align"] | errors["err_bounds"] | \
            errors["err_length"]
        # Derived from the state with plain expressions (Verilog `assign`s): Icarus never runs
        # an `always @*` whose inputs keep their initial values, which left these X.
        with m.FSM(name="dma") as fsm:
            with m.State("IDLE"):
                with m.If(self.desc.valid):
                    m.d.sync += d.eq(self.desc.payload)
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(errors["err_zero"]):
                    # A zero count makes the other checks meaningless: report only this.
                    m.d.sync += self.status.err_zero.eq(1)
                    m.next = "IDLE"
                with m.Elif(bad):
                    for name in ("err_align", "err_bounds", "err_length"):
                        with m.If(errors[name]):
                            m.d.sync += getattr(self.status, name).eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += start.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(Mux(d.store, store_done, load_done)):
                    m.next = "IDLE"
        m.d.comb += [self._idle.eq(fsm.ongoing("IDLE")), self._run.eq(fsm.ongoing("RUN")),
                     self.desc.ready.eq(self._idle)]

    def _load(self, m, d, issuer, walker):
        """DRAM -> buffer: AR bursts, R beats into rows (padding, corner turn); return done."""
        axi, buf = self.m_axi, self.buf
        load = self._run & ~d.store
        outstanding = Signal(range(self._max_reads + 1))
        ar_hs = axi.arvalid & axi.arready
        r_hs = axi.rvalid & axi.rready
        with m.If(~d.store):
            m.d.comb += [issuer.allow.eq(outstanding < self._max_reads),
                         issuer.ready.eq(self._run & axi.arready)]
        m.d.comb += [axi.arvalid.eq(load & issuer.valid), axi.araddr.eq(issuer.addr),
                     axi.arlen.eq(issuer.len)]
        m.d.sync += outstanding.eq(outstanding + ar_hs - (r_hs & axi.rlast))
        with m.If(r_hs & (axi.rresp != AXI_OKAY)):
            m.d.sync += self.status.err_resp.eq(1)

        with m.If(load & walker.running & ~d.corner_turn):
            m.d.comb += buf.addr.eq(walker.addr)
            with m.If(walker.pad):
                m.d.comb += [buf.w_en.eq(1), buf.w_data.eq(0), walker.step.eq(buf.ready)]
            with m.Else():
                m.d.comb += [buf.w_en.eq(axi.rvalid), buf.w_data.eq(axi.rdata),
                             axi.rready.eq(buf.ready), walker.step.eq(r_hs)]
        self._corner_turn(m, d, walker, load & walker.running & d.corner_turn)
        return issuer.done & ~walker.running

    def _corner_turn(self, m, d, walker, active):
        """Transpose ``lanes`` x ``lanes`` squares at one beat per cycle (two squares: one
        fills from R while the other is written out a column per row)."""
        axi, buf, lanes = self.m_axi, self.buf, self.lanes
        squares = [[Signal(self._data_bits, name=f"square{s}_{k}") for k in range(lanes)]
                   for s in range(2)]
        columns = Array(Array(Cat(beat.word_select(j, 16) for beat in sq)
                              for j in range(lanes)) for sq in squares)
        full = Signal(2)
        fill, emit = Signal(), Signal()
        k, j = Signal(range(lanes)), Signal(range(lanes))
        offset = Signal(signed(self._buf_abits + 4))
        filled, emitted = Signal(), Signal()
        with m.If(active):
            m.d.comb += axi.rready.eq(~full.bit_select(fill, 1))
        with m.If(active & axi.rvalid & axi.rready):
            for sel, sq in enumerate(squares):
                for i, beat in enumerate(sq):
                    with m.If((fill == sel) & (k == i)):
                        m.d.sync += beat.eq(axi.rdata)
            m.d.sync += k.eq(Mux(k == lanes - 1, 0, k + 1))
            m.d.comb += filled.eq(k == lanes - 1)
        with m.If(active & full.bit_select(emit, 1)):
            m.d.comb += [buf.w_en.eq(1), buf.addr.eq(walker.addr + offset),
                         buf.w_data.eq(columns[emit][j])]
            with m.If(buf.ready):
                m.d.sync += [j.eq(j + 1), offset.eq(offset + d.sj)]
                with m.If(j == lanes - 1):
                    m.d.sync += [j.eq(0), offset.eq(0)]
                    m.d.comb += [emitted.eq(1), walker.step.eq(1)]
        for sel in range(2):
            with m.If(filled & (fill == sel)):
                m.d.sync += full[sel].eq(1)
            with m.If(emitted & (emit == sel)):
                m.d.sync += full[sel].eq(0)
        with m.If(filled):
            m.d.sync += fill.eq(~fill)
        with m.If(emitted):
            m.d.sync += emit.eq(~emit)

    def _store(self, m, d, issuer, walker):
        """Buffer -> DRAM: row reads into a FIFO, AW bursts, W beats, B responses; return done."""
        axi, buf = self.m_axi, self.buf
        store = self._run & d.store
        m.submodules.beats = beats = fifo.SyncFIFO(width=self._data_bits,
                                                   depth=_STORE_FIFO_DEPTH)
        m.submodules.lengths = lengths = fifo.SyncFIFO(width=8, depth=_STORE_FIFO_DEPTH)
        inflight = Signal()
        space = beats.level + inflight < _STORE_FIFO_DEPTH
        with m.If(store & walker.running & space):
            m.d.comb += [buf.r_en.eq(1), buf.r_last.eq(1), buf.addr.eq(walker.addr),
                         walker.step.eq(buf.ready)]
        m.d.sync += inflight.eq(store & walker.running & space & buf.ready)
        m.d.comb += [beats.w_en.eq(inflight), beats.w_data.eq(buf.r_data)]

        aw_hs = axi.awvalid & axi.awready
        with m.If(d.store):
            m.d.comb += [issuer.allow.eq(lengths.w_rdy),
                         issuer.ready.eq(self._run & axi.awready)]
        m.d.comb += [axi.awvalid.eq(store & issuer.valid), axi.awaddr.eq(issuer.addr),
                     axi.awlen.eq(issuer.len), lengths.w_en.eq(aw_hs),
                     lengths.w_data.eq(issuer.len)]

        count = Signal(8)
        w_hs = axi.wvalid & axi.wready
        m.d.comb += [axi.wvalid.eq(store & beats.r_rdy & lengths.r_rdy),
                     axi.wdata.eq(beats.r_data), axi.wlast.eq(count == lengths.r_data),
                     beats.r_en.eq(w_hs), lengths.r_en.eq(w_hs & axi.wlast)]
        with m.If(w_hs):
            m.d.sync += count.eq(Mux(axi.wlast, 0, count + 1))

        pending = Signal(24)
        b_hs = axi.bvalid & axi.bready
        m.d.sync += pending.eq(pending + aw_hs - b_hs)
        with m.If(b_hs & (axi.bresp != AXI_OKAY)):
            m.d.sync += self.status.err_resp.eq(1)
        return (issuer.done & ~walker.running & ~inflight & ~beats.r_rdy & ~lengths.r_rdy &
                (pending == 0))
