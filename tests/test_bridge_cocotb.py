"""The device core (UART, bridge, registers, memory map, conv engine) on Icarus and Verilator,
driven by the host client through cocotbext-uart, including corrupted and truncated frames."""

import pytest

from edgetrain.sim.tb.bridge_run import BRIDGE_TESTS, ENGINE_TESTS, run_bridge_tb


def check(results, tests):
    assert sorted(name for name, _, _ in results) == sorted(tests)
    assert all(passed for _, passed, _ in results), results


def test_bridge_and_engine_icarus():
    check(run_bridge_tb("icarus", testcase=BRIDGE_TESTS + ENGINE_TESTS),
          BRIDGE_TESTS + ENGINE_TESTS)


def test_bridge_verilator():
    check(run_bridge_tb("verilator", testcase=BRIDGE_TESTS), BRIDGE_TESTS)


@pytest.mark.slow
def test_engine_through_bridge_verilator():
    check(run_bridge_tb("verilator", testcase=ENGINE_TESTS), ENGINE_TESTS)
