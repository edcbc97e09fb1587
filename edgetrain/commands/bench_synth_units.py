"""``edgetrain bench synth-units``: ECP5 synthesis size of the update path and the
requantizer, one variant per area-knob setting."""

from pathlib import Path

from edgetrain.boards.bench.synth_units import COUNTS, bench_synth_units
from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json
from edgetrain.progress import print_table
from ._args import add_config, add_json

HELP = "Yosys synth_ecp5 size (LUT4, carry, LUT RAM, FFs, DSPs) of each unit variant"


def add_arguments(parser):
    add_config(parser, help="accelerator config TOML (tm, acc_bits)")
    parser.add_argument("--variants", metavar="NAME,...",
                        help="comma-separated subset (default: all)")
    parser.add_argument("-o", "--out", metavar="DIR", default="out/synth-units",
                        help="folder for each variant's netlist and log")
    add_json(parser)


def run(args):
    json_file = output_file(args.json)
    out = Path(args.out)

    def show(name, counts):
        log = out / name / "synth.log"
        print(f"{name}: {counts or f'yosys failed (log: {log})'}", flush=True)

    results = bench_synth_units(config=load_config(args.config),
                                names=args.variants.split(",") if args.variants else None,
                                out=out, on_variant=show)
    print_table([[n, *(r[k] if r else "failed" for k in COUNTS)] for n, r in results.items()],
                ["variant", *COUNTS])
    if json_file:
        write_json(json_file, results)
    return 0
