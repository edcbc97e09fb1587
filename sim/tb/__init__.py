"""cocotb testbenches (``tb_*``), their runners (``*_run``, ``runner``) and test harnesses.

``runner.run_cocotb`` writes a component's Verilog and runs one testbench module on Icarus
or Verilator in its own build folder. Import from the modules (the testbench modules import
cocotb and run only inside a simulator).
"""
