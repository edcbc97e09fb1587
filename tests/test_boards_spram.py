"""The iCEBreaker's SPRAM "DRAM" behind the bridge, on Icarus with a behavioural SPRAM model."""

from pathlib import Path

from edgetrain.boards.spram import SPRAM_WORDS, SPRAMBuffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.link.device import DeviceCore
from edgetrain.sim.tb.bridge_run import bridge_params
from edgetrain.sim.tb.runner import SIM_ROOT, run_cocotb

MODEL = Path(__file__).parent / "models" / "SB_SPRAM256KA.v"


def test_spram_dram_through_bridge():
    banks = 2
    params = bridge_params(config=None) | {"dram_depth": banks * SPRAM_WORDS}
    core = DeviceCore(config=AcceleratorConfig(tm=2, tn=2), divisor=params["divisor"],
                      dram_depth=params["dram_depth"], dram=SPRAMBuffer(banks=banks),
                      engine=False, max_words=params["max_words"],
                      timeout_cycles=params["timeout_cycles"], heartbeat_bits=8)
    run_cocotb(component=core, toplevel="device_core", test_module="edgetrain.sim.tb.tb_bridge",
               simulator="icarus", build_dir=SIM_ROOT / "boards" / "spram_icarus",
               params=params, testcase=["registers_memory_start", "memory_regions"],
               extra_sources=[MODEL])
