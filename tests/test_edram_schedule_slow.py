"""The digits-revnet training-sample schedule replayed on the RTL (Icarus), every policy.

The strongest evidence that ``bench refresh`` reports what the hardware counts: the same
trace, cycle for cycle, on a 512-row, 8-bank buffer; the testbench compares every read and
the refresh / stall / violation counters with ``EDRAMModel``. About 4 minutes.
"""

import pytest

from edgetrain.sim.tb.edram_run import run_edram_schedule_tb
from edgetrain.hw.config import REFRESH_POLICIES, AcceleratorConfig
from edgetrain.sim.tb.runner import SIM_ROOT


@pytest.mark.slow
def test_revnet_schedule_on_rtl_matches_model():
    config = AcceleratorConfig(input_depth=512, output_depth=512)
    outcomes = run_edram_schedule_tb(net="digits-revnet", config=config, policies=REFRESH_POLICIES,
                                simulator="icarus",
                                build_dir=SIM_ROOT / "edram" / "pytest-schedule-icarus")
    assert outcomes["live"].violations == outcomes["periodic"].violations == 0
    assert outcomes["lifetime"].violations > 0
    assert 0 < outcomes["live"].refreshes < outcomes["periodic"].refreshes / 4
