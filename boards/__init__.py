"""What puts the accelerator on a chip: only what is board-specific.

``platforms`` (the supported boards over amaranth-boards), ``clocking`` (the ECP5 PLL),
``spram`` (the iCE40UP5K's SPRAM as a buffer), ``top`` (``BoardTop``: clocking, the
``hw.link.DeviceCore``, pins, LEDs), ``build`` / ``report`` (bitstreams through YoWASP and
their ``report.json``), ``flash`` (programming), ``unit_fmax`` and ``bench_build`` (place and
route benchmarks).
"""
