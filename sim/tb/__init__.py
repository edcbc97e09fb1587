"""cocotb testbenches (``tb_*``), their runners (``*_run``, ``runner``) and test harnesses.

``runner.run_cocotb`` writes a component's Verilog and runs one testbench module on Icarus
or Verilator in its own build folder. Import from the modules (the testbench modules import
cocotb and run only inside a simulator).
"""

import os as _os
import warnings as _warnings

# Inside a simulation started by ``runner.run_cocotb`` warnings are errors, as in pytest.
# cocotbext-axi/-uart still call cocotb 1.x APIs that cocotb 2 deprecates: their warnings are
# theirs to fix and are not turned into errors.
if _os.environ.get("EDGETRAIN_STRICT_WARNINGS") == "1":
    _warnings.filterwarnings("error")
    _warnings.filterwarnings("ignore", module=r"cocotbext\.")
