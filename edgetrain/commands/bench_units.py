"""``edgetrain bench units``: Fmax and resources of the arithmetic units on an ECP5-85F."""

from edgetrain.errors import ConfigError
from edgetrain.hw.config import load_config
from edgetrain.progress import Progress, print_table, write_json

HELP = "place and route each arithmetic unit alone on an ECP5-85F: Fmax, LUTs, FFs, DSPs"
UNITS = ("requantizer", "update", "maxpool", "pool-backward")


def add_arguments(parser):
    parser.add_argument("--units", default=",".join(UNITS),
                        help=f"comma-separated subset of {', '.join(UNITS)}")
    parser.add_argument("--lanes", type=int, default=None,
                        help="lanes of the requantizer and pooling units (default: the "
                             "config's tm); the update unit gets a quarter, at least 1")
    parser.add_argument("--config", help="accelerator config TOML (tm, acc_bits)")
    parser.add_argument("--target-mhz", type=float, default=125.0,
                        help="clock constraint given to nextpnr")
    parser.add_argument("--out", default="out/bench-units", help="folder for builds and logs")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")


def _make(name, lanes, acc_bits):
    from edgetrain.hw.engine.pool import MaxPool2x2, PoolBackward
    from edgetrain.hw.engine.requant import Requantizer
    from edgetrain.hw.engine.sgd import SGDUpdate
    return {
        "requantizer": lambda: Requantizer(lanes=lanes, acc_bits=acc_bits),
        "update": lambda: SGDUpdate(lanes=max(1, lanes // 4), acc_bits=acc_bits),
        "maxpool": lambda: MaxPool2x2(lanes=lanes),
        "pool-backward": lambda: PoolBackward(lanes=lanes),
    }[name]()


def run(args):
    from edgetrain.boards.unit_fmax import measure_fmax
    cfg = load_config(args.config)
    lanes = cfg.tm if args.lanes is None else args.lanes
    names = [u.strip() for u in args.units.split(",") if u.strip()]
    for name in names:
        if name not in UNITS:
            raise ConfigError(f"unknown unit {name!r} in --units; choose from "
                              f"{', '.join(UNITS)}")
    if not 1 <= lanes <= 64:
        raise ConfigError(f"--lanes must be in 1..64, not {lanes}")
    if args.target_mhz <= 0:
        raise ConfigError(f"--target-mhz must be positive, not {args.target_mhz}")
    results = {}
    with Progress(len(names), "bench units") as progress:
        for name in names:
            unit = _make(name, lanes, cfg.acc_bits)
            results[name] = {"lanes": unit.lanes, "latency": unit.latency,
                             **measure_fmax(unit, out_dir=f"{args.out}/{name}",
                                            target_mhz=args.target_mhz)}
            progress.update(1, postfix=f"{name}: {results[name]['fmax_mhz']} MHz")
    rows = [[n, r["lanes"], r["latency"], r["fmax_mhz"], r["LUTs"], r["FFs"], r["shell_FFs"],
             r["DSPs"], r["synth_s"], r["pnr_s"]] for n, r in results.items()]
    print_table(rows, ["unit", "lanes", "latency", "Fmax MHz", "LUTs", "FFs", "shell FFs",
                       "DSPs", "synth s", "pnr s"],
                title=f"ECP5-85F, acc_bits {cfg.acc_bits}, constraint {args.target_mhz} MHz "
                      f"(FFs include the shell's input chain)")
    if args.json:
        write_json(args.json, {"device": "LFE5U-85F", "acc_bits": cfg.acc_bits,
                               "target_mhz": args.target_mhz, "units": results})
    return 0
