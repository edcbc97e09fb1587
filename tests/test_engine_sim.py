"""cocotb runs of the conv engine on Icarus and Verilator against the golden model."""

import pytest

from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine_top import ConvEngineTile
from edgetrain.sim.runner import SIM_ROOT, run_cocotb

# A small engine so that Icarus runs many shapes quickly; every limit is still exercised.
SMALL = AcceleratorConfig(tm=4, tn=4, max_kernel=5, max_channels=8, max_size=10,
                          max_batch=2, input_depth=512, weight_depth=128, output_depth=512)
LIMITS = {"max_cycles": 1500}


def run_engine(simulator, *, shapes, seed, modes=("fp", "bp", "wu"), tag="default",
               config=SMALL, limits=LIMITS, backpressure=True, results=None):
    params = {"config": config.to_dict(), "modes": list(modes), "shapes": shapes,
              "seed": seed, "limits": limits, "backpressure": backpressure,
              "results": str(results) if results else None}
    return run_cocotb(component=ConvEngineTile(config=config), toplevel="engine_tile",
                      test_module="edgetrain.sim.tb_engine", simulator=simulator,
                      build_dir=SIM_ROOT / "engine" / f"{tag}-{simulator}", params=params)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_engine_random_shapes(simulator):
    run_engine(simulator, shapes=20, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_engine_random_shapes_slow(simulator):
    run_engine(simulator, shapes=200, seed=1000, tag="slow",
               limits={"max_cycles": 4000})
