"""WU and UPDATE conv layers through the accelerator top, DRAM to DRAM, on both simulators
(``sim/tb/tb_accel_update.py``): 10 random layers of each per simulator, bit-exact; the WU
accumulators reach DRAM through the grad writer and the MST bank."""

import pytest

from edgetrain.hw.accel.top import Accelerator
from edgetrain.sim.tb.accel_run import ACCEL_CONFIG
from edgetrain.sim.tb.runner import SIM_ROOT, run_cocotb


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_accelerator_runs_wu_and_update_layers(simulator):
    assert ACCEL_CONFIG.update_lanes == 1
    run_cocotb(component=Accelerator(config=ACCEL_CONFIG), toplevel="accelerator",
               test_module="edgetrain.sim.tb.tb_accel_update", simulator=simulator,
               build_dir=SIM_ROOT / "accel_update" / f"default-{simulator}",
               params={"config": ACCEL_CONFIG.to_dict(), "seed": 1, "cases": 10,
                       "axi_pause": 0.2},
               fast_compile=True)
