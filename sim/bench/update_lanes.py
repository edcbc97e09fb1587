"""Benchmark: UPDATE-mode utilization of the engine for several ``update_lanes`` settings.

The engine is built once per setting (the configuration otherwise unchanged) and runs the
three tiles of ``engine.SHAPES`` in UPDATE mode, every master weight and velocity checked
against the golden model. A block costs ``2 * T*T / L`` master-port cycles, so tiles whose
per-block reduction (``N * Ho * Wo``) is shorter stall the array.
"""

import time

from edgetrain.sim.tb.engine_run import run_engine_tb
from edgetrain.sim.tb.runner import SIM_ROOT, check_simulator
from .engine import SHAPES, utilization

__all__ = ["bench_update_lanes"]


def bench_update_lanes(lanes, *, simulator, config, on_setting=None):
    """Return ``{L: {"utilization", "runs", "seconds"}}`` for each ``update_lanes`` L.

    ``on_setting(L, figures)`` follows each setting. Raises ``AssertionError`` naming the
    setting if the engine mismatches the golden model.
    """
    check_simulator(simulator)
    summary = {}
    for lane_count in lanes:
        cfg = config.replace(update_lanes=lane_count)
        t0 = time.monotonic()
        try:
            runs = run_engine_tb(simulator, config=cfg,
                                 layers=[("update", s) for s in SHAPES], backpressure=False,
                                 build_dir=SIM_ROOT / "update_lanes" /
                                 f"bench-L{lane_count}-{simulator}")
        except AssertionError as e:
            raise AssertionError(f"mismatch with update_lanes {lane_count}: {e}") from None
        summary[lane_count] = {"utilization": utilization(runs, cfg), "runs": runs,
                               "seconds": round(time.monotonic() - t0, 1)}
        if on_setting:
            on_setting(lane_count, summary[lane_count])
    return summary
