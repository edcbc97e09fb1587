"""``edgetrain build``: synthesise, place, route and pack a board's bitstream, with a report."""

import argparse
from pathlib import Path

from edgetrain.boards.build import build_bitstream
from edgetrain.boards.flash import flash_bitstream
from edgetrain.boards.platforms import BOARDS, get_board
from edgetrain.boards.report import print_report, worst_fmax_mhz
from edgetrain.boards.top import board_config
from edgetrain.errors import ToolError
from edgetrain.hw.config import load_config

HELP = "build a board bitstream (YoWASP Yosys + nextpnr + pack) and DIR/report.json"


def add_arguments(parser):
    parser.add_argument("--board", required=True, choices=sorted(BOARDS),
                        help="target board")
    parser.add_argument("--config", metavar="FILE",
                        help="accelerator config TOML (default: the board's own sizing)")
    parser.add_argument("-o", "--out", metavar="DIR",
                        help="output folder (default: out/<board>)")
    parser.add_argument("--clock-mhz", type=int, metavar="MHZ",
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


def run(args):
    board = get_board(args.board)
    config = load_config(args.config) if args.config else board.default_config()
    board_config(board, config)
    out = Path(args.out or f"out/{board.name}")
    report = build_bitstream(board=board, config=config, out_dir=out,
                             nextpnr_opts=args.nextpnr_opts,
                             engine=board.engine if args.engine is None else args.engine,
                             from_stage=args.from_stage, sync_mhz=args.clock_mhz)
    print_report(report)
    print(f"wrote {out / board.bitstream} and {out / 'report.json'}")
    if not report["timing_met"]:
        worst = worst_fmax_mhz(report)
        raise ToolError(f"timing failed: the logic reaches {worst:.1f} MHz, not the "
                        f"{report['target_mhz']} MHz clock, so {out / board.bitstream} may "
                        f"compute wrong results: rebuild with a --clock-mhz below "
                        f"{worst:.0f} (one of {', '.join(map(str, board.clocks_mhz))})")
    if args.flash:
        digest = flash_bitstream(board, out / board.bitstream)
        print(f"programmed {board.name} with {out / board.bitstream} (sha256 {digest[:16]})")
