"""The accelerator top in cocotb on both simulators, AxiRam as DRAM (``sim/tb/tb_accel.py``):
round trips through LOAD / ELTWISE COPY / STORE, random FP and BP conv layers DRAM to DRAM
(10 of each per simulator), and a bad program followed by a good one."""

import pytest

from edgetrain.sim.tb.accel_run import run_accel_tb


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_accelerator_runs_layers_and_recovers(simulator):
    run_accel_tb(simulator, cases=20)
