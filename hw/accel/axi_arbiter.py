"""``AXIArbiter``: the accelerator's one AXI4 port to DRAM, shared by the instruction fetch
and the load and store DMAs, with the guard that keeps every burst inside the DRAM window."""

from amaranth.hdl import Mux, Module, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.common.axi import AXI4Signature, AXI_INCR
from edgetrain.hw.config import AcceleratorConfig
from .regslice import RegisterSlice

__all__ = ["AXIArbiter", "AXI_DECERR", "WINDOW_ERROR_LAYOUT", "WRITE_QUEUE_DEPTH"]

#: The response the arbiter gives a burst outside the window (AXI's DECERR).
AXI_DECERR = 3

#: Write bursts that may wait for their last W beat, and again for their B response.
WRITE_QUEUE_DEPTH = 4

#: ``window_error``: one sticky bit per requester.
WINDOW_ERROR_LAYOUT = data.StructLayout({"fetch": 1, "load": 1, "store": 1})

#: A decided read, oldest first, until its last R beat was taken: who asked (``load``, else
#: the fetch), whether the arbiter answers it itself (``refused``) and its AXI ``len``.
_READ_GRANT = data.StructLayout({"load": 1, "refused": 1, "len": 8})


class AXIArbiter(wiring.Component):
    """Share one AXI4 master to DRAM between the fetch and the two DMAs; refuse any burst
    outside the DRAM window.

    Parameters (keyword-only): ``config`` (an ``AcceleratorConfig``: ``axi_addr_bits``,
    ``axi_data_bits``, ``max_outstanding_reads``).

    Members
        ``fetch``, ``load`` (``AXI4Signature``, flipped: the requester's ``m_axi`` connects
        here): the two readers. Their write channels are not served (ready and valid 0).
        ``store``: the writer. Its read channels are not served.
        ``m_axi`` (``AXI4Signature``): to DRAM. Bursts leave as INCR of full-width beats
        with ID 0 (the only kind the three requesters make; their ``size``, ``burst`` and
        ``id`` are not looked at); responses come back in order on that one ID.
        ``window_base``, ``window_size`` (in, bytes): the DRAM window. A burst is inside
        when every byte of its ``len + 1`` full-width beats lies in ``[base, base + size)``.
        Both are registered: hold them steady while bursts are in flight.
        ``window_error`` (out, ``WINDOW_ERROR_LAYOUT``): per requester, sticky: one of its
        bursts was outside. ``clear`` (in): clear them (wins over an error in that cycle).

    Reads: AR is fixed priority, fetch first. The fetch has at most one burst open and asks
    for the next only after its instruction left, so it cannot starve the load DMA, and the
    next instruction's AR never queues behind a long load's. Each decided AR enters an
    order queue of ``max_outstanding_reads + 1`` grants (all the reads the two can have
    open); R beats go to the requester at its head, ``rready`` comes from that requester.

    Writes: the store's AW, W and B pass through the same window check. W beats are
    forwarded once their burst's AW is decided (AW is never issued after its W).

    Window guard: a burst outside never reaches ``m_axi``. The arbiter answers it itself,
    in its place among that requester's bursts (after the ones decided before it): a read
    gets ``len + 1`` beats of zero data with ``rresp`` DECERR and ``rlast`` on the last; a
    write has its W beats taken and dropped, then one B with ``bresp`` DECERR.

    Timing: every ``m_axi`` output and every ``ready`` towards a requester (but the load's
    ``arready``, which the fetch's ``arvalid`` takes: the priority) is a flip-flop, and the
    ``valid`` and payload towards a requester come from registers through a few gates:
    no combinational path crosses the arbiter. Each channel passes one beat per cycle.
    Added latency: AR and AW 3 cycles (a register slice, the window check into a register
    of its own, a slice before ``m_axi``), R and B 1 cycle, W 2 cycles once its burst's AW
    was decided (so a burst's first beat leaves at least a cycle after its AW). An inside
    read's round trip is 4 cycles longer than on a bare port.
    """

    def __init__(self, *, config):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._cfg = config
        bits, width = config.axi_addr_bits, config.axi_data_bits
        axi = AXI4Signature(addr_bits=bits, data_bits=width)
        self._request = data.StructLayout({"addr": bits, "len": 8})
        self._r = data.StructLayout({"data": width, "resp": 2, "last": 1})
        self._w = data.StructLayout({"data": width, "strb": width // 8, "last": 1})
        self._shift = (width // 8).bit_length() - 1
        super().__init__({
            "fetch": In(axi), "load": In(axi), "store": In(axi), "m_axi": Out(axi),
            "window_base": In(bits), "window_size": In(bits),
            "window_error": Out(WINDOW_ERROR_LAYOUT), "clear": In(1),
        })

    config = property(lambda self: self._cfg)

    @property
    def read_order_depth(self):
        """Reads the arbiter keeps open: the load DMA's ``max_outstanding_reads`` + the
        fetch's one."""
        return self._cfg.max_outstanding_reads + 1

    def elaborate(self, platform):
        m = Module()
        inside = self._window(m)
        order = self._read_requests(m, inside)
        self._read_responses(m, order)
        w_order = self._write_requests(m, inside)
        b_order = self._write_data(m, w_order)
        self._write_responses(m, b_order)
        return m

    def _window(self, m):
        """Register the window; return ``inside(addr, len)``: the burst's bytes all lie in it."""
        bits, beat = self._cfg.axi_addr_bits, 1 << self._shift
        base = Signal(bits, name="window_base_q")
        last = Signal(bits + 1, name="window_last_beat")     # the highest beat start inside
        fits = Signal(name="window_fits_beat")
        # base + size - beat can only be negative when no beat fits, and then ``fits`` is 0.
        m.d.sync += [base.eq(self.window_base),
                     last.eq(self.window_base + self.window_size - beat),
                     fits.eq(self.window_size >= beat)]

        def inside(addr, length):
            return fits & (addr >= base) & (addr + (length << self._shift) <= last)
        return inside

    def _checked(self, m, request, inside, name):
        """Register the stream ``request`` with its window verdict ``inside`` (a stage of its
        own: the add and compare are the longest path here); return the registered stream."""
        fields = request.payload.shape().members
        m.submodules[f"{name}_checked"] = stage = RegisterSlice(
            shape=data.StructLayout({**fields, "inside": 1}))
        m.d.comb += [stage.i.valid.eq(request.valid), request.ready.eq(stage.i.ready),
                     stage.i.payload.inside.eq(inside(request.payload.addr,
                                                      request.payload.len))]
        m.d.comb += [getattr(stage.i.payload, f).eq(getattr(request.payload, f))
                     for f in fields]
        return stage.o

    def _decide(self, m, checked, forward, queue, name):
        """Send the ``checked`` burst to ``forward`` if it is inside the window, else drop
        it; either way it enters ``queue`` (whose ``w_data`` the caller drives). Return the
        signal: a burst outside the window was decided this cycle."""
        ok, go = checked.payload.inside, Signal(name=f"{name}_decided")
        m.d.comb += [
            forward.valid.eq(checked.valid & ok & queue.w_rdy),
            forward.payload.addr.eq(checked.payload.addr),
            forward.payload.len.eq(checked.payload.len),
            checked.ready.eq(queue.w_rdy & (forward.ready | ~ok)),
            go.eq(checked.valid & checked.ready),
            queue.w_en.eq(go),
        ]
        return go & ~ok

    def _issue(self, m, request, channel):
        """Drive ``m_axi``'s ``channel`` ("ar" or "aw") from the stream ``request``."""
        axi = self.m_axi
        m.d.comb += [
            getattr(axi, f"{channel}valid").eq(request.valid),
            getattr(axi, f"{channel}addr").eq(request.payload.addr),
            getattr(axi, f"{channel}len").eq(request.payload.len),
            getattr(axi, f"{channel}size").eq(self._shift),
            getattr(axi, f"{channel}burst").eq(AXI_INCR),
            getattr(axi, f"{channel}id").eq(0),
            request.ready.eq(getattr(axi, f"{channel}ready")),
        ]

    def _sticky(self, m, bit, when):
        """Set the sticky ``bit`` in a cycle with ``when``; ``clear`` resets it."""
        with m.If(self.clear):
            m.d.sync += bit.eq(0)
        with m.Elif(when):
            m.d.sync += bit.eq(1)

    def _read_requests(self, m, inside):
        """Take AR from the fetch, else the load DMA; decide it; return the order queue."""
        fetch, load = self.fetch, self.load
        layout = data.StructLayout({**self._request.members, "load": 1})
        m.submodules.ar_in = ar_in = RegisterSlice(shape=layout)
        m.submodules.ar_out = ar_out = RegisterSlice(shape=self._request)
        m.submodules.read_order = order = fifo.SyncFIFO(
            width=_READ_GRANT.size, depth=self.read_order_depth)
        taken = ar_in.i.payload
        m.d.comb += [
            ar_in.i.valid.eq(fetch.arvalid | load.arvalid),
            taken.load.eq(~fetch.arvalid),
            taken.addr.eq(Mux(fetch.arvalid, fetch.araddr, load.araddr)),
            taken.len.eq(Mux(fetch.arvalid, fetch.arlen, load.arlen)),
            fetch.arready.eq(ar_in.i.ready),
            load.arready.eq(ar_in.i.ready & ~fetch.arvalid),
        ]
        checked = self._checked(m, ar_in.o, inside, "ar")
        held = checked.payload
        outside = self._decide(m, checked, ar_out.i, order, "ar")
        grant = _READ_GRANT(order.w_data)
        m.d.comb += [grant.load.eq(held.load), grant.refused.eq(outside),
                     grant.len.eq(held.len)]
        self._sticky(m, self.window_error.fetch, outside & ~held.load)
        self._sticky(m, self.window_error.load, outside & held.load)
        self._issue(m, ar_out.o, "ar")
        return order

    def _read_responses(self, m, order):
        """Give each R beat to the requester of the oldest open read; answer refused ones."""
        axi = self.m_axi
        m.submodules.r_in = r_in = RegisterSlice(shape=self._r)
        m.d.comb += [r_in.i.valid.eq(axi.rvalid), r_in.i.payload.data.eq(axi.rdata),
                     r_in.i.payload.resp.eq(axi.rresp), r_in.i.payload.last.eq(axi.rlast),
                     axi.rready.eq(r_in.i.ready)]
        head, beat = _READ_GRANT(order.r_data), r_in.o.payload
        answered = Signal(8, name="refused_beats")   # beats already given for the head
        refused = head.refused
        last = Mux(refused, answered == head.len, beat.last)
        for port, mine in ((self.fetch, ~head.load), (self.load, head.load)):
            m.d.comb += [port.rvalid.eq(order.r_rdy & mine & (refused | r_in.o.valid)),
                         port.rdata.eq(Mux(refused, 0, beat.data)),
                         port.rresp.eq(Mux(refused, AXI_DECERR, beat.resp)),
                         port.rlast.eq(last), port.rid.eq(0)]
        reader_ready = Mux(head.load, self.load.rready, self.fetch.rready)
        taken = order.r_rdy & (refused | r_in.o.valid) & reader_ready
        m.d.comb += [r_in.o.ready.eq(order.r_rdy & ~refused & reader_ready),
                     order.r_en.eq(taken & last)]
        with m.If(taken):
            m.d.sync += answered.eq(Mux(last, 0, answered + 1))

    def _write_requests(self, m, inside):
        """Take the store's AW and decide it; return the queue of bursts awaiting W."""
        store = self.store
        m.submodules.aw_in = aw_in = RegisterSlice(shape=self._request)
        m.submodules.aw_out = aw_out = RegisterSlice(shape=self._request)
        m.submodules.w_order = w_order = fifo.SyncFIFO(width=1, depth=WRITE_QUEUE_DEPTH)
        m.d.comb += [aw_in.i.valid.eq(store.awvalid), aw_in.i.payload.addr.eq(store.awaddr),
                     aw_in.i.payload.len.eq(store.awlen), store.awready.eq(aw_in.i.ready)]
        outside = self._decide(m, self._checked(m, aw_in.o, inside, "aw"), aw_out.i, w_order,
                               "aw")
        m.d.comb += w_order.w_data.eq(outside)
        self._sticky(m, self.window_error.store, outside)
        self._issue(m, aw_out.o, "aw")
        return w_order

    def _write_data(self, m, w_order):
        """Forward the W beats of inside bursts, drop those of refused ones; once a burst's
        last beat is through, queue it for its B response. Return that queue."""
        store, axi = self.store, self.m_axi
        m.submodules.w_in = w_in = RegisterSlice(shape=self._w)
        m.submodules.w_out = w_out = RegisterSlice(shape=self._w)
        m.submodules.b_order = b_order = fifo.SyncFIFO(width=1, depth=WRITE_QUEUE_DEPTH)
        m.d.comb += [w_in.i.valid.eq(store.wvalid), w_in.i.payload.data.eq(store.wdata),
                     w_in.i.payload.strb.eq(store.wstrb), w_in.i.payload.last.eq(store.wlast),
                     store.wready.eq(w_in.i.ready)]
        refused, last = w_order.r_data[0], w_in.o.payload.last
        room = w_order.r_rdy & (~last | b_order.w_rdy)
        ended = w_in.o.valid & w_in.o.ready & last
        m.d.comb += [w_out.i.valid.eq(w_in.o.valid & room & ~refused),
                     w_out.i.payload.eq(w_in.o.payload),
                     w_in.o.ready.eq(room & (refused | w_out.i.ready)),
                     w_order.r_en.eq(ended), b_order.w_en.eq(ended),
                     b_order.w_data.eq(refused)]
        beat = w_out.o.payload
        m.d.comb += [axi.wvalid.eq(w_out.o.valid), axi.wdata.eq(beat.data),
                     axi.wstrb.eq(beat.strb), axi.wlast.eq(beat.last),
                     w_out.o.ready.eq(axi.wready)]
        return b_order

    def _write_responses(self, m, b_order):
        """Give the store DRAM's B for inside bursts and DECERR for refused ones, in order."""
        store, axi = self.store, self.m_axi
        m.submodules.b_in = b_in = RegisterSlice(shape=2)
        m.d.comb += [b_in.i.valid.eq(axi.bvalid), b_in.i.payload.eq(axi.bresp),
                     axi.bready.eq(b_in.i.ready)]
        refused = b_order.r_data[0]
        m.d.comb += [store.bvalid.eq(b_order.r_rdy & (refused | b_in.o.valid)),
                     store.bresp.eq(Mux(refused, AXI_DECERR, b_in.o.payload)),
                     store.bid.eq(0),
                     b_in.o.ready.eq(b_order.r_rdy & ~refused & store.bready),
                     b_order.r_en.eq(store.bvalid & store.bready)]

