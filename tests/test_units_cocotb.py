"""The arithmetic units' generated Verilog on Icarus and Verilator (cocotb, sim/tb/tb_units.py)."""

import pytest

from edgetrain.errors import ConfigError
from edgetrain.sim.tb.runner import SIM_ROOT
from edgetrain.sim.tb.units_harness import simulate_units


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_units_verilog(simulator):
    simulate_units(simulator=simulator, beats=600, seed=1)


def test_too_few_beats_is_a_config_error():
    with pytest.raises(ConfigError, match="beats must be an integer >= 4, not 0"):
        simulate_units(simulator="icarus", beats=0, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_units_verilog_many_beats(simulator):
    simulate_units(simulator=simulator, beats=6000, seed=2,
                   build_dir=SIM_ROOT / "units" / f"{simulator}-slow")
