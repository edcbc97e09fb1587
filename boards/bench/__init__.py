"""Synthesis and place-and-route benchmarks behind ``edgetrain bench``, through YoWASP.

- ``units``: each arithmetic unit placed and routed alone on an ECP5-85F (Fmax, resources).
- ``synth_units``: what Yosys maps the update path and the requantizer to, per area knob.
- ``synth_engine``: the conv engine (or one part of it) out of context on an ECP5-85F, with
  the routed critical path.
- ``builds``: each board's whole bitstream build (time, resources, Fmax).

Each function returns the figures (the JSON document the command writes) and leaves
printing to the command.
"""
