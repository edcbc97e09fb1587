"""The channel-parallel conv engine: one Tm x Tn MAC array for FP, BP and WU.

``ConvEngine`` runs one layer (tile) per descriptor accepted on ``desc`` (see
``engine_desc``) against three buffers reached through ``MemoryPortSignature`` ports, so any
buffer with that port (``SRAMBuffer``, the eDRAM-style buffer) can sit behind it:

* ``act``: FP/WU read x, BP reads dy (T int16 lanes per row);
* ``wgt``: FP/BP read T x T weight blocks (BP swaps the block's roles on the way in);
* ``out``: FP/BP write requantized rows (T int16 lanes, then T ReLU-mask bits), WU reads dy;
* ``mst``: UPDATE reads and writes master weights and velocities (``engine_update``).

FP/BP results go through the ``Requantizer`` (shift, nearest or stochastic rounding with the
counter-based generator, saturation, ReLU and its mask) into ``out``. WU results (the exact
batch-summed weight-gradient accumulators of one T x T block, lane ``i * T + j`` for output
channel ``i`` and input channel ``j``) leave on the ``grad`` stream with the block's weight-row
address; in UPDATE they go through ``WeightUpdater`` (SGD with momentum) into ``mst`` instead.
Max-pool is not in the engine: it is the post-processing unit of ``hw/pool.py``.

Data path: address generator (4 stages) -> buffer read (1) -> row register (1) -> PE array
(operands, products, adder tree, accumulator) -> requantizer -> write.
Nothing waits between reductions: the next pixel's first tap follows the last tap of the
previous one. A buffer that is not ready inserts a bubble (a stall cycle); a consumer that is
not ready (``grad``, ``out`` writes) stalls the whole pipeline.

Counters (cleared when a descriptor is accepted, valid once ``busy`` falls): ``busy_cycles``,
``macs`` (useful MACs: valid output lanes x valid input lanes of every kernel tap, padding
taps included as the standard MAC count does; BP's skipped dilation-zero taps excluded),
``stall_cycles``, ``saturations`` and ``amax`` (largest |accumulator| requantized).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from .addrgen import AddressGenerator, TapLayout
from .config import AcceleratorConfig
from .engine_desc import MODES, DescriptorLayout
from .engine_update import WeightUpdater, master_port_shape
from .memport import MemoryPortSignature
from .pe_array import PEArray
from .requant import Requantizer

__all__ = ["ConvEngine", "CounterLayout", "port_shapes"]


def _bits(v):
    return max(1, int(v).bit_length())


def port_shapes(cfg):
    """Return ``{buffer: (addr_bits, data_bits)}`` of the engine's three buffer ports."""
    t = cfg.tm
    return {"act": (_bits(cfg.input_depth - 1), 16 * t),
            "wgt": (_bits(cfg.weight_depth - 1), 16 * t * t),
            "out": (_bits(cfg.output_depth - 1), 17 * t),
            "mst": master_port_shape(cfg)}


def CounterLayout(cfg):
    return data.StructLayout({"busy_cycles": 32, "macs": 48, "stall_cycles": 32,
                              "saturations": 32, "amax": cfg.acc_bits})


def GradLayout(cfg):
    return data.StructLayout({"addr": _bits(cfg.weight_depth - 1),
                              "acc": data.ArrayLayout(signed(cfg.acc_bits), cfg.tm * cfg.tn)})


