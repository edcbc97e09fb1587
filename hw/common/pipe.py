"""Free-running pipelines behind a stream handshake: stages, delays and an output queue.

The arithmetic units (requantizer, SGD update, max-pool) are fixed-depth pipelines carrying
one beat per stage. ``StreamPipeline`` lets them run without a stall signal: their stages
advance every cycle (``en`` is constant 1, so no enable net fans out to every register), each
finished beat enters a small queue, and the input only accepts a beat while the queue is sure
to have room for it (a credit counter of beats in flight). Result: one beat per cycle while
the consumer is ready, no beat dropped or repeated when it is not, and no combinational path
from ``o.ready`` to ``i.ready``.

``stage`` and ``delay`` take the enable anyway, so the same code also builds stall-together
pipelines (``RoundShift`` is used that way).
"""

from amaranth.hdl import Cat, Const, Signal, unsigned
from amaranth.lib.fifo import SyncFIFO

__all__ = ["stage", "delay", "StreamPipeline"]


def stage(m, en, value, *, name):
    """Return a register of ``value``'s shape that loads ``value`` on each enabled cycle."""
    reg = Signal(value.shape(), name=name, reset_less=True)
    with m.If(en):
        m.d.sync += reg.eq(value)
    return reg


def delay(m, en, value, cycles, *, name):
    """Return ``value`` delayed by ``cycles`` enabled cycles (``value`` itself for 0)."""
    for k in range(cycles):
        value = stage(m, en, value, name=f"{name}_d{k + 1}")
    return value


class StreamPipeline:
    """The handshake of a ``stages``-deep free-running pipeline from stream ``i`` to ``o``.

    The caller computes, from registers that load every cycle, ``result`` (``o``'s payload)
    and optionally ``extra`` (any side data of shape ``extra_shape``) exactly ``stages``
    cycles after the beat was accepted on ``i``. Both go through the queue; the beat is
    presented on ``o`` ``stages + QUEUE_LATENCY`` cycles after acceptance at the earliest, and
    ``extra_out`` holds its ``extra`` while it is on ``o``. ``left`` is high in the cycle a beat
    is transferred on ``o``.
    """

    QUEUE_LATENCY = 1

    def __init__(self, m, *, i, o, stages, extra_shape=unsigned(0), name="pipe"):
        if not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages must be a positive integer, not {stages!r}")
        depth = stages + 2  # in flight + one being read: full throughput while o is ready
        self.en = Const(1)
        self.result = Signal(o.payload.shape(), name=f"{name}_result")
        self.extra = Signal(extra_shape, name=f"{name}_extra")
        valid = [Signal(name=f"{name}_stage{k + 1}_valid") for k in range(stages)]
        occupancy = Signal(range(depth + 1), name=f"{name}_occupancy")
        accepted = i.valid & i.ready
        self.left = o.valid & o.ready
        m.d.comb += i.ready.eq(occupancy < depth)
        m.d.sync += occupancy.eq(occupancy + accepted - self.left)
        m.d.sync += valid[0].eq(accepted)
        m.d.sync += [after.eq(before) for before, after in zip(valid, valid[1:])]
        width = len(self.result.as_value())
        m.submodules[f"{name}_queue"] = queue = SyncFIFO(
            width=width + len(self.extra), depth=depth)
        m.d.comb += [
            queue.w_en.eq(valid[-1]),
            queue.w_data.eq(Cat(self.result, self.extra)),
            o.valid.eq(queue.r_rdy),
            o.payload.eq(queue.r_data[:width]),
            queue.r_en.eq(o.ready),
        ]
        self.extra_out = queue.r_data[width:]
