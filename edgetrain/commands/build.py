"""``edgetrain build``: synthesise, place, route and pack a board's bitstream, with a report."""

import argparse

from edgetrain.boards.deploy import build_board
from edgetrain.boards.platforms import BOARDS
from edgetrain.boards.report import print_report
from ._args import add_config, positive_int

HELP = "build a board bitstream (YoWASP Yosys + nextpnr + pack) and DIR/report.json"


def add_arguments(parser):
    parser.add_argument("--board", required=True, choices=sorted(BOARDS),
                        help="target board")
    add_config(parser, help="accelerator config TOML (default: the board's own sizing)")
    parser.add_argument("-o", "--out", metavar="DIR",
                        help="output folder (default: out/<board>)")
    parser.add_argument("--clock-mhz", type=positive_int, metavar="MHZ",
                        help="clock of the device logic (default: the board's; ulx3s-85f "
                             "takes 30-100 from its PLL, icebreaker only 12)")
    parser.add_argument("--nextpnr-opts", default="", metavar="OPTS",
                        help="extra nextpnr options, e.g. '--seed 3'")
    parser.add_argument("--engine", action=argparse.BooleanOptionalAction, default=None,
                        help="include the conv engine (default: the board's choice; "
                             "--no-engine builds the bridge, registers and memory only)")
    parser.add_argument("--from-stage", default="synth", choices=("synth", "pnr", "pack"),
                        help="rerun only from this stage on the design already in DIR")
    parser.add_argument("--flash", action="store_true",
                        help="program the board with the new bitstream")


def _print_built(built):
    print_report(built.report)
    print(f"wrote {built.bitstream} and {built.bitstream.parent / 'report.json'}")


def run(args):
    built = build_board(args.board, config_file=args.config, out_dir=args.out,
                        clock_mhz=args.clock_mhz, nextpnr_opts=args.nextpnr_opts,
                        engine=args.engine, from_stage=args.from_stage, flash=args.flash,
                        on_built=_print_built)
    if built.flashed:
        print(f"programmed {built.board.name} with {built.bitstream} "
              f"(sha256 {built.flashed[:16]})")
