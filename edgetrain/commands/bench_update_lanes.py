"""``edgetrain bench update-lanes``: UPDATE-mode utilization per ``update_lanes`` setting."""

import sys

from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json
from edgetrain.progress import print_table
from edgetrain.sim.bench.engine import layer_name
from edgetrain.sim.bench.update_lanes import bench_update_lanes
from ._args import add_config, add_json, add_simulator, non_negative_int

HELP = ("UPDATE-mode utilization of the engine for several update_lanes settings (cocotb, "
        "golden-checked)")


def _lane_list(text):
    return tuple(non_negative_int(x) for x in text.split(","))


def add_arguments(parser):
    parser.add_argument("--lanes", type=_lane_list, default=(1, 2, 8),
                        help="comma-separated update_lanes values (default 1,2,8)")
    add_simulator(parser, default="verilator")
    add_config(parser)
    add_json(parser)


def _print_setting(lanes, figures):
    print(f"update_lanes {lanes}: {100 * figures['utilization']:.2f}% "
          f"({figures['seconds']} s)", flush=True)


def run(args):
    json_file = output_file(args.json)
    base = load_config(args.config)
    try:
        summary = bench_update_lanes(args.lanes, simulator=args.simulator, config=base,
                                     on_setting=_print_setting)
    except AssertionError as e:
        print(f"edgetrain: {e}", file=sys.stderr)
        return 1
    peak = base.tm * base.tn
    print_table([[lanes, layer_name(r["layer"]), r["busy_cycles"], r["stall_cycles"],
                  f"{100 * r['macs'] / (peak * r['busy_cycles']):.2f}%"]
                 for lanes, figures in summary.items() for r in figures["runs"]],
                ["lanes", "tile", "cycles", "stalls", "utilization"],
                title=f"UPDATE mode, {base.tm}x{base.tn} engine ({args.simulator})")
    if json_file:
        print(f"wrote {write_json(json_file, summary)}")
    return 0
