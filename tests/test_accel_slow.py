"""The accelerator's slow regression (issue 15): every kind of case of the accelerator's
cocotb testbenches at least 200 times per simulator, DRAM to DRAM, bit-exact.

The default suite's testbenches, with seed 1000 where the default suite uses 1, so that no
default case is repeated:
``tb_accel`` FP (ReLU drawn per layer) and BP layers, which it alternates (400 layers), with
as many round trips and the bad program; ``tb_accel_update`` WU and UPDATE layers;
``tb_accel_units`` max-pool forward then backward, the coupling and its inverse (ELTWISE
ADD / SUB), ReLU-mask backward and the coupling with F from an FP COMPUTE, on SRAM banks
and on the ``live``-refreshed eDRAM banks of ``test_accel_edram_sim``; ``tb_accel_tiled``
layers larger than the buffers, per mode (FP, BP, WU, UPDATE; its ``cases`` are per mode).

Each test has its own build directory, ``SIM_ROOT / "accel_slow" / "<name>-<simulator>"``,
so ``make test-slow`` (``pytest -n 2 -m slow``) runs them in parallel.
``EDGETRAIN_SLOW_CASES`` (default 200) sets the cases per kind, e.g.
``EDGETRAIN_SLOW_CASES=5 pytest -m slow tests/test_accel_slow.py -k icarus`` for a quick try.
"""

import os
from typing import NamedTuple

import pytest

from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.tb.accel_run import ACCEL_CONFIG, TILED_CONFIG, run_accel_tb
from edgetrain.sim.tb.runner import SIM_ROOT
from test_accel_edram_sim import LIVE

SEED = 1000
CASES = int(os.environ.get("EDGETRAIN_SLOW_CASES", "200"))


class Run(NamedTuple):
    """One testbench run: its configuration, module and cocotb tests (``None``: all), and
    how many kinds take turns within its ``cases``."""
    config: AcceleratorConfig
    test_module: str
    testcase: object = None
    kinds: int = 1


UPDATE = "edgetrain.sim.tb.tb_accel_update"
UNITS, TILED = "edgetrain.sim.tb.tb_accel_units", "edgetrain.sim.tb.tb_accel_tiled"
# Shares of the suite that `-n 2` balances (at 200 cases on Icarus: 3 to 13 minutes each).
RUNS = {
    "fp-bp": Run(ACCEL_CONFIG, "edgetrain.sim.tb.tb_accel", kinds=2),
    "wu-update": Run(ACCEL_CONFIG, UPDATE),
    "units": Run(ACCEL_CONFIG, UNITS, ["test_pool", "test_coupling", "test_conv_coupling",
                                       "test_relu_mask"]),
    "live-pool-conv": Run(LIVE, UNITS, ["test_pool", "test_conv_coupling"]),
    "live-eltwise": Run(LIVE, UNITS, ["test_coupling", "test_relu_mask"]),
    "tiled-fp-bp": Run(TILED_CONFIG, TILED, ["test_tiled_fp", "test_tiled_bp"]),
    "tiled-wu-update": Run(TILED_CONFIG, TILED, ["test_tiled_wu", "test_tiled_update"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("name", list(RUNS))
def test_accelerator_slow(name, simulator):
    run = RUNS[name]
    run_accel_tb(simulator, config=run.config, seed=SEED, cases=run.kinds * CASES,
                 test_module=run.test_module, testcase=run.testcase,
                 build_dir=SIM_ROOT / "accel_slow" / f"{name}-{simulator}")
