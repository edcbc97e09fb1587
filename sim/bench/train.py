"""Benchmark: the wall time of one epoch of golden training on digits, per variant."""

import time

from edgetrain.sim.golden.digits import load_digits_split
from edgetrain.sim.golden.train import TrainOptions, train

__all__ = ["VARIANTS", "GOAL_SECONDS", "bench_train"]

#: (net, rounding or None for float32, float32?) of each measured variant.
VARIANTS = (("digits-cnn", "stochastic", False), ("digits-cnn", "nearest", False),
            ("digits-cnn", None, True), ("digits-revnet", "stochastic", False),
            ("digits-revnet", None, True))
GOAL_SECONDS = 5.0


def bench_train(*, repeat=1, on_variant=None):
    """Train every variant of ``VARIANTS`` for ``repeat`` epochs; return the figures.

    The fastest epoch of each counts. ``on_variant(done, total)`` follows each variant.
    """
    data = load_digits_split()
    results = []
    for net, rounding, use_float in VARIANTS:
        opts = TrainOptions(net=net, epochs=repeat, rounding=rounding or "stochastic",
                            use_float=use_float)
        start = time.perf_counter()
        res = train(opts, data=data)
        total = time.perf_counter() - start
        epoch = min(r.seconds for r in res.history)
        steps = len(data.y_train) // opts.batch
        results.append({"net": net, "numerics": res.numerics + (f" {rounding}" if rounding
                                                                 else ""),
                        "epoch_seconds": epoch, "steps": steps,
                        "ms_per_step": 1000 * epoch / steps,
                        "total_seconds_with_setup_and_eval": total,
                        "within_goal": epoch < GOAL_SECONDS})
        if on_variant:
            on_variant(len(results), len(VARIANTS))
    return {"goal_seconds": GOAL_SECONDS, "batch": TrainOptions.batch,
            "train_samples": len(data.y_train), "results": results}
