"""What checks the hardware: the specification, reference models and testbenches.

- ``golden``: the golden model, which *is* the specification: the numerics contract,
  formats, exact conv accumulators, layers, the fixed-point and float nets, training on
  digits.
- ``reference``: models of what a block must do, cycle by cycle or transfer by transfer,
  built from the golden model and ``hw`` formulas: the engine's expected tiles, the
  eDRAM buffer's refresh and decay, the DMA's bursts and random transfers, the lifetime
  analysis of a training step, the arithmetic units' expected beats.
- ``tb``: cocotb testbenches and their runners (Icarus, Verilator), and the harnesses of
  Amaranth-simulator tests.
- ``bench``: the simulation benchmarks of ``edgetrain bench`` (training time, engine
  utilization, refresh, DMA).
"""
