"""UPDATE mode: the WU result of each weight block goes straight into SGD with momentum.

``WeightUpdater`` takes the engine's WU beats (one T x T block of exact batch-summed
gradient accumulators, lane ``q = i * T + j`` for output channel ``i`` and input channel
``j``, and the block's weight-row address) and updates the block's master weights in the
master buffer, ``L = config.update_lanes`` weights per beat.

Master buffer layout (``L >= 1``): a block takes ``R = T * T / L`` rows; row
``block_addr * R + r`` holds block lanes ``q = r * L + l`` for ``l < L``, lane ``l`` in bits
``64 l ..``: the int32 master weight in the low 32 bits, its int32 velocity in the high 32.
Each row is read, run through ``SGDUpdate`` (``L`` lanes, bit-exact
``numerics.sgd_momentum``) and written back, so a block uses the buffer port for ``2 R``
cycles; reductions (``N * Ho * Wo``) at least that long never stall the array.

With the descriptor's ``partial`` (UPDATE over a batch cut) the block's gradient is the
engine's plus the sums of the batch's earlier tiles, which ``GradWriter`` left in the *other*
``MST`` half at the block's own rows (64-bit words in the master-word order above). Before
its master rows, each of those ``R`` rows is read (``mst_other`` high: the top flips the half
bit), registered, and added to the held block, wrapping at ``acc_bits`` (the whole batch's
sum fits them: the engine could have summed it itself). A block then uses the port for
``3 R + 2`` cycles (the ``R`` partial reads, two to register and add the last one, and the
``2 R`` of the SGD). The adds are one ``acc_bits`` adder per lane, register to register.

``L = 0`` builds no SGD unit: the block's accumulators are written, not read: ``R = T`` rows
per block, row ``block_addr * T + i`` holds output channel ``i``, lane ``j`` (input channel
``j``) the exact accumulator sign-extended to 64 bits in bits ``64 j ..``. The host applies
SGD. A block uses the port for ``T`` cycles and nothing saturates; ``partial`` is ignored
(``descriptor_fields`` refuses it).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer, master_depth, master_rows_per_block
from edgetrain.hw.common.constmul import times_constant
from edgetrain.hw.common.fanout import broadcast
from edgetrain.hw.config import AcceleratorConfig
from .descriptor import DescriptorLayout
from .sgd import SGDUpdate

__all__ = ["WeightUpdater", "master_depth", "master_port_shape"]


def master_port_shape(cfg):
    """Return ``(addr_bits, data_bits)`` of the master-weight buffer port (``Buffer.MST``)."""
    return Buffer.MST.addr_bits(cfg), Buffer.MST.row_bits(cfg)


class WeightUpdater(wiring.Component):
    """Apply SGD with momentum (or, with ``update_lanes`` 0, store) each block on ``grad``.

    ``desc`` (the running descriptor) is held during a run; pulse ``start`` before the first
    block. Blocks must arrive in the address generator's order (out tile, in tile, ky, kx),
    which gives each weight's flat index for stochastic rounding. ``busy`` is high while a
    block is being read, updated or written back. ``saturations`` counts since ``start``
    (always 0 without an SGD unit). ``mst_other`` is high with a read of the other ``MST``
    half (a partial row, module docstring): the row address is the same.
    """

    def __init__(self, *, config, grad_layout):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._cfg = config
        super().__init__({
            "grad": In(stream.Signature(grad_layout)),
            "desc": In(DescriptorLayout(config)),
            "start": In(1),
            Buffer.MST.port_name: Out(Buffer.MST.port_signature(config)),
            "mst_other": Out(1),
            "busy": Out(1),
            "saturations": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        if not self._cfg.update_lanes:
            return self._store_accumulators(m)
        rows = master_rows_per_block(self._cfg)
        held, row = Signal(), Signal(range(rows))
        acc = Signal.like(self.grad.payload.acc)
        row_addr = Signal.like(self.mst.addr)
        parting = Signal()              # the held block's partial rows are being read
        m.d.comb += self.grad.ready.eq(~held)
        with m.If(self.grad.valid & self.grad.ready):
            m.d.sync += [held.eq(1), row.eq(0), row_addr.eq(self.grad.payload.addr * rows),
                         parting.eq(self.desc.partial)]
        self._apply_sgd(m, platform, held, row, acc, row_addr, parting)
        return m

    def _row_done(self, m, issue, part_issue, held, row, parting):
        """Step ``row`` on each issued row; after the last partial row start the master
        rows, after the last master row release the block."""
        last = row == master_rows_per_block(self._cfg) - 1
        with m.If(part_issue):
            m.d.sync += row.eq(Mux(last, 0, row + 1))
            with m.If(last):
                m.d.sync += parting.eq(0)
        with m.Elif(issue):
            m.d.sync += row.eq(row + 1)
            with m.If(last):
                m.d.sync += held.eq(0)

    def _store_accumulators(self, m):
        """``update_lanes`` 0: write the offered block's accumulators, T sign-extended per
        row, straight from ``grad`` (the array holds them until taken: no copy here); take
        the block with its last row."""
        t, rows, grad = self._cfg.tn, master_rows_per_block(self._cfg), self.grad
        row = Signal(range(rows))
        words = [Signal(signed(64), name=f"acc_word{j}") for j in range(t)]
        m.d.comb += [w.eq(grad.payload.acc[row * t + j]) for j, w in enumerate(words)]
        last = row == rows - 1
        m.d.comb += [self.mst.addr.eq(grad.payload.addr * rows + row),
                     self.mst.w_en.eq(grad.valid), self.mst.w_data.eq(Cat(*words)),
                     grad.ready.eq(self.mst.ready & last), self.busy.eq(grad.valid),
                     self.saturations.eq(0), self.mst_other.eq(0)]
        with m.If(grad.valid & self.mst.ready):
            m.d.sync += row.eq(Mux(last, 0, row + 1))
        return m

    def _apply_sgd(self, m, platform, held, row, acc, row_addr, parting):
        """Read each row of the block (first its partial rows, with ``parting``), update it
        in ``SGDUpdate``, write it back."""
        cfg, d, lanes = self._cfg, self.desc, self._cfg.update_lanes
        m.submodules.sgd = sgd = SGDUpdate(lanes=lanes, acc_bits=cfg.acc_bits,
                                             stochastic=cfg.stochastic_rounding)
        m.submodules.write_addr = wfifo = fifo.SyncFIFO(width=len(self.mst.addr),
                                                        depth=sgd.latency + 4)
        m.d.comb += [sgd.g_shift.eq(d.shift), sgd.mu_q.eq(d.mu_q), sgd.lr_q.eq(d.lr_q),
                     sgd.lr_shift.eq(d.lr_shift), sgd.stochastic.eq(d.stochastic),
                     sgd.key_g.eq(d.key), sgd.key_v.eq(d.key_v), sgd.key_w.eq(d.key_w),
                     sgd.clear.eq(self.start), self.saturations.eq(sgd.saturations)]
        # The write-back of an updated row has priority over reading the next one. A row is
        # read only when the register it lands in will be free (see ``_feed``).
        writing = sgd.o.valid
        fetched, move = Signal(), Signal()
        # A partial row read in cycle c is registered in c + 1 (``got``) and added in c + 2
        # (``adding``); the master rows wait until the last one is in ``acc``.
        got, adding = Signal(), Signal()
        part_read = held & parting & ~writing
        part_issue = part_read & self.mst.ready
        read = held & ~parting & ~got & ~adding & ~writing & (~fetched | move)
        issue = read & self.mst.ready
        m.d.sync += [got.eq(part_issue), adding.eq(got)]
        out = sgd.o.payload
        m.d.comb += [
            self.mst.addr.eq(Mux(writing, wfifo.r_data, row_addr + row)),
            self.mst.r_en.eq(read | part_read), self.mst_other.eq(part_read),
            self.mst.w_en.eq(writing),
            self.mst.w_data.eq(Cat(*[w for n in range(lanes)
                                     for w in (out.master[n], out.velocity[n])])),
            sgd.o.ready.eq(self.mst.ready), wfifo.r_en.eq(writing & self.mst.ready),
        ]
        self._row_done(m, issue, part_issue, held, row, parting)
        index = self._lane_indices(m, issue)
        shift = self._load_acc(m, platform, issue, held, acc, got, adding)
        pending = self._feed(m, sgd, wfifo, issue, shift, fetched, move, acc, row, row_addr,
                             index)
        m.d.comb += self.busy.eq(held | fetched | pending | (wfifo.level != 0))

    def _load_acc(self, m, platform, issue, held, acc, got, adding):
        """Keep ``acc``: the offered block while none is held, then shifted down a row
        after each master row is read; a partial row (registered in ``got``) is added to
        the first row while the block rotates down a row (``adding``), so after the ``R``
        partial rows every row has its partial sum and is back in place.

        ``acc`` shifts down by a row after each row is read, so the row is always among its
        first lanes: a 2:1 multiplexer per bit, next to its neighbour, instead of a
        (T*T/L):1 multiplexer per lane whose thousands of inputs all converge on the SGD
        unit (the routed 8x8's most congested nets were its select lines). The shift comes
        a cycle after the read, so its enable is a flip-flop: the read path (write-back
        priority, memory ready) fanned out to the thousands of enables and was the routed
        8x8's critical path. A read in that cycle takes the row one further up.
        ``acc`` follows the offered block while none is held, so it has the block from the
        cycle it is taken on. Its thousands of flip-flops load on ``held`` low (a
        flip-flop), not on the hand-shake: the routed 4x4's critical path ran from the
        engine's result release through the hand-shake to those enables, mostly routing.
        The enable and the load/shift select each reach every one of them, so both go on
        global networks (``hw.fanout``). Only the last row's lanes see ``adding``. Returns
        the shift (the cycle after a master row's ``issue``).
        """
        lanes, words = self._cfg.update_lanes, self.mst.r_data
        shift = Signal()
        m.d.sync += shift.eq(issue)
        part = [Signal(signed(self._cfg.acc_bits), name=f"partial{n}") for n in range(lanes)]
        with m.If(got):
            m.d.sync += [p.eq(words[64 * n:64 * (n + 1)].as_signed())
                         for n, p in enumerate(part)]
        enable = broadcast(m, platform, ~held | shift | adding, name="acc_enable")
        shifting = broadcast(m, platform, held, name="acc_shifting")
        top = len(acc) - lanes
        with m.If(enable):
            with m.If(shifting):
                m.d.sync += [acc[k].eq(acc[k + lanes]) for k in range(top)]
                with m.If(adding):
                    m.d.sync += [acc[top + n].eq(acc[n] + p) for n, p in enumerate(part)]
            with m.Else():
                m.d.sync += acc.eq(self.grad.payload.acc)
        return shift

    def _feed(self, m, sgd, wfifo, issue, shift, fetched, move, acc, row, row_addr, index):
        """Carry each row read from ``mst`` into ``SGDUpdate``'s input register.

        A row read in cycle c is on ``r_data`` in c + 1 (``fetched``; it stays there until
        the next accepted read) and is registered on its way to the SGD unit (``move``),
        whose first stage is a multiplier: a block RAM's clock-to-out and a multiplier in
        one cycle would limit the clock. The beat waits in that register (``pending``, the
        returned signal) until the unit accepts it; a row moves up when the register is
        free or being emptied, so a row a cycle keeps flowing while the unit is ready.
        """
        lanes = self._cfg.update_lanes
        deep = len(acc) > lanes             # more than one row per block
        p = sgd.i.payload
        g_acc, beat_index = Signal.like(p.g_acc, name="read_g_acc"), Signal.like(p.index)
        addr = Signal.like(self.mst.addr, name="read_addr")
        pending = Signal()
        beat = Signal.like(p, name="sgd_beat")
        beat_addr = Signal.like(self.mst.addr, name="sgd_addr")
        m.d.comb += move.eq(fetched & (~pending | sgd.i.ready))
        with m.If(issue):
            m.d.sync += [fetched.eq(1), addr.eq(row_addr + row), beat_index.eq(index)]
            m.d.sync += [g_acc[n].eq(Mux(shift, acc[lanes + n], acc[n]) if deep else acc[n])
                         for n in range(lanes)]
        with m.Elif(move):
            m.d.sync += fetched.eq(0)
        words = self.mst.r_data
        with m.If(move):
            m.d.sync += [pending.eq(1), beat.g_acc.eq(g_acc), beat.index.eq(beat_index),
                         beat_addr.eq(addr)]
            m.d.sync += [beat.master[n].eq(words[64 * n:64 * n + 32]) for n in range(lanes)]
            m.d.sync += [beat.velocity[n].eq(words[64 * n + 32:64 * (n + 1)])
                         for n in range(lanes)]
        with m.Elif(sgd.i.valid & sgd.i.ready):
            m.d.sync += pending.eq(0)
        m.d.comb += [sgd.i.valid.eq(pending), sgd.i.payload.eq(beat),
                     wfifo.w_en.eq(sgd.i.valid & sgd.i.ready), wfifo.w_data.eq(beat_addr)]
        return pending

    def _lane_indices(self, m, issue):
        """Return the flat weight index of each lane of the row being issued.

        Block lane ``q = r * L + l`` is weight ``(i, j) = divmod(q, T)`` of the block, at
        flat index ``base + i * w_idx_out + j * w_red``. Each lane steps by ``L`` block
        lanes per issued row: ``j`` by ``L mod T`` (wrapping into ``i``), ``i`` by ``L // T``.
        """
        d, t, lanes = self.desc, self._cfg.tn, self._cfg.update_lanes
        di, dj = divmod(lanes, t)
        # Per-run constants (the descriptor is held), registered off the adders' paths.
        step, wrap, offset = (Signal(32, name="idx_step"), Signal(32, name="idx_wrap"),
                              [Signal(32, name=f"idx_offset{n}") for n in range(lanes)])
        # One adder per lane and row: the wrapped step is precomputed too.
        forward = times_constant(d.w_idx_out, di) + times_constant(d.w_red, dj)
        m.d.sync += [step.eq(forward),
                     wrap.eq(forward + d.w_idx_out - times_constant(d.w_red, t))]
        m.d.sync += [o.eq(d.idx_off + times_constant(d.w_idx_out, n // t) +
                          times_constant(d.w_red, n % t)) for n, o in enumerate(offset)]
        base = self._block_index(m)
        index = [Signal(32, name=f"idx{n}") for n in range(lanes)]
        col = [Signal(range(t), name=f"col{n}") for n in range(lanes)]
        with m.If(self.grad.valid & self.grad.ready):
            m.d.sync += [x.eq(base + o) for x, o in zip(index, offset)]
            m.d.sync += [c.eq(n % t) for n, c in enumerate(col)]
        with m.Elif(issue):
            for x, c in zip(index, col):
                over = c + dj >= t
                m.d.sync += [x.eq(x + Mux(over, wrap, step)),
                             c.eq(Mux(over, c + dj - t, c + dj))]
        return Cat(*index)

    def _block_index(self, m):
        """Flat weight index of the next block's element (0, 0), registered.

        Blocks are accepted at least two cycles apart, so the register has caught up with
        the block counters by the time the next block arrives.
        """
        d, t = self.desc, self._cfg.tm
        kk, rt = Signal(range(self._cfg.max_kernel ** 2)), Signal(16)
        ot_base, rt_base, base = Signal(32), Signal(32), Signal(32)
        # The loop ends, registered from the held descriptor: a counter compares with a
        # register, not with a subtraction (the routed 4x4's critical path went through one).
        kk_end, rt_end = Signal.like(d.w_red), Signal.like(d.red_tiles)
        m.d.sync += [kk_end.eq(d.w_red - 1), rt_end.eq(d.red_tiles - 1)]
        with m.If(self.start):
            m.d.sync += [kk.eq(0), rt.eq(0), ot_base.eq(0), rt_base.eq(0)]
        with m.Elif(self.grad.valid & self.grad.ready):
            m.d.sync += kk.eq(kk + 1)
            with m.If(kk == kk_end):
                m.d.sync += [kk.eq(0), rt.eq(rt + 1),
                             rt_base.eq(rt_base + times_constant(d.w_red, t))]
                with m.If(rt == rt_end):
                    m.d.sync += [rt.eq(0), rt_base.eq(0),
                                 ot_base.eq(ot_base + times_constant(d.w_idx_out, t))]
        m.d.sync += base.eq(ot_base + rt_base + kk)
        return base
