"""Benchmark: compute-phase PE utilization of the conv engine per mode, in simulation.

Utilization is useful MACs / (Tm x Tn x busy cycles), over three tiles whose data is on
chip; every output is checked against the golden model.
"""

from edgetrain.hw.engine.descriptor import MODES, LayerShape, descriptor_fields
from edgetrain.sim.tb.engine_run import run_engine_tb
from edgetrain.sim.tb.runner import SIM_ROOT, check_simulator

__all__ = ["SHAPES", "bench_engine", "utilization", "layer_name"]

# Tiles whose data is on chip and whose reductions are longer than the pipeline: channel
# counts that fill the array (multiples of T = 8), stride 1 and 2, K = 1 and 3.
SHAPES = (
    {"n": 1, "c": 16, "h": 12, "w": 12, "m": 16, "k": 3, "stride": 1, "pad": 1},
    {"n": 2, "c": 16, "h": 14, "w": 14, "m": 8, "k": 3, "stride": 2, "pad": 1},
    {"n": 2, "c": 32, "h": 8, "w": 8, "m": 16, "k": 1, "stride": 1, "pad": 0},
)


def layer_name(layer):
    """Return a short name of a ``SHAPES``-style layer dict: ``n1 c16 12x12 m16 k3 s1 p1``."""
    return "n{n} c{c} {h}x{w} m{m} k{k} s{stride} p{pad}".format(**layer)


def utilization(runs, config):
    """Return useful MACs / (Tm x Tn x busy cycles) over the testbench's ``runs``."""
    return (sum(r["macs"] for r in runs) /
            (config.tm * config.tn * sum(r["busy_cycles"] for r in runs)))


def bench_engine(*, simulator, config, build_dir=None):
    """Run every mode on every tile of ``SHAPES``; return the figures.

    Raises ``ConfigError`` if a tile does not fit ``config``, ``AssertionError`` if the
    engine mismatches the golden model.
    """
    check_simulator(simulator)
    for shape in SHAPES:
        for mode in MODES:
            descriptor_fields(config, mode, LayerShape(**shape))   # fits this configuration?
    layers = [(mode, shape) for mode in MODES for shape in SHAPES]
    build = build_dir or SIM_ROOT / "engine" / f"bench-{simulator}-{config.tm}x{config.tn}"
    results = run_engine_tb(simulator, config=config, layers=layers, backpressure=False,
                            build_dir=build)
    util = {mode: utilization([r for r in results if r["mode"] == mode], config)
            for mode in MODES}
    return {"array": [config.tm, config.tn], "simulator": simulator, "utilization": util,
            "shapes": list(SHAPES), "runs": results, "config": config.to_dict()}
