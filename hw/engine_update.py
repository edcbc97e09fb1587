"""UPDATE mode: the WU result of each weight block goes straight into SGD with momentum.

``WeightUpdater`` takes the engine's WU beats (one T x T block of exact batch-summed
gradient accumulators and the block's weight-row address), reads the block's master weights
and velocities from the master buffer one row (one output channel, T input channels) per
cycle, runs them through ``SGDUpdate`` (T lanes, bit-exact ``numerics.sgd_momentum``) and
writes the new master weights and velocities back to the same rows.

Master buffer layout: row ``block_addr * T + i`` holds output channel ``i`` of the block:
lane ``j`` (input channel ``j``) master word at bits ``32 j``, velocity at ``32 (T + j)``.
A block occupies the buffer port for T + 1 cycles, so reductions longer than that
(``N * Ho * Wo > T``) never stall the array.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import AcceleratorConfig
from .engine_desc import DescriptorLayout
from .memport import MemoryPortSignature
from .update import SGDUpdate

__all__ = ["WeightUpdater", "master_port_shape"]


def master_port_shape(cfg):
    """Return ``(addr_bits, data_bits)`` of the master-weight buffer port."""
    return (max(1, (cfg.weight_depth * cfg.tm - 1).bit_length()), 64 * cfg.tm)


class WeightUpdater(wiring.Component):
    """Apply SGD with momentum to each WU block accepted on ``grad``.

    ``desc`` (the running descriptor) is held during a run; pulse ``start`` before the first
    block. Blocks must arrive in the address generator's order (out tile, in tile, ky, kx),
    which gives each weight's flat index for stochastic rounding. ``busy`` is high while a
    block is being read, updated or written back. ``saturations`` counts since ``start``.
    """

    def __init__(self, *, config, grad_layout):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._cfg = config
        addr_bits, data_bits = master_port_shape(config)
        super().__init__({
            "grad": In(stream.Signature(grad_layout)),
            "desc": In(DescriptorLayout(config)),
            "start": In(1),
            "mst": Out(MemoryPortSignature(addr_bits=addr_bits, data_bits=data_bits)),
            "busy": Out(1),
            "saturations": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, t, d = self._cfg, self._cfg.tm, self.desc
        m.submodules.sgd = sgd = SGDUpdate(lanes=t, acc_bits=cfg.acc_bits)
        m.submodules.write_addr = wfifo = fifo.SyncFIFO(width=len(self.mst.addr),
                                                        depth=sgd.latency + 4)
        m.d.comb += [sgd.g_shift.eq(d.shift), sgd.mu_q.eq(d.mu_q), sgd.lr_q.eq(d.lr_q),
                     sgd.lr_shift.eq(d.lr_shift), sgd.stochastic.eq(d.stochastic),
                     sgd.key_g.eq(d.key), sgd.key_v.eq(d.key_v), sgd.key_w.eq(d.key_w),
                     sgd.clear.eq(self.start), self.saturations.eq(sgd.saturations)]

        held, row = Signal(), Signal(range(t))
        acc = Signal.like(self.grad.payload.acc)
        row_addr, row_base = Signal.like(self.mst.addr), Signal(32)
        base = self._block_index(m)
        m.d.comb += self.grad.ready.eq(~held)
        with m.If(self.grad.valid & self.grad.ready):
            m.d.sync += [held.eq(1), acc.eq(self.grad.payload.acc), row.eq(0),
                         row_addr.eq(self.grad.payload.addr * t), row_base.eq(base)]

        # The write-back of an updated row has priority over reading the next one.
        writing = sgd.o.valid
        pending = Signal()
        read = held & ~writing & (~pending | sgd.i.ready)
        issue = read & self.mst.ready
        m.d.comb += [
            self.mst.addr.eq(Mux(writing, wfifo.r_data, row_addr + row)),
            self.mst.r_en.eq(read), self.mst.w_en.eq(writing),
            self.mst.w_data.eq(Cat(sgd.o.payload.master.as_value(),
                                   sgd.o.payload.velocity.as_value())),
            sgd.o.ready.eq(self.mst.ready), wfifo.r_en.eq(writing & self.mst.ready),
        ]
        with m.If(issue):
            m.d.sync += [row.eq(row + 1), row_base.eq(row_base + d.w_idx_out)]
            with m.If(row == t - 1):
                m.d.sync += held.eq(0)
        self._feed(m, sgd, wfifo, issue, pending, acc, row, row_addr, row_base)
        m.d.comb += self.busy.eq(held | pending | (wfifo.level != 0))
        return m

    def _block_index(self, m):
        """Flat weight index of the next block's element (0, 0), stepped per block."""
        d, t = self.desc, self._cfg.tm
        kk, rt = Signal(range(self._cfg.max_kernel ** 2)), Signal(16)
        ot_base, rt_base = Signal(32), Signal(32)
        with m.If(self.start):
            m.d.sync += [kk.eq(0), rt.eq(0), ot_base.eq(0), rt_base.eq(0)]
        with m.Elif(self.grad.valid & self.grad.ready):
            m.d.sync += kk.eq(kk + 1)
            with m.If(kk == d.w_red - 1):
                m.d.sync += [kk.eq(0), rt.eq(rt + 1), rt_base.eq(rt_base + t * d.w_red)]
                with m.If(rt == d.red_tiles - 1):
                    m.d.sync += [rt.eq(0), rt_base.eq(0),
                                 ot_base.eq(ot_base + t * d.w_idx_out)]
        return ot_base + rt_base + kk

    def _feed(self, m, sgd, wfifo, issue, pending, acc, row, row_addr, row_base):
        """Present the row read last cycle to ``SGDUpdate`` (r_data holds until accepted)."""
        t, d = self._cfg.tm, self.desc
        g_acc = Signal.like(sgd.i.payload.g_acc)
        index = Signal.like(sgd.i.payload.index)
        addr = Signal.like(self.mst.addr)
        with m.If(issue):
            m.d.sync += [pending.eq(1), addr.eq(row_addr + row)]
            m.d.sync += [g_acc[j].eq(acc[row * t + j]) for j in range(t)]
            m.d.sync += [index[j].eq(row_base + j * d.w_red) for j in range(t)]
        with m.Elif(sgd.i.valid & sgd.i.ready):
            m.d.sync += pending.eq(0)
        words = self.mst.r_data
        m.d.comb += [sgd.i.valid.eq(pending), sgd.i.payload.g_acc.eq(g_acc),
                     sgd.i.payload.index.eq(index),
                     wfifo.w_en.eq(sgd.i.valid & sgd.i.ready), wfifo.w_data.eq(addr)]
        m.d.comb += [sgd.i.payload.master[j].eq(words[32 * j:32 * (j + 1)]) for j in range(t)]
        m.d.comb += [sgd.i.payload.velocity[j].eq(words[32 * (t + j):32 * (t + j + 1)])
                     for j in range(t)]
