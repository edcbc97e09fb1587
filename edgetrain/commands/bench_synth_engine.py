"""``edgetrain bench synth-engine``: ECP5-85F synthesis of the conv engine, out of context."""

from edgetrain.boards.bench.synth_engine import (BLOCKS, DSPS, RESOURCES, ROUTERS,
                                                  synth_engine)
from edgetrain.hw.config import load_config
from edgetrain.progress import print_table
from ._args import add_config, positive_float

HELP = ("place and route the conv engine (or one part) on an ECP5-85F out of context: "
        "resources, Fmax, critical path")


def add_arguments(parser):
    add_config(parser, help="accelerator config TOML (default: the 8x8 default)")
    parser.add_argument("--freq", type=positive_float, default=125.0,
                        help="target clock in MHz")
    parser.add_argument("-o", "--out", metavar="DIR", default="out/synth-engine",
                        help="output directory")
    parser.add_argument("--block", default="tile", choices=BLOCKS,
                        help="the engine tile, or one part alone: the PE array or the "
                             "master-weight buffer (to locate the critical path)")
    parser.add_argument("--router", default="router2", choices=ROUTERS,
                        help="nextpnr router: router2 finishes the 8x8 engine in minutes; "
                             "router1 is more timing-driven but takes hours on it")
    parser.add_argument("--dsp", default="instance", choices=DSPS,
                        help="multipliers: the PE array's MULT18X18D instances with their "
                             "input and output registers, or inferred by Yosys (fabric "
                             "registers)")
    parser.add_argument("--nextpnr-opts", default="", metavar="OPTS",
                        help="extra nextpnr-ecp5 arguments, one shell-quoted string")


def run(args):
    cfg = load_config(args.config)
    r = synth_engine(cfg, args.out, freq=args.freq, block=args.block, router=args.router,
                     dsp=args.dsp, nextpnr_opts=args.nextpnr_opts)
    rows = [[k, r[k]["used"], r[k]["available"]] for k in RESOURCES]
    rows.append(["Fmax (MHz)", r["fmax_mhz"], f"target {args.freq:g}"])
    print_table(rows, ["resource", "used", "available"],
                title=f"conv engine {cfg.tm}x{cfg.tn} ({args.block}) on ECP5-85F "
                      f"(out of context)")
    path = r["critical_path"]
    if path:
        print(f"critical path ({path['split']}):")
        for kind, delay, total, text in path["steps"]:
            print(f"  {kind:9} {delay:6.2f} {total:6.2f}  {text}")
    else:
        print("no routed critical path (routing did not finish)")
    print(f"report: {args.out}/report.json")
    return 0
