"""Benchmark: ECP5 synthesis size of the update path and the requantizer, per area knob.

Each variant (a unit built for the config's ``tm``/``acc_bits`` with the area knobs set as
named) is the top module of its own Yosys run (``synth_ecp5``, no place and route: the
figures are what synthesis maps, not what a full build packs): LUT4, carry (CCU2C), LUT RAM
(DPR16X4), "comb" = LUT4 + 2 CCU2C + 2 DPR16X4 (the TRELLIS_COMB slices nextpnr would
count), flip-flops and DSPs (MULT18X18D). Yosys comes from ``YOSYS`` (default: the YoWASP
wheel in this venv).
"""

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

from amaranth.back import rtlil

from edgetrain.errors import ConfigError
from edgetrain.hw.engine.conv import GradLayout
from edgetrain.hw.engine.requant import Requantizer
from edgetrain.hw.engine.sgd import SGDUpdate
from edgetrain.hw.engine.updater import WeightUpdater
from edgetrain.outputs import output_dir, write_text
from ..build import tool_command, tool_environment

__all__ = ["variants", "synthesize", "bench_synth_units", "COUNTS"]

#: The figures of each variant, in table order.
COUNTS = ("LUT4", "CCU2C", "DPR16X4", "comb", "FFs", "DSPs", "synth_s")


def _updater(cfg, lanes, stochastic=True):
    cfg = cfg.replace(update_lanes=lanes, stochastic_rounding=stochastic)
    return lambda: WeightUpdater(config=cfg, grad_layout=GradLayout(cfg))


def variants(cfg):
    """Return ``{name: factory}`` of every measurable variant for ``cfg``."""
    t, acc = cfg.tm, cfg.acc_bits
    return {
        f"requantizer-{t}": lambda: Requantizer(lanes=t, acc_bits=acc),
        f"requantizer-{t}-nearest": lambda: Requantizer(lanes=t, acc_bits=acc,
                                                         stochastic=False),
        "sgd-1": lambda: SGDUpdate(lanes=1, acc_bits=acc),
        "sgd-1-nearest": lambda: SGDUpdate(lanes=1, acc_bits=acc, stochastic=False),
        "updater-L0": _updater(cfg, 0),
        "updater-L1": _updater(cfg, 1),
        "updater-L1-nearest": _updater(cfg, 1, False),
        "updater-L2": _updater(cfg, 2),
        f"updater-L{t}": _updater(cfg, t),
    }


def _yosys():
    return tool_command(["yosys"], tool_environment())[0]


def synthesize(unit, out_dir):
    """Run ``synth_ecp5`` on ``unit`` as the top module; return its cell counts (None if
    Yosys failed: its ABC9 step sometimes dies under YoWASP on the larger variants; the log
    is ``out_dir/synth.log``)."""
    out_dir = output_dir(out_dir)
    write_text(out_dir / "top.il", rtlil.convert(unit, name="top"))
    t0 = time.monotonic()
    with open(out_dir / "synth.log", "w") as log:
        proc = subprocess.run([_yosys(), "-q", "-p",
                               "read_rtlil top.il; synth_ecp5 -top top -json top.json"],
                              cwd=out_dir, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        return None
    cells = Counter(c["type"] for c in
                    json.loads((out_dir / "top.json").read_text())["modules"]["top"]
                    ["cells"].values())
    return {"LUT4": cells["LUT4"], "CCU2C": cells["CCU2C"], "DPR16X4": cells["TRELLIS_DPR16X4"],
            "comb": cells["LUT4"] + 2 * cells["CCU2C"] + 2 * cells["TRELLIS_DPR16X4"],
            "FFs": cells["TRELLIS_FF"], "DSPs": cells["MULT18X18D"],
            "synth_s": round(time.monotonic() - t0, 1)}


def bench_synth_units(*, config, names=None, out="out/synth-units", on_variant=None):
    """Synthesise the variants ``names`` (default all) into ``out/<variant>``; return
    ``{name: counts or None}``. ``on_variant(name, counts)`` follows each variant."""
    table = variants(config)
    names = list(table) if names is None else list(names)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ConfigError(f"unknown variant {unknown[0]!r}; choose from {', '.join(table)}")
    _yosys()                     # fail before the first variant
    results = {}
    for name in names:
        results[name] = synthesize(table[name](), Path(out) / name)
        if on_variant:
            on_variant(name, results[name])
    return results
