"""The eltwise unit: one lane-wise operation over runs of ``ACT`` / ``OUT`` buffer rows.

The ``ELTWISE`` descriptor (``eltwise_layout``; ``encode_eltwise`` on the host):

``op``    an ``EltwiseOp``;
``a``, ``b``, ``d``  the operands and the destination (``rowunit.operand_layout``: buffer,
          half, row of the run's first row);
``rows``  the length of the three runs.

Row ``i`` of ``d`` gets, lane by lane, from row ``i`` of ``a`` and of ``b`` (the value lanes
of an ``OUT`` row; an ``OUT`` row written gets mask bits ``value > 0``):

``ADD``, ``SUB``  ``a + b``, ``a - b`` wrapping at 16 bits (``numerics.wrap_add`` /
          ``wrap_sub``: the reversible coupling and its inverse);
``RELU_MASK``  ``a`` where ``b > 0``, else 0 (``layers.relu_backward`` with the mask
          ``b > 0``: ``b`` is the forward activation after ReLU, ``a`` its gradient);
``COPY``  ``a`` (``b`` is neither read nor checked).

Refused (``error``, nothing written): ``rows`` = 0; an operand (``b`` unless ``COPY``) in
``WGT`` or ``MST``; a run ending past its half. ``d`` may be ``a`` or ``b`` itself (in
place); a ``d`` run that overlaps a source run at another start is not supported.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from .rowunit import (Operand, RowPorts, RowReader, RowWriter, bank_port_signature,
                      check_config, count_bits, operand_fits, operand_layout, pack,
                      run_control)

__all__ = ["EltwiseOp", "eltwise_layout", "encode_eltwise", "EltwiseUnit"]


class EltwiseOp(enum.Enum, shape=2):
    """What the eltwise unit computes per lane (see the module docstring)."""
    ADD = 0
    SUB = 1
    RELU_MASK = 2
    COPY = 3


def eltwise_layout(cfg):
    """Return the ``StructLayout`` of an ``ELTWISE`` descriptor for configuration ``cfg``."""
    operand = operand_layout(cfg)
    return data.StructLayout({"op": EltwiseOp, "a": operand, "b": operand, "d": operand,
                              "rows": count_bits(cfg)})


def encode_eltwise(cfg, *, op, a, d, rows, b=None):
    """Return the ``ELTWISE`` descriptor (an integer) of ``d = op(a, b)`` over ``rows`` rows.

    ``a``, ``b`` and ``d`` are ``Operand`` s; ``b`` defaults to ``ACT`` half 0 row 0 (for
    ``COPY``). Raises ``ConfigError`` when a value does not fit its field; the unit itself
    refuses the rest (see the module docstring).
    """
    b = Operand(Buffer.ACT, 0, 0) if b is None else b
    return pack(eltwise_layout(cfg), {"op": op, "a": a, "b": b, "d": d, "rows": rows})


class EltwiseUnit(wiring.Component):
    """Run ``ELTWISE`` descriptors over the ``act`` and ``out`` bank ports.

    ``desc``, ``busy`` and ``error`` follow ``rowunit.run_control``: the verdict comes
    ``check_cycles`` cycles after acceptance. A good run reads ``a`` and ``b`` and writes
    ``d`` row by row, overlapping the accesses that use different ports; ``busy`` falls once
    ``d``'s last row is accepted by its bank. The bank ports are used only while ``busy``.
    """

    check_cycles = 1

    def __init__(self, *, config):
        self._cfg = check_config(config)
        super().__init__({
            "desc": In(stream.Signature(eltwise_layout(config))),
            "act": Out(bank_port_signature(config, Buffer.ACT)),
            "out": Out(bank_port_signature(config, Buffer.OUT)),
            "busy": Out(1),
            "error": Out(1),
        })

    @property
    def config(self):
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        cur = Signal(eltwise_layout(cfg))
        copy = cur.op == EltwiseOp.COPY
        m.submodules.read_a = ra = RowReader(config=cfg)
        m.submodules.read_b = rb = RowReader(config=cfg)
        m.submodules.write_d = wd = RowWriter(config=cfg)
        m.submodules.ports = ports = RowPorts(config=cfg, requesters=3)
        for i, unit in enumerate((wd, ra, rb)):     # writes first: they free the queues
            wiring.connect(m, unit.bank, ports.access[i])
        wiring.connect(m, wiring.flipped(self.act), ports.act)
        wiring.connect(m, wiring.flipped(self.out), ports.out)
        bad = ((cur.rows == 0) | ~operand_fits(cfg, cur.a, cur.rows) |
               ~operand_fits(cfg, cur.d, cur.rows) | ~copy & ~operand_fits(cfg, cur.b, cur.rows))
        start = run_control(m, self, cur=cur, check_cycles=self.check_cycles, bad=bad,
                            running=wd.busy)
        for unit, operand, rows in ((ra, cur.a, cur.rows), (rb, cur.b, Mux(copy, 0, cur.rows)),
                                    (wd, cur.d, cur.rows)):
            m.d.comb += [unit.start.eq(start), unit.walk.at.eq(operand),
                         unit.walk.count.eq(rows), unit.walk.window.eq(0)]
        self._datapath(m, cur.op, ra.o, rb.o, wd.i)
        return m

    def _datapath(self, m, op, a, b, d):
        """Join the rows of ``a`` and ``b`` (only ``a`` for ``COPY``), apply ``op`` lane by
        lane and queue the result rows for ``d``."""
        width = len(d.payload.as_value())
        m.submodules.results = results = fifo.SyncFIFO(width=width, depth=2)
        copy = op == EltwiseOp.COPY
        both = a.valid & (b.valid | copy)
        m.d.comb += [results.w_en.eq(both), a.ready.eq(both & results.w_rdy),
                     b.ready.eq(both & results.w_rdy & ~copy)]
        row = Signal(d.payload.shape())
        for x, y, z in zip(a.payload, b.payload, row):
            with m.Switch(op):
                with m.Case(EltwiseOp.ADD):
                    m.d.comb += z.eq(x + y)
                with m.Case(EltwiseOp.SUB):
                    m.d.comb += z.eq(x - y)
                with m.Case(EltwiseOp.RELU_MASK):
                    m.d.comb += z.eq(Mux(y > 0, x, 0))
                with m.Case(EltwiseOp.COPY):
                    m.d.comb += z.eq(x)
        m.d.comb += [results.w_data.eq(row), d.valid.eq(results.r_rdy),
                     d.payload.eq(results.r_data), results.r_en.eq(d.ready)]
