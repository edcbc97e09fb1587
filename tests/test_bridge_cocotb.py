"""The device core (UART, bridge, registers, memory map, conv engine) on Icarus and Verilator,
driven by the host client through cocotbext-uart, including corrupted and truncated frames."""

import pytest

from edgetrain.sim.bridge_run import run_bridge_tb


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_bridge_cocotb(simulator):
    results = run_bridge_tb(simulator)
    assert len(results) == 4 and all(passed for _, passed, _ in results), results
