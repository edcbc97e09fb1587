"""Drive a stream-in, stream-out component in Amaranth's simulator (async testbench API).

``run_stream`` feeds beats into ``dut.i`` with random gaps, takes beats from ``dut.o`` with
random backpressure, records the cycle of every transfer and returns what came out. Unit
tests compare the result with the golden model (``sim/reference/units.py``).
"""

import random

from amaranth.sim import Simulator

__all__ = ["StreamRun", "run_stream"]


class StreamRun:
    """What ``run_stream`` observed: output beats, transfer cycles and final statistics."""

    def __init__(self):
        self.outputs, self.in_cycles, self.out_cycles, self.stats = [], [], [], {}
        self.stats_trace = {}  # cycle -> {name: value} just after that cycle's clock edge

    def stats_after_beats(self, name, delay):
        """Return, for each output beat, ``name`` read ``delay`` cycles after it left."""
        return [self.stats_trace[c + delay][name] for c in self.out_cycles]


def run_stream(dut, beats, *, apply, collect, stats=(), p_valid=1.0, p_ready=1.0, seed=0,
               before=None, vcd=None):
    """Simulate ``dut`` on ``beats``; return a ``StreamRun``.

    ``apply(ctx, beat)`` drives one beat's payload and side inputs; ``collect(payload)``
    turns a sampled ``o.payload`` into a dict. ``p_valid``/``p_ready`` are the chances per
    cycle that the producer offers a beat / the consumer takes one. ``stats`` names output
    ports read once every beat is out and the pipeline has settled. ``before(ctx)`` runs
    first (e.g. to pulse a clear).
    """
    run = StreamRun()
    rnd = random.Random(seed)
    settle = getattr(dut, "stats_delay", 0) + 1
    cycle = [0]

    async def clock(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    async def producer(ctx):
        if before is not None:
            await before(ctx)
        for beat in beats:
            while rnd.random() >= p_valid:
                await ctx.tick()
            apply(ctx, beat)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            run.in_cycles.append(cycle[0])
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(run.outputs) < len(beats):
            ready = rnd.random() < p_ready
            ctx.set(dut.o.ready, ready)
            _, _, payload, valid = await ctx.tick().sample(dut.o.payload, dut.o.valid)
            if valid and ready:
                run.outputs.append(collect(payload))
                run.out_cycles.append(cycle[0])
            run.stats_trace[cycle[0]] = {name: ctx.get(getattr(dut, name)) for name in stats}
        ctx.set(dut.o.ready, 0)
        for _ in range(settle):
            await ctx.tick()
            run.stats_trace[cycle[0]] = {name: ctx.get(getattr(dut, name)) for name in stats}
        run.stats = run.stats_trace[cycle[0]]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(clock)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return run
