"""Layers larger than the buffers on the accelerator, tiled by ``firmware/tiling.py``, DRAM
to DRAM on both simulators (``sim/tb/tb_accel_tiled.py``): FP cut along channels, images and
rows, BP along channels and images, WU and UPDATE along channels and images (UPDATE's
last batch tile adds the others' sums from the other MST half); bit-exact against the
whole layer's golden model."""

import pytest

from edgetrain.sim.tb.accel_run import TILED_CONFIG, run_accel_tb
from edgetrain.sim.tb.runner import SIM_ROOT


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_tiled_layers(simulator):
    run_accel_tb(simulator, config=TILED_CONFIG, cases=10,
                 test_module="edgetrain.sim.tb.tb_accel_tiled",
                 build_dir=SIM_ROOT / "accel" / f"tiled-{simulator}")
