"""``DMACrossbar``: route each DMA's beat-wide buffer port to the bank of the buffer it names."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.config import AcceleratorConfig
from .banks import bank_addr_bits
from .beats import BeatPort, beat_depth, in_window

__all__ = ["DMACrossbar"]


class DMACrossbar(wiring.Component):
    """Connect ``requesters`` DMA ports to the ``dma`` ports of the four buffer banks.

    Parameters (keyword-only): ``config`` (an ``AcceleratorConfig``), ``requesters`` (default
    2: the load DMA and the store DMA).

    Members
        ``requester[i]``: ``MemoryPortSignature`` (flipped: the DMA drives it) of
        ``axi_data_bits`` beats and ``(buf_depth - 1).bit_length()`` address bits, so that
        ``ReshapeDMA.from_config(config, buf_depth=crossbar.buf_depth).buf`` fits it.
        Addresses are beat rows of the selected buffer (``hw/accel/beats.py``).
        ``buffer[i]`` (in, ``Buffer``): the buffer requester ``i`` addresses, held while its
        transfer runs (read data already on its way still comes from the buffer that
        accepted the read).
        ``act``, ``wgt``, ``out``, ``mst``: drive each bank's ``dma`` port, through a
        ``BeatPort`` per buffer (``wiring.connect(m, crossbar.act, act_bank.dma)``).
        ``error`` (out): ``window`` (one bit per requester) and ``rows``, sticky until
        ``clear``: see below. ``clear`` (in): clear them and the ``BeatPort``s' slots.

    Arbitration: per buffer, round robin among the requesters addressing it, one request
    per cycle; the turn passes when the granted request is accepted. The others see
    ``ready`` low and hold their requests. Two requesters on different buffers run in the
    same cycle. Reads: ``r_data`` one cycle after acceptance, held until the requester's
    next accepted read. Requests of two requesters interleave per request, so two of them
    must not *write* one buffer at once (a ``BeatPort`` collects a row's slots in turn;
    interleaved rows set ``error.rows``).

    Window: a request whose address is not a beat row of the selected buffer
    (``in_window``: beyond its beat depth, or between its halves when ``half_depth`` is not
    a power of two) never reaches a bank. It is accepted at once (no hang), a write is
    dropped, a read returns 0, and the requester's ``error.window`` bit is set. (The DMA's
    own bounds check against ``buf_depth`` is the first line; this one is per buffer.)
    """

    def __init__(self, *, config, requesters=2):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if not isinstance(requesters, int) or isinstance(requesters, bool) or requesters < 1:
            raise TypeError(f"requesters must be a positive integer, not {requesters!r}")
        self._cfg, self._n = config, requesters
        self._buf_depth = max(beat_depth(config, b) for b in Buffer)
        beats = MemoryPortSignature(addr_bits=(self._buf_depth - 1).bit_length(),
                                    data_bits=config.axi_data_bits)
        banks = {b.port_name: Out(MemoryPortSignature(addr_bits=bank_addr_bits(config, b),
                                                      data_bits=b.row_bits(config)))
                 for b in Buffer}
        super().__init__({
            "requester": In(beats).array(requesters),
            "buffer": In(Buffer).array(requesters),
            **banks,
            "error": Out(data.StructLayout({"window": requesters, "rows": 1})),
            "clear": In(1),
        })

    config = property(lambda self: self._cfg)
    requesters = property(lambda self: self._n)

    @property
    def buf_depth(self):
        """The ``buf_depth`` of a ``ReshapeDMA`` behind a requester port: the largest
        buffer's beat depth."""
        return self._buf_depth

    def elaborate(self, platform):
        m = Module()
        ports = {}
        for b in Buffer:
            ports[b] = port = BeatPort(config=self._cfg, buffer=b)
            m.submodules[f"{b.port_name}_beats"] = port
            wiring.connect(m, port.bank, wiring.flipped(getattr(self, b.port_name)))
            m.d.comb += port.clear.eq(self.clear)
        inside = [self._inside(m, i) for i in range(self._n)]
        grants = {b: self._route(m, b, ports[b].beat, inside) for b in Buffer}
        for i in range(self._n):
            self._answer(m, i, ports, grants, inside[i])
        m.d.comb += self.error.rows.eq(Cat(ports[b].error for b in Buffer).any())
        return m

    def _inside(self, m, i):
        """Return a signal: requester ``i``'s address is in its selected buffer's window."""
        inside = Signal(name=f"inside{i}")
        with m.Switch(self.buffer[i]):
            for b in Buffer:
                with m.Case(b):
                    m.d.comb += inside.eq(in_window(self._cfg, b, self.requester[i].addr))
        return inside

    def _route(self, m, b, beat, inside):
        """Grant buffer ``b``'s ``beat`` port to one requester (round robin) and pass its
        request on; return the grant (one bit per requester)."""
        n, name = self._n, b.port_name
        wants = Signal(n, name=f"{name}_wants")
        for i, req in enumerate(self.requester):
            m.d.comb += wants[i].eq((req.r_en | req.w_en) & inside[i] & (self.buffer[i] == b))
        grant = Signal(n, name=f"{name}_grant")
        last = Signal(range(n), name=f"{name}_last")    # the last requester served
        with m.Switch(last):
            for served in range(n):
                with m.Case(served):
                    for k in range(n):
                        i = (served + 1 + k) % n
                        with (m.If if k == 0 else m.Elif)(wants[i]):
                            m.d.comb += grant.eq(1 << i)
        for i, req in enumerate(self.requester):
            with m.If(grant[i]):
                m.d.comb += [getattr(beat, f).eq(getattr(req, f))
                             for f in ("addr", "r_en", "r_last", "w_en", "w_data")]
                with m.If(beat.ready):
                    m.d.sync += last.eq(i)
        return grant

    def _answer(self, m, i, ports, grants, inside):
        """Drive requester ``i``'s ``ready``, ``r_data`` and ``error.window`` bit."""
        req, buffer = self.requester[i], self.buffer[i]
        granted = Signal(name=f"granted_ready{i}")
        with m.Switch(buffer):
            for b in Buffer:
                with m.Case(b):
                    m.d.comb += granted.eq(grants[b][i] & ports[b].beat.ready)
        m.d.comb += req.ready.eq(Mux(inside, granted, 1))
        read = req.r_en & req.ready
        fresh = Signal(name=f"fresh{i}")
        source = Signal(Buffer, name=f"source{i}")
        held = Signal.like(req.r_data, name=f"held{i}")
        arrived = Signal.like(req.r_data, name=f"arrived{i}")
        m.d.comb += arrived.eq(Array(ports[b].beat.r_data for b in Buffer)[source.as_value()])
        m.d.sync += fresh.eq(read & inside)
        with m.If(read):
            m.d.sync += source.eq(buffer)
        with m.If(read & ~inside):
            m.d.sync += held.eq(0)
        with m.Elif(fresh):
            m.d.sync += held.eq(arrived)
        m.d.comb += req.r_data.eq(Mux(fresh, arrived, held))
        with m.If(self.clear):
            m.d.sync += self.error.window[i].eq(0)
        with m.Elif((req.r_en | req.w_en) & ~inside):
            m.d.sync += self.error.window[i].eq(1)
