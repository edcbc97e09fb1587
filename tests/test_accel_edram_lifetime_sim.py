"""eDRAM-style ACT and OUT banks under the ``lifetime`` policy (no refresh) with decay
injection, in cocotb on both simulators (``sim/tb/tb_accel_units.py``
``test_lifetime_expiry``): a LOAD, COPY, STORE program is bit-exact when it uses its data at
once; delayed past the retention by six WGT loads, its output comes out corrupted and the
banks count violations. The test expects the corruption."""

import pytest

from edgetrain.sim.tb.accel_run import ACCEL_CONFIG, run_accel_tb
from edgetrain.sim.tb.runner import SIM_ROOT

# Longer than the prompt program (checked), shorter than six WGT loads.
LIFETIME = ACCEL_CONFIG.replace(refresh=("lifetime", "none", "lifetime"),
                                decay_injection=True, retention_cycles=400)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_lifetime_expiry_is_caught(simulator):
    run_accel_tb(simulator, config=LIFETIME, test_module="edgetrain.sim.tb.tb_accel_units",
                 build_dir=SIM_ROOT / "accel_units" / f"lifetime-{simulator}",
                 testcase="test_lifetime_expiry")
