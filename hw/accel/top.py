"""``Accelerator``: the sequencer, two DMAs, four buffer banks and the compute units, one top.

Members: ``regs`` (the control registers of ``hw/accel/control.py``), ``m_axi`` (the one
AXI4 master to DRAM, shared by the instruction fetch and both DMAs through ``AXIArbiter``)
and ``status`` (the STATUS word, for LEDs).

Inside (``docs/accelerator.md`` has the picture): the ``Sequencer`` hands LOAD bodies to
the load ``ReshapeDMA`` and STORE bodies to the store one, each reaching the bank its body
names through the ``DMACrossbar``; COMPUTE bodies go to the ``ConvEngine`` (built for one
half of each buffer: ``isa.engine_config``), whose row addresses get the body's half bit on
top (the MST half flipped while the updater reads partial sums: ``mst_other``) and whose
WU results a ``GradWriter`` writes into MST; POOL and ELTWISE bodies to their
units. The compute side of each bank belongs to the unit of the compute instruction that
runs (one at a time, in program order).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.common.axi import AXI4Signature
from edgetrain.hw.dma.reshape import ReshapeDMA
from edgetrain.hw.engine.conv import ConvEngine
from edgetrain.hw.engine.descriptor import MODES
from .axi_arbiter import AXIArbiter
from .banks import BufferBank
from .control import REG_ADDR_BITS, REGISTER_BITS, ControlRegisters
from .crossbar import DMACrossbar
from .eltwise import EltwiseUnit
from .gradwriter import GradWriter, master_add_port
from .isa import engine_config
from .pool import PoolUnit
from .sequencer import Sequencer, StatusLayout

__all__ = ["Accelerator"]


class _Owner(enum.Enum, shape=2):
    """The compute unit whose instruction runs (owns the banks' compute ports)."""
    ENGINE = 0
    POOL = 1
    ELTWISE = 2


class Accelerator(wiring.Component):
    """The whole accelerator of ``config`` (see the module docstring)."""

    def __init__(self, *, config):
        self._cfg = config
        self._engine_cfg = engine_config(config)
        super().__init__({
            "regs": In(MemoryPortSignature(addr_bits=REG_ADDR_BITS, data_bits=REGISTER_BITS)),
            "m_axi": Out(AXI4Signature(addr_bits=config.axi_addr_bits,
                                       data_bits=config.axi_data_bits)),
            "status": Out(StatusLayout),
        })

    @property
    def config(self):
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.control = ctl = ControlRegisters(config=cfg)
        m.submodules.sequencer = seq = Sequencer(config=cfg)
        m.submodules.arbiter = arb = AXIArbiter(config=cfg)
        m.submodules.crossbar = xbar = DMACrossbar(config=cfg, requesters=2)
        banks = {b: BufferBank(config=cfg, buffer=b) for b in Buffer}
        for b, bank in banks.items():
            m.submodules[f"bank_{b.port_name}"] = bank
            wiring.connect(m, getattr(xbar, b.port_name), bank.dma)
        wiring.connect(m, wiring.flipped(self.regs), ctl.port)
        wiring.connect(m, wiring.flipped(self.m_axi), arb.m_axi)
        wiring.connect(m, seq.m_axi, arb.fetch)
        m.d.comb += [seq.start.eq(ctl.start), seq.addr.eq(ctl.prog_addr),
                     seq.count.eq(ctl.prog_count), arb.window_base.eq(ctl.window_base),
                     arb.window_size.eq(ctl.window_size), arb.clear.eq(seq.clear_units),
                     xbar.clear.eq(seq.clear_units), ctl.status.eq(seq.status),
                     self.status.eq(seq.status)]
        dmas = [self._transfer(m, seq, xbar, arb, i, store) for i, store in enumerate((0, 1))]
        units = self._compute(m, seq, banks)
        self._counters(m, ctl, seq, units["engine"], banks, dmas, arb, xbar)
        return m

    def _transfer(self, m, seq, xbar, arb, i, store):
        """One DMA direction: sequencer port -> DMA -> crossbar requester ``i`` + arbiter."""
        name = "store" if store else "load"
        port = getattr(seq, name)
        dma = ReshapeDMA.from_config(self._cfg, buf_depth=xbar.buf_depth)
        m.submodules[f"{name}_dma"] = dma
        wiring.connect(m, dma.buf, xbar.requester[i])
        wiring.connect(m, dma.m_axi, getattr(arb, name))
        body = port.desc.payload
        # A LOAD body asking the DMA to store (or a STORE body to load) is refused: the
        # descriptor never reaches the DMA, the port reports busy one cycle, then error.
        wrong = body.dma.store != store
        refused, target = Signal(name=f"{name}_refused"), Signal(Buffer, name=f"{name}_buffer")
        m.d.comb += [dma.desc.payload.eq(body.dma), dma.desc.valid.eq(port.desc.valid & ~wrong),
                     port.desc.ready.eq(Mux(wrong, 1, dma.desc.ready)),
                     dma.clear.eq(seq.clear_units), xbar.buffer[i].eq(target)]
        with m.If(port.desc.valid & port.desc.ready):
            m.d.sync += [target.eq(body.buffer), refused.eq(wrong)]
        with m.Elif(refused):
            m.d.sync += refused.eq(0)
        sticky = Signal(name=f"{name}_sticky_error")
        with m.If(seq.clear_units):
            m.d.sync += sticky.eq(0)
        with m.Elif(refused):
            m.d.sync += sticky.eq(1)
        status = dma.status
        dma_error = (status.err_zero | status.err_align | status.err_bounds |
                     status.err_length | status.err_resp | xbar.error.window[i])
        m.d.comb += [port.busy.eq(status.busy | refused), port.error.eq(dma_error | sticky)]
        return dma

    def _compute(self, m, seq, banks):
        """The engine (its WU results through a ``GradWriter`` into MST), pool and eltwise
        units on the banks' compute ports."""
        m.submodules.engine = eng = ConvEngine(config=self._engine_cfg)
        m.submodules.grad_writer = gw = GradWriter(config=self._engine_cfg)
        m.submodules.pool = pool = PoolUnit(config=self._cfg)
        m.submodules.eltwise = elt = EltwiseUnit(config=self._cfg)
        owner = Signal(_Owner)
        halves, wu, accumulate = Signal(len(Buffer)), Signal(), Signal()
        release = Signal(len(Buffer))
        body = seq.engine.desc.payload
        wiring.connect(m, eng.grad, gw.grad)
        # The writer takes a grad beat with its last row, so the engine's busy covers it.
        m.d.comb += [eng.desc.payload.eq(body.desc), eng.desc.valid.eq(seq.engine.desc.valid),
                     seq.engine.desc.ready.eq(eng.desc.ready), seq.engine.busy.eq(eng.busy),
                     seq.engine.error.eq(eng.error)]
        with m.If(seq.engine.desc.valid & seq.engine.desc.ready):
            m.d.sync += [owner.eq(_Owner.ENGINE), halves.eq(body.halves),
                         wu.eq(body.desc.mode == MODES.index("wu")),
                         accumulate.eq(body.accumulate), release.eq(body.release)]
        m.d.comb += gw.accumulate.eq(accumulate)
        self._release(m, eng, banks, halves, release)
        engine_ports = {b: getattr(eng, b.port_name) for b in Buffer}
        engine_ports[Buffer.MST] = self._master_source(m, eng.mst, gw.mst, wu)
        for unit, port, who in ((pool, seq.pool, _Owner.POOL), (elt, seq.eltwise,
                                                               _Owner.ELTWISE)):
            wiring.connect(m, port.desc, unit.desc)
            m.d.comb += [port.busy.eq(unit.busy), port.error.eq(unit.error)]
            with m.If(port.desc.valid & port.desc.ready):
                m.d.sync += owner.eq(who)
        # UPDATE over a batch cut reads the partial sums from the other MST half.
        engine_halves = halves ^ (eng.mst_other << Buffer.MST.value)
        for b, bank in banks.items():
            self._share(m, b, bank.compute, owner, engine_ports[b], engine_halves, pool, elt)
        return {"engine": eng, "pool": pool, "eltwise": elt}

    @staticmethod
    def _release(m, eng, banks, halves, release):
        """When a COMPUTE ends (the engine's ``busy`` falls), release the halves it used of
        the buffers its ``release`` bits name."""
        was_busy = Signal(name="engine_was_busy")
        m.d.sync += was_busy.eq(eng.busy)
        ended = was_busy & ~eng.busy
        for b, bank in banks.items():
            for h in range(len(bank.release)):
                m.d.comb += bank.release[h].eq(ended & release[b.value] &
                                               (halves[b.value] == h))

    def _master_source(self, m, updater, writer, wu):
        """The engine side of the MST port: the ``writer`` in a WU run (its adds too), else
        the engine's own port (UPDATE's ``updater``); the other one sees ``ready`` low."""
        port = master_add_port(self._engine_cfg).create(path=("engine_mst",))
        m.d.comb += port.w_add.eq(wu & writer.w_add)
        for src, chosen in ((writer, wu), (updater, ~wu)):
            with m.If(chosen):
                m.d.comb += [port.addr.eq(src.addr), port.r_en.eq(src.r_en),
                             port.r_last.eq(src.r_last), port.w_en.eq(src.w_en),
                             port.w_data.eq(src.w_data), src.ready.eq(port.ready)]
            m.d.comb += src.r_data.eq(port.r_data)
        return port

    @staticmethod
    def _share(m, b, compute, owner, ep, halves, pool, elt):
        """Drive bank ``b``'s compute port from the unit that owns it (``ep``: the engine's
        port for it)."""
        sources = [(_Owner.ENGINE, Cat(ep.addr, halves[b.value]), ep)]
        if b in (Buffer.ACT, Buffer.OUT):
            sources += [(who, getattr(u, b.port_name).addr, getattr(u, b.port_name))
                        for who, u in ((_Owner.POOL, pool), (_Owner.ELTWISE, elt))]
        for who, addr, src in sources:
            with m.If(owner == who):
                m.d.comb += [compute.addr.eq(addr), compute.r_en.eq(src.r_en),
                             compute.r_last.eq(src.r_last), compute.w_en.eq(src.w_en),
                             compute.w_data.eq(src.w_data), src.ready.eq(compute.ready)]
                if b is Buffer.MST:
                    m.d.comb += compute.w_add.eq(src.w_add)
            m.d.comb += src.r_data.eq(compute.r_data)

    @staticmethod
    def _program_counts(m, seq, bank, out):
        """Drive ``out`` with the bank's counters of the last program, start to done: the
        free-running counters when it started subtracted from their value while it ran
        (a program's refreshes, stalls and violations, not those of the idle time after
        it, while the rows it left live are still refreshed)."""
        if bank.lane_writes:          # SRAM halves: no refresh, the counters stay zero
            m.d.comb += out.eq(bank.counters)
            return
        at_start = Signal.like(bank.counters, name=f"{bank.buffer.port_name}_at_start")
        at_done = Signal.like(bank.counters, name=f"{bank.buffer.port_name}_at_done")
        with m.If(seq.clear_units):
            m.d.sync += [at_start.eq(bank.counters), at_done.eq(bank.counters)]
        with m.Elif(seq.status.busy):
            m.d.sync += at_done.eq(bank.counters)
        for name in ("refreshes", "stall_cycles", "violations"):
            m.d.comb += getattr(out, name).eq(getattr(at_done, name) - getattr(at_start, name))

    def _counters(self, m, ctl, seq, eng, banks, dmas, arb, xbar):
        """Program totals of the engine counters (amax: the largest); queue, bank and DMA
        figures to registers."""
        c = ctl.counters
        totals = Signal.like(c.engine)
        cycles, was_busy = Signal.like(c.cycles), Signal()
        m.d.comb += [c.queues.eq(seq.counters), c.engine.eq(totals), c.cycles.eq(cycles)]
        for b, bank in banks.items():
            self._program_counts(m, seq, bank, getattr(c.banks, b.port_name))
        m.d.sync += was_busy.eq(eng.busy)
        with m.If(seq.clear_units):
            m.d.sync += [totals.eq(0), cycles.eq(0)]
        with m.Else():
            with m.If(seq.status.busy):
                m.d.sync += cycles.eq(cycles + 1)
            with m.If(was_busy & ~eng.busy):
                ec = eng.counters
                m.d.sync += [totals.busy_cycles.eq(totals.busy_cycles + ec.busy_cycles),
                             totals.macs.eq(totals.macs + ec.macs),
                             totals.stall_cycles.eq(totals.stall_cycles + ec.stall_cycles),
                             totals.saturations.eq(totals.saturations + ec.saturations)]
                with m.If(ec.amax > totals.amax):
                    m.d.sync += totals.amax.eq(ec.amax)
        load, store = dmas
        m.d.comb += [ctl.errors.load.eq(load.status), ctl.errors.store.eq(store.status),
                     ctl.errors.window.eq(arb.window_error), ctl.errors.crossbar.eq(xbar.error)]
