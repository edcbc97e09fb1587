"""Benchmark: eDRAM refreshes, stalls, violations and energy per refresh policy.

Each net's training-sample schedule (``reference.lifetime``) runs on the configured input
buffer twice: sequentially, and lifetime-aware (rows that would outlive the live policy's
threshold are spilled to DRAM and read back). The counts equal the RTL's on the same traces
(``tests/test_edram_schedule_slow.py``).
"""

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import get_net
from edgetrain.hw.buffers.edram import live_threshold
from edgetrain.sim.reference.lifetime import (
    CAMEL_CLOCK_MHZ,
    ArrayModel,
    analyse,
    energy,
    row_lifetimes,
    schedule_trace,
    training_schedule)

__all__ = ["SCHEDULES", "SPILL_MARGIN", "bench_refresh"]

#: Cycles the lifetime-aware schedule keeps below the live threshold, for timeline slack.
SPILL_MARGIN = 128
SCHEDULES = ("sequential", "lifetime_aware")


def bench_refresh(*, config, nets, params, on_schedule=None):
    """Return the figures (the JSON document) of ``nets`` under ``config``.

    ``params`` are the ``EnergyParams``; ``on_schedule(net, schedule)`` follows each of the
    ``2 * len(nets)`` schedules. Raises ``ConfigError`` if a net needs more rows than the
    input buffer has.
    """
    depth, banks = config.input_depth, config.edram_banks
    retention = config.retention_cycles
    array = ArrayModel(tm=config.tm, tn=config.tn)
    row_bits = config.tn * config.data_bits
    spill_after = live_threshold(depth // banks, retention) - SPILL_MARGIN
    doc = {"assumptions": {
        "array": f"{array.tm}x{array.tn}", "clock_mhz": CAMEL_CLOCK_MHZ,
        "retention_cycles": retention, "retention_us": retention / CAMEL_CLOCK_MHZ,
        "buffer_rows": depth, "banks": banks, "row_bits": row_bits,
        "spill_after_cycles": spill_after, "energy": vars(params)}, "nets": {}}
    for name in nets:
        plan = training_schedule(get_net(name), array)
        result = {}
        for schedule, spill in zip(SCHEDULES, (None, spill_after)):
            result[schedule] = _schedule_figures(name, plan, spill, config, params)
            if on_schedule:
                on_schedule(name, schedule)
        doc["nets"][name] = {**result["sequential"], "lifetime_aware": result["lifetime_aware"]}
    return doc


def _schedule_figures(name, plan, spill_after, config, params):
    """Return the counts of every policy, row lifetimes and reductions of one schedule."""
    depth, banks = config.input_depth, config.edram_banks
    retention, row_bits = config.retention_cycles, config.tn * config.data_bits
    trace, rows, spilled = schedule_trace(plan, spill_after=spill_after)
    if rows > depth:
        raise ConfigError(f"net {name!r} needs {rows} buffer rows but input_depth is "
                          f"{depth}; raise input_depth")
    counts = analyse(trace, depth=depth, banks=banks, retention_cycles=retention,
                     data_bits=row_bits)
    for c in counts.values():
        c["energy_nj"] = energy(c, accesses=c["accesses"], depth=depth, row_bits=row_bits,
                                dram_rows=2 * spilled, params=params)
    life = row_lifetimes(trace)
    periodic = counts["periodic"]["refreshes"]
    return {
        "rows_used": rows, "dram_rows": 2 * spilled, "accesses": len(trace),
        "lifetimes": {"rows": len(life.values), "max": life.max, "mean": round(life.mean, 1),
                      "at_least_retention": life.at_least(retention)},
        "policies": counts,
        "reduction_vs_periodic": {
            p: round(1 - c["refreshes"] / periodic, 4) if periodic else None
            for p, c in counts.items()},
    }
