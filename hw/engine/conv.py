"""The channel-parallel conv engine: one Tm x Tn MAC array for FP, BP and WU.

``ConvEngine`` runs one layer (tile) per descriptor accepted on ``desc`` (see
``descriptor``) against its buffers (``hw.buffers.Buffer``), one ``MemoryPortSignature``
port each, named ``Buffer.port_name``, so any buffer with that port (``SRAMBuffer``, the
eDRAM-style buffer) can sit behind it:

* ``act`` (``Buffer.ACT``): FP/WU read x, BP reads dy (T int16 lanes per row);
* ``wgt`` (``Buffer.WGT``): FP/BP read T x T weight blocks (BP swaps the block's roles on
  the way in);
* ``out`` (``Buffer.OUT``): FP/BP write requantized rows (T int16 lanes, then T ReLU-mask
  bits), WU reads dy;
* ``mst`` (``Buffer.MST``): UPDATE reads and writes master weights and velocities
  (``updater``); with the descriptor's ``partial`` it also reads the partial gradient sums
  of the other ``MST`` half, with ``mst_other`` high (the accelerator's top flips the half).

FP/BP results go through the ``Requantizer`` (shift, nearest or stochastic rounding with the
counter-based generator, saturation, ReLU and its mask) into ``out``. WU results (the exact
batch-summed weight-gradient accumulators of one T x T block, lane ``i * T + j`` for output
channel ``i`` and input channel ``j``) leave on the ``grad`` stream with the block's weight-row
address; in UPDATE they go through ``WeightUpdater`` (SGD with momentum) into ``mst`` instead.
Max-pool is not in the engine: it is the post-processing unit of ``hw/engine/pool.py``.

Data path: descriptor check -> address generator -> buffer read (1) -> row register (1) -> PE array
(operands, products, adder tree, accumulator) -> result queue -> requantizer -> write.
Nothing waits between reductions: the next pixel's first tap follows the last tap of the
previous one.

Only the address generator and the read request ever stall; everything after them runs
every cycle (the PE array has no enable). A buffer that is not ready leaves a bubble in the
pipeline (a stall cycle). Consumers are decoupled by credits: a tap that ends a reduction
is issued only when its result is sure to find room, so a result never has to wait inside
the array. FP/BP results enter a result queue (``result_queue_depth`` entries, one credit
each, returned when the entry leaves for the requantizer); the depth covers the
issue-to-dequeue latency, so layers whose every tap ends a reduction (K = 1, one input
tile) run at one tap per cycle. A WU result stays in the array's result register until
``grad`` (or the updater) takes it: one credit, so only a WU reduction shorter than that
round trip waits. No ready signal of ``out``, ``grad`` or the requantizer reaches the array.

Counters (cleared when a descriptor is accepted, valid once ``busy`` falls): ``busy_cycles``,
``macs`` (useful MACs: valid output lanes x valid input lanes of every kernel tap, padding
taps included as the standard MAC count does; BP's skipped dilation-zero taps excluded),
``stall_cycles``, ``saturations`` and ``amax`` (largest |accumulator| requantized).
"""

from typing import NamedTuple

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.lanes import LANE_BITS
from edgetrain.hw.common.constmul import times_constant
from edgetrain.hw.common.fanout import broadcast
from edgetrain.hw.config import AcceleratorConfig
from .addrgen import AddressGenerator, TapLayout
from .check import DescriptorCheck
from .descriptor import MODES, DescriptorLayout
from .pe_array import PEArray
from .requant import Requantizer
from .updater import WeightUpdater

__all__ = ["ConvEngine", "CounterLayout", "GradLayout", "result_queue_depth"]


def _bits(v):
    return max(1, int(v).bit_length())


# Cycles from a tap's issue to its FP/BP result leaving the result queue, beyond the array's
# own latency: buffer read, row register, and the queue (write, then its output register).
_ISSUE_TO_ARRAY, _QUEUE_LATENCY = 2, 2


def result_queue_depth(array_latency):
    """Return the FP/BP result queue's depth for an array of ``array_latency`` cycles.

    It exceeds the results one tap per cycle keeps in flight between issue and leaving the
    queue, so layers whose every tap ends a reduction (K = 1, one tile) never stall.
    """
    in_flight = _ISSUE_TO_ARRAY + array_latency + _QUEUE_LATENCY
    return 1 << in_flight.bit_length()


