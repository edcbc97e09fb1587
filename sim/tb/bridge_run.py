"""Run the bridge testbench (``sim/tb/tb_bridge.py``) on the device core: pytest and the CLI.

``BRIDGE_CONFIG`` is the small 2x2 engine the simulated device carries (the ULX3S top uses
8x8); the UART runs at 4 clock cycles per bit (the fastest ``UartRx`` allows).
"""

import xml.etree.ElementTree as ElementTree

from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.link.device import DeviceCore
from .runner import SIM_ROOT, run_cocotb

__all__ = ["BRIDGE_CONFIG", "BRIDGE_TESTS", "ENGINE_TESTS", "bridge_params", "run_bridge_tb"]

BRIDGE_TESTS = ["registers_memory_start", "bad_frames", "memory_regions"]
ENGINE_TESTS = ["engine_through_bridge"]

BRIDGE_CONFIG = AcceleratorConfig(tm=2, tn=2, max_kernel=3, max_channels=4, max_size=8,
                                  max_batch=2, input_depth=128, weight_depth=64,
                                  output_depth=128)


def bridge_params(*, seed=5, config=BRIDGE_CONFIG):
    return {"divisor": 4, "dram_depth": 256, "max_words": 16, "timeout_cycles": 4 * 10 * 8,
            "seed": seed, "config": config.to_dict() if config else None}


def run_bridge_tb(simulator, *, seed=5, waves=False, build_dir=None, testcase=None):
    """Build the device core, run the bridge tests (``testcase``: a name or list; default
    all); return ``[(test, passed, simulated ns)]``."""
    p = bridge_params(seed=seed)
    core = DeviceCore(config=BRIDGE_CONFIG, divisor=p["divisor"], dram_depth=p["dram_depth"],
                      max_words=p["max_words"], timeout_cycles=p["timeout_cycles"],
                      heartbeat_bits=8)
    build_dir = build_dir or SIM_ROOT / "boards" / f"bridge_{simulator}{'_waves' * waves}"
    results = run_cocotb(component=core, toplevel="device_core",
                         test_module="edgetrain.sim.tb.tb_bridge", simulator=simulator,
                         build_dir=build_dir, params=p, waves=waves, testcase=testcase,
                         fast_compile=True)
    return [(case.get("name"), case.find("failure") is None, _sim_ns(case))
            for case in ElementTree.parse(results).iter("testcase")]


def _sim_ns(case):
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    return float(props.get("sim_time_duration", 0))
