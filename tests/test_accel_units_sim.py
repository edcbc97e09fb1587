"""The accelerator's pool and eltwise units in cocotb on both simulators, DRAM to DRAM
(``sim/tb/tb_accel_units.py``): max-pool forward and backward, the reversible coupling and
its inverse (ELTWISE ADD / SUB; F LOADed or an FP COMPUTE with ReLU), ReLU-mask backward;
10 random cases of each per simulator, SRAM banks."""

import pytest

from edgetrain.sim.tb.accel_run import run_accel_tb
from edgetrain.sim.tb.runner import SIM_ROOT


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_accelerator_pool_and_eltwise(simulator):
    run_accel_tb(simulator, cases=10, test_module="edgetrain.sim.tb.tb_accel_units",
                 build_dir=SIM_ROOT / "accel_units" / f"sram-{simulator}",
                 testcase=["test_pool", "test_coupling", "test_conv_coupling",
                           "test_relu_mask"])