class _Run(NamedTuple):
    """The control signals of one descriptor's run (see ``ConvEngine._accept``)."""
    start: Signal       # first cycle of the run and of the check
    cleared: Signal     # the verdict was good (from the cycle after it)
    release: Signal     # results may leave the engine (a register: from the cycle after
                        # a good verdict, so the check's logic reaches no queue enable)
    abort: Signal       # the verdict was bad: the run is being discarded
    idle: Signal        # not busy (a separate register: few loads on ``busy``)


def CounterLayout(cfg):
    return data.StructLayout({"busy_cycles": 32, "macs": 48, "stall_cycles": 32,
                              "saturations": 32, "amax": cfg.acc_bits})


def GradLayout(cfg):
    return data.StructLayout({"addr": Buffer.WGT.addr_bits(cfg),
                              "acc": data.ArrayLayout(signed(cfg.acc_bits), cfg.tm * cfg.tn)})


class ConvEngine(wiring.Component):
    """Run FP, BP and WU descriptors on a ``config.tm`` x ``config.tn`` MAC array.

    ``desc`` is ready while the engine is idle (``busy`` low). The cycle after a descriptor
    is accepted, ``busy`` rises and ``error`` falls; the run starts while the descriptor is
    checked, and no result leaves the engine until it is found good. ``busy`` falls when
    every result has been written (FP/BP) or accepted on ``grad`` (WU); the counters are then
    final. Requires ``tm == tn`` (BP reads a stored T x T weight block with its rows and
    columns swapped). The buffer ports are used only while ``busy``.

    A malformed descriptor is refused: its run is discarded (nothing is written, no ``grad``
    beat is offered; it may have read the buffers), ``busy`` falls with ``error`` high
    ``check_cycles`` cycles after acceptance, the counters read 0, and ``error`` stays high
    until the next descriptor is accepted. Malformed are: a zero batch, tile count, channel
    count, size or kernel; a batch, channel count, kernel or layer input side above the
    config's maximum; ``pad >= kernel``; a tile count other than ``ceil(ch / T)``; an output
    side other than ``(in + 2 pad - K) // s + 1`` (BP: the same relation with the sides'
    roles swapped); a run whose last row lies past the end of the act, out or weight buffer;
    ``stochastic`` set in a build without stochastic rounding
    (``config.stochastic_rounding`` false). See ``engine_check.DescriptorCheck``.
    """

    def __init__(self, *, config):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if config.tm != config.tn:
            raise ConfigError(f"the conv engine needs tm == tn (BP reads weight blocks "
                              f"transposed), not tm={config.tm}, tn={config.tn}")
        self._cfg = config
        self._check = DescriptorCheck(config=config)
        self._pe = PEArray(tm=config.tm, tn=config.tn, acc_bits=config.acc_bits,
                           side_bits=TapLayout(config).size)
        # An aborted run's last taps reach the result queue 2 + fp_latency cycles after issue.
        self._drain = _ISSUE_TO_ARRAY + self._pe.fp_latency
        ports = {b.port_name: Out(b.port_signature(config)) for b in Buffer}
        super().__init__({
            "desc": In(stream.Signature(DescriptorLayout(config))),
            **ports,
            "mst_other": Out(1),
            "grad": Out(stream.Signature(GradLayout(config))),
            "busy": Out(1),
            "error": Out(1),
            "counters": Out(CounterLayout(config)),
        })

    @property
    def config(self):
        return self._cfg

    @property
    def check_cycles(self):
        """Cycles from a descriptor's acceptance to the fall of ``busy`` if it is refused."""
        return 1 + self._check.latency + 1 + self._drain + 1

    def elaborate(self, platform):
        m = Module()
        cfg, t = self._cfg, self._cfg.tm
        cur = Signal(DescriptorLayout(cfg))
        run = self._accept(m, cur)
        ag = AddressGenerator(config=cfg)
        m.submodules.addrgen = ResetInserter(run.abort)(ag)
        m.submodules.pe = pe = self._pe
        m.submodules.requant = rq = Requantizer(lanes=t, acc_bits=cfg.acc_bits,
                                                stochastic=cfg.stochastic_rounding,
                                                pipeline=cfg.pipeline)
        m.submodules.pending_addr = addr_fifo = fifo.SyncFIFO(
            width=len(self.out.addr), depth=rq.latency + 4)
        m.submodules.updater = upd = WeightUpdater(config=cfg, grad_layout=GradLayout(cfg))
        update = cur.mode == MODES.index("update")
        wu = (cur.mode == MODES.index("wu")) | update
        m.d.comb += [ag.desc.eq(cur), ag.start.eq(run.start), upd.desc.eq(cur),
                     upd.start.eq(run.start)]

        # Credits: a reduction's last tap is issued only when its result is sure to find room
        # (FP/BP: a result-queue entry; WU: the PE array's result register), so the array
        # never waits for the consumers and no ready signal reaches it.
        depth = result_queue_depth(pe.fp_latency)
        fp_credits, wu_credit = Signal(range(depth + 1)), Signal()
        tap, tap_valid = ag.tap, ag.tap_valid
        credit = Mux(wu, ~wu_credit, fp_credits < depth)
        ask = tap_valid & (~tap.last | credit) & ~run.abort
        ready_all = self.act.ready & Mux(wu, self.out.ready, self.wgt.ready)
        issue = ask & ready_all
        m.d.comb += ag.en.eq(~tap_valid | issue)

        l_valid, l_tap = Signal(), Signal.like(tap)
        m.d.sync += [l_valid.eq(issue), l_tap.eq(tap)]
        self._reads(m, tap, ask, wu)
        self._operands(m, platform, pe, l_valid, l_tap, cur, wu)
        fp_left = self._fp_results(m, pe, rq, addr_fifo, cur, wu, depth, run)
        grad_taken = self._wu_results(m, pe, upd, update, run)
        with m.If(run.abort):
            m.d.sync += [fp_credits.eq(0), wu_credit.eq(0)]
        with m.Else():
            m.d.sync += fp_credits.eq(fp_credits + (issue & tap.last & ~wu) - fp_left)
            with m.If(issue & tap.last & wu):
                m.d.sync += wu_credit.eq(1)
            with m.Elif(grad_taken):
                m.d.sync += wu_credit.eq(0)
        wiring.connect(m, wiring.flipped(self.mst), upd.mst)
        m.d.comb += self.mst_other.eq(upd.mst_other)
        retired = Mux(wu, grad_taken, rq.o.valid & rq.o.ready)
        self._finish(m, run, ag, issue & tap.last, retired, upd.busy)
        saturations = Mux(update, upd.saturations, rq.saturations)
        # A stall: a buffer not ready, or no credit once results flow (before the verdict
        # and in the cycle after it, when the first result is only leaving the full queue,
        # a missing credit is the check's latency, not a stall).
        flowing = Signal()
        m.d.sync += flowing.eq(run.cleared)
        stalled = (ask & ~ready_all) | (tap_valid & ~ask & flowing)
        self._count(m, run, issue, tap, stalled, saturations, rq)
        return m

    def _accept(self, m, cur):
        """Accept a descriptor into ``cur`` and run it while ``DescriptorCheck`` decides.

        The run starts with the check, but no result leaves the engine before the verdict
        (``release`` low). A good verdict releases them; a bad one aborts the run: ``abort``
        is high for ``_drain`` cycles, resetting the address generator, the result queue and
        the credits while the taps in flight land, then ``busy`` falls with ``error`` high.
        Return a ``_Run`` of the control signals.
        """
        accept = self.desc.valid & self.desc.ready
        run = _Run(start=Signal(name="run_start"), cleared=Signal(name="run_cleared"),
                   release=Signal(name="run_release"), abort=Signal(name="run_abort"),
                   idle=Signal(name="run_idle", init=1))
        m.d.comb += run.release.eq(run.cleared)
        drain = Signal(range(self._drain + 1))
        m.submodules.check = check = self._check
        m.d.comb += [self.desc.ready.eq(~self.busy), check.desc.eq(cur),
                     check.start.eq(run.start)]
        m.d.sync += run.start.eq(accept)
        # ``cur`` follows the payload while idle and holds from acceptance on: its few hundred
        # flip-flops load on a register (``run.idle``, set and cleared with ``busy`` but a
        # register of its own), not on the handshake, and ``busy`` keeps few loads.
        with m.If(run.idle):
            m.d.sync += cur.eq(self.desc.payload)
        with m.FSM(name="descriptor"):
            with m.State("ACCEPT"):
                with m.If(accept):
                    m.d.sync += [self.busy.eq(1), run.idle.eq(0), self.error.eq(0),
                                 run.cleared.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(check.done & check.bad):
                    m.d.sync += drain.eq(self._drain)
                    m.next = "ABORT"
                with m.Elif(check.done):
                    m.d.sync += run.cleared.eq(1)
                    m.next = "ACCEPT"
            with m.State("ABORT"):
                m.d.comb += run.abort.eq(1)
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.sync += [self.busy.eq(0), run.idle.eq(1), self.error.eq(1)]
                    m.next = "ACCEPT"
        return run

    def _reads(self, m, tap, go, wu):
        """Request the buffer reads of the tap at the address generator's output."""
        m.d.comb += [self.act.addr.eq(tap.act_addr), self.act.r_en.eq(go),
                     self.wgt.addr.eq(tap.w_addr), self.wgt.r_en.eq(go & ~wu)]
        with m.If(wu):
            m.d.comb += [self.out.addr.eq(tap.out_addr), self.out.r_en.eq(go)]

    def _operands(self, m, platform, pe, l_valid, l_tap, cur, wu):
        """Route the read rows into the array: FP block, BP transposed block, WU dy x x."""
        t = self._cfg.tm
        # The mode selects of the T*T operand multiplexers (a thousand loads at T = 8) are
        # registered from the held descriptor and put on global networks (``hw.fanout``):
        # the descriptor's mode bit was the routed ULX3S build's critical path at 58 MHz,
        # 12.3 ns of routing. The first tap reaches these multiplexers three or more cycles
        # after the descriptor is accepted; the registers hold the mode from the second.
        wu_q, bp_q = Signal(), Signal()
        m.d.sync += [wu_q.eq(wu), bp_q.eq(cur.mode == MODES.index("bp"))]
        wu = broadcast(m, platform, wu_q, name="operand_wu")
        bp = broadcast(m, platform, bp_q, name="operand_bp")
        # Register the rows as they leave the block RAMs (their clock-to-out is slow), then
        # select and mask them into the multipliers' input registers.
        buffers = (Buffer.WGT, Buffer.ACT, Buffer.OUT)
        ports = tuple(getattr(self, b.port_name) for b in buffers)
        w_row, x_row, dy_row = (Signal.like(p.r_data, name=f"{b.port_name}_row")
                                for p, b in zip(ports, buffers))
        if self._cfg.pipeline == "deep":
            d_valid, d_tap = Signal(), Signal.like(l_tap)
            m.d.sync += [d_valid.eq(l_valid), d_tap.eq(l_tap)]
            m.d.sync += [r.eq(p.r_data) for r, p in zip((w_row, x_row, dy_row), ports)]
        else:   # a slow clock has the time for a block RAM's clock-to-out and the muxes
            d_valid, d_tap = l_valid, l_tap
            m.d.comb += [r.eq(p.r_data) for r, p in zip((w_row, x_row, dy_row), ports)]

        def lane(row, k):
            return row.word_select(k, LANE_BITS)

        for i in range(t):
            keep = i < d_tap.out_lanes
            for j in range(t):
                a = Mux(wu, lane(dy_row, i), Mux(bp, lane(w_row, j * t + i),
                                                 lane(w_row, i * t + j)))
                m.d.comb += pe.a[i * t + j].eq(Mux(keep, a, 0))
        # A cycle without a tap multiplies by zero: it adds nothing to the accumulators.
        use_b = d_valid & d_tap.inb
        for j in range(t):
            m.d.comb += pe.b[j].eq(Mux(use_b & (j < d_tap.red_lanes), lane(x_row, j), 0))
        m.d.comb += [pe.valid.eq(d_valid), pe.wu.eq(wu), pe.first.eq(d_tap.first),
                     pe.last.eq(d_tap.last), pe.side.eq(d_tap.as_value())]

    def _fp_results(self, m, pe, rq, addr_fifo, cur, wu, depth, run):
        """Queue FP/BP results, requantize them and write them to ``out``.

        Return the signal that is high when a result leaves the queue (returns a credit).
        """
        cfg, t = self._cfg, self._cfg.tm
        side = TapLayout(cfg)(pe.fp_side)
        # The element index only selects stochastic rounding's random words.
        index_bits = 32 if cfg.stochastic_rounding else 0
        entry = data.StructLayout({"acc": data.ArrayLayout(signed(cfg.acc_bits), t),
                                   "index": data.ArrayLayout(unsigned(index_bits), t),
                                   "out_addr": len(self.out.addr)})
        queue = fifo.SyncFIFOBuffered(width=entry.size, depth=depth)
        m.submodules.results = ResetInserter(run.abort)(queue)
        lane_off = [Signal(32, name=f"lane_off{i}") for i in range(t)]
        m.d.sync += [off.eq(cur.idx_off + times_constant(cur.idx_lane, i))
                     for i, off in enumerate(lane_off)]
        w_data, head = Signal(entry), entry(queue.r_data)
        m.d.comb += [w_data.acc.eq(pe.fp_acc), w_data.out_addr.eq(side.out_addr),
                     queue.w_data.eq(w_data), queue.w_en.eq(pe.fp_valid)]
        m.d.comb += [w_data.index[i].eq(side.idx + lane_off[i]) for i in range(t)]
        m.d.comb += [
            rq.i.valid.eq(queue.r_rdy & run.release), rq.i.payload.acc.eq(head.acc),
            rq.i.payload.index.eq(head.index), queue.r_en.eq(rq.i.ready & run.release),
            rq.shift.eq(cur.shift), rq.stochastic.eq(cur.stochastic), rq.key.eq(cur.key),
            rq.relu.eq(cur.relu), rq.o.ready.eq(self.out.ready),
            addr_fifo.w_en.eq(rq.i.valid & rq.i.ready), addr_fifo.w_data.eq(head.out_addr),
            addr_fifo.r_en.eq(rq.o.valid & rq.o.ready),
        ]
        with m.If(~wu):
            m.d.comb += [self.out.addr.eq(addr_fifo.r_data), self.out.w_en.eq(rq.o.valid),
                         self.out.w_data.eq(Cat(rq.o.payload.data.as_value(),
                                                rq.o.payload.mask.as_value()))]
        return rq.i.valid & rq.i.ready

    def _wu_results(self, m, pe, upd, update, run):
        """Offer each WU result, held in the array, on ``grad`` (UPDATE: to the updater).

        Return the signal that is high when the result is taken (returns the WU credit).
        """
        # Which consumer gets the results, decoded into a flip-flop of its own next to the
        # hand-over: the routed 8x8's critical path ran from the descriptor's mode register,
        # which feeds logic all over the die, through the offer into the updater's accept.
        # ``cur`` holds from acceptance, and the first result comes many cycles later.
        update_q = Signal()
        m.d.sync += update_q.eq(update)
        update = update_q
        held = Signal()
        grad_ready = Mux(update, upd.grad.ready, self.grad.ready)
        offered = held & run.release
        taken = offered & grad_ready
        with m.If(run.abort):
            m.d.sync += held.eq(0)
        with m.Elif(pe.wu_valid):
            m.d.sync += held.eq(1)
        with m.Elif(taken):
            m.d.sync += held.eq(0)
        wu_side = TapLayout(self._cfg)(pe.wu_side)
        for grad, valid in ((self.grad, offered & ~update), (upd.grad, offered & update)):
            m.d.comb += [grad.valid.eq(valid), grad.payload.acc.eq(pe.wu_acc),
                         grad.payload.addr.eq(wu_side.w_addr)]
        return taken

    def _finish(self, m, run, ag, issued, retired, updating):
        """Drop ``busy`` once the verdict was good and every reduction has left the engine."""
        pending = Signal(range(256))
        with m.If(run.abort):
            m.d.sync += pending.eq(0)
        with m.Else():
            m.d.sync += pending.eq(pending + issued - retired)
        idle = (run.cleared & ~run.start & ~ag.running & ~ag.tap_valid & (pending == 0) &
                ~updating)
        # Wait for the requantizer's statistics to include the last beat.
        settle = Signal(range(Requantizer.stats_delay + 2))
        with m.If(self.busy & idle):
            m.d.sync += settle.eq(settle + 1)
            with m.If(settle == Requantizer.stats_delay + 1):
                m.d.sync += [self.busy.eq(0), run.idle.eq(1), settle.eq(0)]
        with m.Else():
            m.d.sync += settle.eq(0)

    def _count(self, m, run, issue, tap, stalled, saturations, rq):
        """Busy, useful-MAC and stall counters; saturations and amax from the requantizer."""
        c = self.counters
        macs = Signal(2 * _bits(self._cfg.tm))
        m.d.sync += macs.eq(Mux(issue & tap.real, tap.out_lanes * tap.red_lanes, 0))
        m.d.comb += [c.saturations.eq(saturations), c.amax.eq(rq.amax),
                     rq.clear.eq(run.start)]
        # A refused descriptor leaves the counters cleared, as if nothing ran.
        with m.If((self.desc.valid & self.desc.ready) | run.abort):
            m.d.sync += [c.busy_cycles.eq(0), c.macs.eq(0), c.stall_cycles.eq(0)]
        with m.Elif(~run.idle):
            m.d.sync += [c.busy_cycles.eq(c.busy_cycles + 1), c.macs.eq(c.macs + macs),
                         c.stall_cycles.eq(c.stall_cycles + stalled)]
