"""The UART host bridge on Icarus and Verilator, driven by the host client (cocotbext-uart)."""

import pytest

from edgetrain.boards.core import DeviceCore
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.runner import SIM_ROOT, run_cocotb

PARAMS = {"divisor": 8, "mem_depth": 256, "max_words": 16, "timeout_cycles": 8 * 10 * 8,
          "seed": 5}


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_bridge_cocotb(simulator):
    core = DeviceCore(config=AcceleratorConfig(), divisor=PARAMS["divisor"],
                      mem_depth=PARAMS["mem_depth"], max_words=PARAMS["max_words"],
                      timeout_cycles=PARAMS["timeout_cycles"], heartbeat_bits=8)
    run_cocotb(component=core, toplevel="device_core", test_module="edgetrain.sim.tb_bridge",
               simulator=simulator, build_dir=SIM_ROOT / "boards" / f"bridge_{simulator}",
               params=PARAMS)
