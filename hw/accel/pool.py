"""The pool unit: 2x2 max-pooling (stride 2) and its backward pass over buffer rows.

The ``POOL`` descriptor (``pool_layout``; ``encode_pool`` on the host):

``mode``     a ``PoolMode``;
``src``, ``dst``, ``idx``  operands (``rowunit.operand_layout``: buffer, half, first row);
``planes``   ``N * ceil(C / T)``, the planes of ``T`` channels;
``h``, ``w``  the height and width of the forward pass's *input* (both even).

Rows are in the engine's activation order (``hw/engine/descriptor.py``): plane after
plane, each ``h x w`` (or ``h/2 x w/2``) rows in row-major order, channel ``c % T`` in
lane ``c % T``. Exactly ``sim/golden/pool.py``:

``FORWARD``   reads ``x`` (``planes * h * w`` rows) at ``src``; writes the window maxima
              ``y`` (``planes * h/2 * w/2`` rows) at ``dst`` and, in the same order at
              ``idx``, the first argmax of each window (0..3, row-major in the window) as
              an int16 lane value (``maxpool2x2``).
``BACKWARD``  reads ``dy`` (pooled size) at ``src`` and the argmax rows at ``idx`` (the low
              two bits of each lane); writes ``dx`` (full size) at ``dst``: each gradient at
              its window's argmax, 0 elsewhere (``maxpool2x2_backward``).

The arithmetic is ``hw/engine/pool.py``'s ``MaxPool2x2`` and ``PoolBackward``. ``OUT``
rows read give their value lanes; ``OUT`` rows written get mask bits ``value > 0``.
Refused (``error``, nothing written): ``planes``, ``h`` or ``w`` zero; ``h`` or ``w`` odd;
an operand in ``WGT`` or ``MST``; a run ending past its half. The three runs must not
overlap each other.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.common.pipe import delay
from edgetrain.hw.engine.pool import MaxPool2x2, PoolBackward
from .rowunit import (RowPorts, RowReader, RowWriter, bank_port_signature, check_config,
                      count_bits, lanes_layout, operand_fits, operand_layout, pack,
                      run_control, size_bits)

__all__ = ["PoolMode", "pool_layout", "encode_pool", "PoolUnit"]


class PoolMode(enum.Enum, shape=1):
    """The pass the pool unit runs (see the module docstring)."""
    FORWARD = 0
    BACKWARD = 1


def pool_layout(cfg):
    """Return the ``StructLayout`` of a ``POOL`` descriptor for configuration ``cfg``."""
    operand, side = operand_layout(cfg), size_bits(cfg)
    return data.StructLayout({"mode": PoolMode, "src": operand, "dst": operand,
                              "idx": operand, "planes": count_bits(cfg), "h": side, "w": side})


def encode_pool(cfg, *, mode, src, dst, idx, planes, h, w):
    """Return the ``POOL`` descriptor (an integer); ``src``, ``dst``, ``idx`` are
    ``Operand`` s. Raises ``ConfigError`` when a value does not fit its field; the unit
    itself refuses the rest (see the module docstring)."""
    return pack(pool_layout(cfg), {"mode": mode, "src": src, "dst": dst, "idx": idx,
                                   "planes": planes, "h": h, "w": w})


class PoolUnit(wiring.Component):
    """Run ``POOL`` descriptors over the ``act`` and ``out`` bank ports.

    ``desc``, ``busy`` and ``error`` follow ``rowunit.run_control``: the verdict comes
    ``check_cycles`` cycles after acceptance (the row count ``planes * h * w`` is computed
    by shift-and-add, one bit per cycle, so the check takes no multiplier block). A good run
    overlaps the accesses that use different ports; ``busy`` falls once the last row is
    accepted by its bank. The bank ports are used only while ``busy``.
    """

    def __init__(self, *, config):
        self._cfg = check_config(config)
        super().__init__({
            "desc": In(stream.Signature(pool_layout(config))),
            "act": Out(bank_port_signature(config, Buffer.ACT)),
            "out": Out(bank_port_signature(config, Buffer.OUT)),
            "busy": Out(1),
            "error": Out(1),
        })

    @property
    def config(self):
        return self._cfg

    @property
    def check_cycles(self):
        """Cycles from a descriptor's acceptance to the verdict (``busy`` falls then if it is
        refused): ``h * w``, then ``planes * (h * w)``, a bit per cycle, then the compares."""
        return size_bits(self._cfg) + count_bits(self._cfg) + 2

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        cur = Signal(pool_layout(cfg))
        m.submodules.read_src = rs = RowReader(config=cfg)
        m.submodules.read_idx = ri = RowReader(config=cfg)
        m.submodules.write_dst = wd = RowWriter(config=cfg)
        m.submodules.write_idx = wi = RowWriter(config=cfg)
        m.submodules.ports = ports = RowPorts(config=cfg, requesters=4)
        for i, unit in enumerate((wd, wi, rs, ri)):    # writes first: they free the queues
            wiring.connect(m, unit.bank, ports.access[i])
        wiring.connect(m, wiring.flipped(self.act), ports.act)
        wiring.connect(m, wiring.flipped(self.out), ports.out)
        full, pooled, bad = self._check(m, cur)
        start = run_control(m, self, cur=cur, check_cycles=self.check_cycles, bad=bad,
                            running=wd.busy | wi.busy)
        fwd = cur.mode == PoolMode.FORWARD
        walks = ((rs, cur.src, Mux(fwd, full, pooled), fwd),
                 (ri, cur.idx, Mux(fwd, 0, pooled), 0),
                 (wd, cur.dst, Mux(fwd, pooled, full), ~fwd),
                 (wi, cur.idx, Mux(fwd, pooled, 0), 0))
        for unit, operand, rows, window in walks:
            m.d.comb += [unit.start.eq(start), unit.walk.at.eq(operand),
                         unit.walk.count.eq(rows), unit.walk.window.eq(window),
                         unit.walk.width.eq(cur.w)]
        fwd_x, fwd_y, bwd_dy, bwd_dx = (stream.Signature(lanes_layout(cfg)).create(path=(n,))
                                        for n in ("fwd_x", "fwd_y", "bwd_dy", "bwd_dx"))
        m.d.comb += [fwd_x.valid.eq(rs.o.valid & fwd), bwd_dy.valid.eq(rs.o.valid & ~fwd),
                     fwd_x.payload.eq(rs.o.payload), bwd_dy.payload.eq(rs.o.payload),
                     rs.o.ready.eq(Mux(fwd, fwd_x.ready, bwd_dy.ready)),
                     wd.i.valid.eq(Mux(fwd, fwd_y.valid, bwd_dx.valid)),
                     wd.i.payload.eq(Mux(fwd, fwd_y.payload, bwd_dx.payload)),
                     fwd_y.ready.eq(fwd & wd.i.ready), bwd_dx.ready.eq(~fwd & wd.i.ready)]
        self._forward(m, fwd_x, fwd_y, wi.i)
        self._backward(m, bwd_dy, ri.o, bwd_dx)
        return m

    def _check(self, m, cur):
        """Return the full and pooled row counts and the verdict on ``cur``, valid
        ``check_cycles`` cycles after acceptance."""
        cfg, desc = self._cfg, self.desc.payload
        accept = self.desc.valid & self.desc.ready
        area = _serial_product(m, accept, desc.w, desc.h, name="area")
        area_done = delay(m, Const(1), accept, size_bits(cfg) + 1, name="area_done")
        full = _serial_product(m, area_done, area, cur.planes, name="full")
        pooled = full >> 2
        fwd = cur.mode == PoolMode.FORWARD
        bad = ((cur.planes == 0) | (cur.h == 0) | (cur.w == 0) | cur.h[0] | cur.w[0] |
               ~operand_fits(cfg, cur.src, Mux(fwd, full, pooled)) |
               ~operand_fits(cfg, cur.dst, Mux(fwd, pooled, full)) |
               ~operand_fits(cfg, cur.idx, pooled))
        return full, pooled, bad

    def _forward(self, m, x, y, idx):
        """Gather the rows of ``x`` (window walk order) into 2x2 windows for ``MaxPool2x2``;
        send each window's maxima to ``y`` and its argmax lanes to ``idx``."""
        m.submodules.maxpool = mp = MaxPool2x2(lanes=self._cfg.tm)
        k = Signal(2)
        held = [Signal(x.payload.shape(), name=f"window_row{j}") for j in range(3)]
        m.d.comb += [mp.i.valid.eq(x.valid & (k == 3)), x.ready.eq((k != 3) | mp.i.ready)]
        for n in range(self._cfg.tm):
            for j in range(4):
                m.d.comb += mp.i.payload.window[n][j].eq(held[j][n] if j < 3 else x.payload[n])
        with m.If(x.valid & x.ready):
            m.d.sync += k.eq(k + 1)
            for j in range(3):
                with m.If(k == j):
                    m.d.sync += held[j].eq(x.payload)
        # Each result leaves once both writers took it (in either order).
        y_sent, idx_sent = Signal(), Signal()
        m.d.comb += [y.valid.eq(mp.o.valid & ~y_sent), y.payload.eq(mp.o.payload.data),
                     idx.valid.eq(mp.o.valid & ~idx_sent),
                     mp.o.ready.eq((y_sent | y.ready) & (idx_sent | idx.ready))]
        m.d.comb += [idx.payload[n].eq(mp.o.payload.argmax[n]) for n in range(self._cfg.tm)]
        with m.If(mp.o.valid & mp.o.ready):
            m.d.sync += [y_sent.eq(0), idx_sent.eq(0)]
        with m.Else():
            with m.If(y.valid & y.ready):
                m.d.sync += y_sent.eq(1)
            with m.If(idx.valid & idx.ready):
                m.d.sync += idx_sent.eq(1)

    def _backward(self, m, dy, idx, dx):
        """Join the rows of ``dy`` and ``idx`` for ``PoolBackward``; send each window's
        four rows to ``dx`` in window order."""
        m.submodules.unpool = pb = PoolBackward(lanes=self._cfg.tm)
        both = dy.valid & idx.valid
        m.d.comb += [pb.i.valid.eq(both), pb.i.payload.grad.eq(dy.payload),
                     dy.ready.eq(both & pb.i.ready), idx.ready.eq(both & pb.i.ready)]
        m.d.comb += [pb.i.payload.argmax[n].eq(idx.payload[n][:2])
                     for n in range(self._cfg.tm)]
        k = Signal(2)
        m.d.comb += [dx.valid.eq(pb.o.valid), pb.o.ready.eq(dx.ready & (k == 3))]
        m.d.comb += [dx.payload[n].eq(pb.o.payload.window[n][k]) for n in range(self._cfg.tm)]
        with m.If(dx.valid & dx.ready):
            m.d.sync += k.eq(k + 1)


def _serial_product(m, load, a, b, *, name):
    """Return a register holding ``a * b`` from ``len(b)`` cycles after a cycle with ``load``
    high (``a`` and ``b`` sampled in that cycle) until the next ``load``: shift-and-add, one
    bit of ``b`` per cycle."""
    product = Signal(len(a) + len(b), name=name)
    addend, bits = Signal.like(product, name=f"{name}_addend"), Signal.like(b, name=f"{name}_bits")
    with m.If(load):
        m.d.sync += [product.eq(0), addend.eq(a), bits.eq(b)]
    with m.Else():
        m.d.sync += [addend.eq(addend << 1), bits.eq(bits >> 1)]
        with m.If(bits[0]):
            m.d.sync += product.eq(product + addend)
    return product
