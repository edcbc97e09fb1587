"""What puts the accelerator on a chip: only what is board-specific.

``platforms`` (the supported boards over amaranth-boards), ``clocking`` (the ECP5 PLL),
``spram`` (the iCE40UP5K's SPRAM as a buffer), ``top`` (``BoardTop``: clocking, the
``hw.link.DeviceCore``, pins, LEDs), ``build`` / ``report`` (bitstreams through YoWASP and
their ``report.json``), ``flash`` (programming), ``deploy`` (what ``edgetrain build`` does:
build, timing check, flash), ``unit_fmax`` (one unit placed and routed alone) and ``bench``
(the synthesis and place-and-route benchmarks).
"""
