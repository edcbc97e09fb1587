"""eDRAM-style ACT and OUT banks in the accelerator's dataflow, DRAM to DRAM, in cocotb
(``sim/tb/tb_accel_units.py``): under the ``live`` policy with decay injection and a short
retention the pool and eltwise programs stay bit-exact, refresh, and see no violation
(``tests/test_accel_edram_lifetime_sim.py`` shows that expired data are caught), and a
tiled layer's COMPUTEs release the ACT rows they read, which ``live`` then stops refreshing. Icarus
simulates the refresh controllers slowly: it runs 2 cases of each, Verilator 10."""

import pytest

from edgetrain.sim.tb.accel_run import ACCEL_CONFIG, run_accel_tb
from edgetrain.sim.tb.runner import SIM_ROOT

# Live rows are refreshed once they are retention - 2 * 16 = 118 cycles old (16 rows per
# eDRAM bank in a half), well within every program.
LIVE = ACCEL_CONFIG.replace(refresh=("live", "none", "live"), decay_injection=True,
                            retention_cycles=150)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_live_refresh_keeps_units_exact(simulator):
    run_accel_tb(simulator, config=LIVE, cases=2 if simulator == "icarus" else 10,
                 test_module="edgetrain.sim.tb.tb_accel_units",
                 build_dir=SIM_ROOT / "accel_units" / f"live-{simulator}",
                 testcase=["test_pool", "test_coupling", "test_conv_coupling",
                           "test_relu_mask", "test_compute_release"])
