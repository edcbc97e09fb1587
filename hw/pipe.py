"""Stall-together pipelines: registers that advance on one shared enable.

The arithmetic units (requantizer, SGD update, max-pool) are fixed-depth pipelines that carry
one beat per stage. All their stage registers advance together on one enable ``en``; a beat
moves one stage per enabled cycle. ``stream_pipeline`` derives ``en`` from the output stream:
the pipeline moves whenever its last stage is empty or being read, so it runs at one beat per
cycle while the consumer is ready and stalls as a whole (never dropping or repeating a beat)
while it is not.
"""

from amaranth.hdl import Signal

__all__ = ["stage", "delay", "stream_pipeline"]


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


def stream_pipeline(m, *, i, o, latency):
    """Drive the handshake of a ``latency``-stage pipeline from stream ``i`` to stream ``o``.

    Returns the stage enable. A beat accepted on ``i`` is presented on ``o`` exactly
    ``latency`` enabled cycles later; the caller computes ``o.payload`` from registers that
    advance on the returned enable. ``i.ready`` depends combinationally on ``o.ready``.
    """
    if not isinstance(latency, int) or latency < 1:
        raise ValueError(f"latency must be a positive integer, not {latency!r}")
    en = Signal(name="stage_en")
    valid = [Signal(name=f"stage{k + 1}_valid") for k in range(latency)]
    m.d.comb += [
        en.eq(~valid[-1] | o.ready),
        i.ready.eq(en),
        o.valid.eq(valid[-1]),
    ]
    with m.If(en):
        m.d.sync += valid[0].eq(i.valid)
        m.d.sync += [after.eq(before) for before, after in zip(valid, valid[1:])]
    return en
