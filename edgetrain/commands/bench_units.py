"""``edgetrain bench units``: Fmax and resources of the arithmetic units on an ECP5-85F."""

from edgetrain.boards.bench.units import UNITS, bench_units
from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json
from edgetrain.progress import Progress, print_table
from ._args import add_config, add_json, int_in, name_list, positive_float

HELP = "place and route each arithmetic unit alone on an ECP5-85F: Fmax, LUTs, FFs, DSPs"


def add_arguments(parser):
    parser.add_argument("--units", type=name_list(UNITS, "unit"), default=UNITS,
                        help=f"comma-separated subset of {', '.join(UNITS)}")
    parser.add_argument("--lanes", type=int_in(1, 64), default=None,
                        help="lanes of the requantizer and pooling units (default: the "
                             "config's tm); the update unit gets a quarter, at least 1")
    add_config(parser, help="accelerator config TOML (tm, acc_bits)")
    parser.add_argument("--target-mhz", type=positive_float, default=125.0,
                        help="clock constraint given to nextpnr")
    parser.add_argument("--out", metavar="DIR", default="out/bench-units",
                        help="folder for builds and logs")
    add_json(parser)


def run(args):
    json_file = output_file(args.json)
    cfg = load_config(args.config)
    with Progress(len(args.units), "bench units") as bar:
        doc = bench_units(args.units, config=cfg, lanes=args.lanes,
                          target_mhz=args.target_mhz, out=args.out,
                          on_unit=lambda name, r: bar.update(
                              postfix=f"{name}: {r['fmax_mhz']} MHz"))
    rows = [[n, r["lanes"], r["latency"], r["fmax_mhz"], r["LUTs"], r["FFs"], r["shell_FFs"],
             r["DSPs"], r["synth_s"], r["pnr_s"]] for n, r in doc["units"].items()]
    print_table(rows, ["unit", "lanes", "latency", "Fmax MHz", "LUTs", "FFs", "shell FFs",
                       "DSPs", "synth s", "pnr s"],
                title=f"ECP5-85F, acc_bits {cfg.acc_bits}, constraint {args.target_mhz} MHz "
                      f"(FFs include the shell's input chain)")
    if json_file:
        write_json(json_file, doc)
    return 0
