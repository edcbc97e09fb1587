"""Simulation benchmarks behind ``edgetrain bench``: each function returns the figures (the
JSON document the command writes) and leaves printing to the command.

- ``train``: wall time of one epoch of golden training per net and numerics.
- ``engine``: compute-phase PE utilization of the conv engine per mode (cocotb,
  golden-checked); ``update_lanes``: UPDATE-mode utilization per ``update_lanes``.
- ``refresh``: eDRAM refreshes, stalls, violations and energy per policy and schedule.
- ``dma``: DMA bursts and bus use, tile-contiguous vs naive layouts, model and RTL.
"""