class ConvEngine(wiring.Component):
    """Run FP, BP and WU descriptors on a ``config.tm`` x ``config.tn`` MAC array.

    ``desc`` is ready while the engine is idle; a descriptor is accepted, ``busy`` rises the
    next cycle and falls when every result has been written (FP/BP) or accepted on ``grad``
    (WU); the counters are then final. Requires ``tm == tn`` (BP reads a stored T x T weight
    block with its rows and columns swapped). The buffer ports are used only while ``busy``.

    ``error`` rises the cycle after a malformed descriptor is accepted and stays high until the
    next one is: a zero batch, tile count, channel count, size or kernel; a batch, channel
    count, kernel or layer input side above the config's maximum; ``pad >= kernel``; a tile
    count other than ``ceil(ch / T)``; an output side other than ``(in + 2 pad - K) // s + 1``
    (BP: the same relation with the sides' roles swapped); or a run whose last row lies past
    the end of the act, out or weight buffer. Such a descriptor is not run: ``busy`` stays low
    and ``desc`` is ready again at once.
    """

    def __init__(self, *, config):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if config.tm != config.tn:
            raise ConfigError(f"the conv engine needs tm == tn (BP reads weight blocks "
                              f"transposed), not tm={config.tm}, tn={config.tn}")
        self._cfg = config
        ports = {name: Out(MemoryPortSignature(addr_bits=a, data_bits=d))
                 for name, (a, d) in port_shapes(config).items()}
        super().__init__({
            "desc": In(stream.Signature(DescriptorLayout(config))),
            **ports,
            "grad": Out(stream.Signature(GradLayout(config))),
            "busy": Out(1),
            "error": Out(1),
            "counters": Out(CounterLayout(config)),
        })

    @property
    def config(self):
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg, t = self._cfg, self._cfg.tm
        m.submodules.addrgen = ag = AddressGenerator(config=cfg)
        m.submodules.pe = pe = PEArray(tm=t, tn=t, acc_bits=cfg.acc_bits,
                                       side_bits=TapLayout(cfg).size)
        m.submodules.requant = rq = Requantizer(lanes=t, acc_bits=cfg.acc_bits)
        m.submodules.pending_addr = addr_fifo = fifo.SyncFIFO(
            width=len(self.out.addr), depth=rq.latency + 4)
        m.submodules.updater = upd = WeightUpdater(config=cfg, grad_layout=GradLayout(cfg))

        cur = Signal(DescriptorLayout(cfg))
        start = Signal()
        update = cur.mode == MODES.index("update")
        wu = (cur.mode == MODES.index("wu")) | update
        m.d.comb += [self.desc.ready.eq(~self.busy), ag.desc.eq(cur), ag.start.eq(start),
                     upd.desc.eq(cur), upd.start.eq(start)]
        accept, bad = self.desc.valid & self.desc.ready, self._malformed(self.desc.payload)
        m.d.sync += start.eq(accept & ~bad)
        with m.If(accept):
            m.d.sync += self.error.eq(bad)
        with m.If(accept & ~bad):
            m.d.sync += [cur.eq(self.desc.payload), self.busy.eq(1)]

        tap, tap_valid = ag.tap, ag.tap_valid
        ready_all = self.act.ready & Mux(wu, self.out.ready, self.wgt.ready)
        grad_ready = Mux(update, upd.grad.ready, self.grad.ready)
        back_stall = (pe.fp_valid & ~rq.i.ready) | (pe.wu_valid & ~grad_ready)
        en_back = ~back_stall
        issue = tap_valid & ready_all & en_back
        m.d.comb += [ag.en.eq(en_back & (~tap_valid | ready_all)), pe.en.eq(en_back)]

        l_valid, l_tap = Signal(), Signal.like(tap)
        with m.If(en_back):
            m.d.sync += [l_valid.eq(issue), l_tap.eq(tap)]
        self._reads(m, tap, tap_valid & en_back, wu)
        self._operands(m, pe, en_back, l_valid, l_tap, cur, wu)
        self._fp_results(m, pe, rq, addr_fifo, cur, wu)
        wu_side = TapLayout(cfg)(pe.wu_side)
        for grad, valid in ((self.grad, pe.wu_valid & ~update), (upd.grad, pe.wu_valid & update)):
            m.d.comb += [grad.valid.eq(valid), grad.payload.acc.eq(pe.wu_acc),
                         grad.payload.addr.eq(wu_side.w_addr)]
        wiring.connect(m, wiring.flipped(self.mst), upd.mst)
        retired = Mux(wu, pe.wu_valid & grad_ready, rq.o.valid & rq.o.ready)
        self._finish(m, start, ag, issue & tap.last, retired, upd.busy)
        saturations = Mux(update, upd.saturations, rq.saturations)
        self._count(m, start, issue, tap, ready_all, back_stall, saturations, rq)
        return m

    def _malformed(self, d):
        """Return high when descriptor ``d`` cannot run or would compute wrong results."""
        cfg, t = self._cfg, self._cfg.tm
        fields = ("batch", "out_tiles", "red_tiles", "out_ch", "red_ch", "out_h", "out_w",
                  "in_h", "in_w", "kernel")
        checks = [d[f] == 0 for f in fields]
        # tiles == ceil(ch / T)  <=>  (tiles - 1) * T < ch <= tiles * T
        checks += [(d[f"{s}_tiles"] * t < d[f"{s}_ch"]) |
                   (d[f"{s}_tiles"] * t >= d[f"{s}_ch"] + t) for s in ("out", "red")]
        checks += [d.kernel > cfg.max_kernel, d.pad >= d.kernel, d.batch > cfg.max_batch,
                   d.out_ch > cfg.max_channels, d.red_ch > cfg.max_channels]
        return Cat(*checks, *self._bad_geometry(d), *self._bad_extents(d)).any()

    def _bad_geometry(self, d):
        """Per axis: the layer's input side above ``max_size``, or a wrong output side."""
        bp = d.mode == MODES.index("bp")
        checks = []
        for out, inp in (("out_h", "in_h"), ("out_w", "in_w")):
            # BP runs the layer backwards: its out side is the layer's input, its in the output.
            side, result = Mux(bp, d[out], d[inp]), Mux(bp, d[inp], d[out])
            # (side + 2 pad - K) // s + 1 == (side + 2 pad + s - K) >> (s - 1), and is
            # negative, so never equal, when K exceeds the padded input.
            reach = (side + (d.pad << 1) + 1 + d.stride2 - d.kernel).as_signed() >> d.stride2
            checks += [side > self._cfg.max_size, reach != result]
        return checks

    def _bad_extents(self, d):
        """Per buffer: high when the run's last row (every loop at its end) is past the depth."""
        cfg = self._cfg
        act = (d.batch - 1) * d.act_n + (d.red_tiles - 1) * d.act_plane + d.in_h * d.in_w
        out = (d.batch - 1) * d.out_n + (d.out_tiles - 1) * d.out_plane + d.out_h * d.out_w
        wgt = (d.out_tiles - 1) * d.w_out + (d.red_tiles - 1) * d.w_red + d.kernel * d.kernel
        return [act > cfg.input_depth, out > cfg.output_depth, wgt > cfg.weight_depth]

    def _reads(self, m, tap, go, wu):
        """Issue the buffer reads of the tap at the address generator's output."""
        m.d.comb += [self.act.addr.eq(tap.act_addr), self.act.r_en.eq(go),
                     self.wgt.addr.eq(tap.w_addr), self.wgt.r_en.eq(go & ~wu)]
        with m.If(wu):
            m.d.comb += [self.out.addr.eq(tap.out_addr), self.out.r_en.eq(go)]

    def _operands(self, m, pe, en, l_valid, l_tap, cur, wu):
        """Route the read rows into the array: FP block, BP transposed block, WU dy x x."""
        t = self._cfg.tm
        bp = cur.mode == MODES.index("bp")
        # Register the rows as they leave the block RAMs (their clock-to-out is slow), then
        # select and mask them into the multipliers' input registers.
        ports = (self.wgt, self.act, self.out)
        w_row, x_row, dy_row = (Signal.like(p.r_data, name=f"{n}_row")
                                for p, n in zip(ports, ("wgt", "act", "out")))
        d_valid, d_tap = Signal(), Signal.like(l_tap)
        with m.If(en):
            m.d.sync += [d_valid.eq(l_valid), d_tap.eq(l_tap)]
            m.d.sync += [r.eq(p.r_data) for r, p in zip((w_row, x_row, dy_row), ports)]
        l_valid, l_tap = d_valid, d_tap

        def lane(row, k):
            return row[16 * k:16 * (k + 1)]

        for i in range(t):
            keep = i < l_tap.out_lanes
            for j in range(t):
                a = Mux(wu, lane(dy_row, i), Mux(bp, lane(w_row, j * t + i),
                                                 lane(w_row, i * t + j)))
                m.d.comb += pe.a[i * t + j].eq(Mux(keep, a, 0))
        for j in range(t):
            m.d.comb += pe.b[j].eq(Mux(l_tap.inb & (j < l_tap.red_lanes), lane(x_row, j), 0))
        m.d.comb += [pe.valid.eq(l_valid), pe.wu.eq(wu), pe.first.eq(l_tap.first),
                     pe.last.eq(l_tap.last), pe.side.eq(l_tap.as_value())]

    def _fp_results(self, m, pe, rq, addr_fifo, cur, wu):
        """Requantize FP/BP pixels and write them to ``out`` at their row addresses."""
        t = self._cfg.tm
        side = TapLayout(self._cfg)(pe.fp_side)
        lane_off = [Signal(32, name=f"lane_off{i}") for i in range(t)]
        m.d.sync += [off.eq(i * cur.out_plane) for i, off in enumerate(lane_off)]
        m.d.comb += [
            rq.i.valid.eq(pe.fp_valid), rq.i.payload.acc.eq(pe.fp_acc),
            rq.shift.eq(cur.shift), rq.stochastic.eq(cur.stochastic), rq.key.eq(cur.key),
            rq.relu.eq(cur.relu), rq.o.ready.eq(self.out.ready),
            addr_fifo.w_en.eq(rq.i.valid & rq.i.ready), addr_fifo.w_data.eq(side.out_addr),
            addr_fifo.r_en.eq(rq.o.valid & rq.o.ready),
        ]
        m.d.comb += [rq.i.payload.index[i].eq(side.idx + lane_off[i]) for i in range(t)]
        with m.If(~wu):
            m.d.comb += [self.out.addr.eq(addr_fifo.r_data), self.out.w_en.eq(rq.o.valid),
                         self.out.w_data.eq(Cat(rq.o.payload.data.as_value(),
                                                rq.o.payload.mask.as_value()))]

    def _finish(self, m, start, ag, issued, retired, updating):
        """Drop ``busy`` once every reduction issued has left the engine."""
        pending = Signal(range(256))
        m.d.sync += pending.eq(pending + issued - retired)
        idle = ~start & ~ag.running & ~ag.tap_valid & (pending == 0) & ~updating
        # Wait for the requantizer's statistics to include the last beat.
        settle = Signal(range(Requantizer.stats_delay + 2))
        with m.If(self.busy & idle):
            m.d.sync += settle.eq(settle + 1)
            with m.If(settle == Requantizer.stats_delay + 1):
                m.d.sync += [self.busy.eq(0), settle.eq(0)]
        with m.Else():
            m.d.sync += settle.eq(0)

    def _count(self, m, start, issue, tap, ready_all, back_stall, saturations, rq):
        """Busy, useful-MAC and stall counters; saturations and amax from the requantizer."""
        c = self.counters
        macs = Signal(2 * _bits(self._cfg.tm))
        m.d.sync += macs.eq(Mux(issue & tap.real, tap.out_lanes * tap.red_lanes, 0))
        stalled = back_stall | (self.act.r_en & ~ready_all)
        m.d.comb += [c.saturations.eq(saturations), c.amax.eq(rq.amax), rq.clear.eq(start)]
        with m.If(self.desc.valid & self.desc.ready):
            m.d.sync += [c.busy_cycles.eq(0), c.macs.eq(0), c.stall_cycles.eq(0)]
        with m.Elif(self.busy):
            m.d.sync += [c.busy_cycles.eq(c.busy_cycles + 1), c.macs.eq(c.macs + macs),
                         c.stall_cycles.eq(c.stall_cycles + stalled)]
