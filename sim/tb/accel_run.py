"""Run the accelerator's cocotb testbench (``tb_accel``) for pytest and the CLI."""

from pathlib import Path

from edgetrain.hw.accel.top import Accelerator
from edgetrain.hw.config import AcceleratorConfig
from .runner import SIM_ROOT, run_cocotb

__all__ = ["ACCEL_CONFIG", "TILED_CONFIG", "run_accel_tb"]

# A small accelerator: a 4x4 engine and shallow buffers, so that both simulators build it
# quickly, with every block of the default one.
ACCEL_CONFIG = AcceleratorConfig(tm=4, tn=4, max_kernel=3, max_channels=8, max_size=8,
                                 max_batch=2, input_depth=256, weight_depth=64,
                                 output_depth=256, refresh=("none", "none", "none"))

# Shallower buffers still, for the tiled layers of ``tb_accel_tiled``: one 8x8 image of 8
# channels fills two ACT halves (its rows are tiled), 8x8x3x3 weights need two WGT halves,
# and a batch of 4 several OUT halves.
TILED_CONFIG = ACCEL_CONFIG.replace(input_depth=128, output_depth=128, max_batch=4,
                                    acc_bits=0)


def run_accel_tb(simulator, *, config=ACCEL_CONFIG, seed=1, cases=4, axi_pause=0.2,
                 waves=False, build_dir=None, testcase=None,
                 test_module="edgetrain.sim.tb.tb_accel"):
    """Build the accelerator for ``simulator`` and run ``test_module`` (a ``tb_accel*``
    testbench); return the results XML.

    Raises ``AssertionError`` when a test fails."""
    build_dir = Path(build_dir or SIM_ROOT / "accel" / f"default-{simulator}")
    params = {"config": config.to_dict(), "seed": seed, "cases": cases,
              "axi_pause": axi_pause}
    return run_cocotb(component=Accelerator(config=config), toplevel="accelerator",
                      test_module=test_module, simulator=simulator,
                      build_dir=build_dir, params=params, waves=waves, testcase=testcase,
                      fast_compile=True)
