"""``edgetrain bench boards``: build every board's bitstream; time, resources and Fmax."""

from edgetrain.boards.bench.builds import bench_boards
from edgetrain.boards.platforms import BOARDS
from edgetrain.boards.report import worst_fmax_mhz
from edgetrain.progress import print_table
from ._args import name_list

HELP = "build each board's default bitstream and tabulate build time, resources and Fmax"


def add_arguments(parser):
    parser.add_argument("--boards", type=name_list(tuple(BOARDS), "board"),
                        default=tuple(BOARDS), help=f"comma-separated subset of "
                                                    f"{', '.join(BOARDS)} (default all)")
    parser.add_argument("-o", "--out", metavar="DIR", default="out/bench/boards",
                        help="folder of the builds and summary.json")


def _cells(resource):
    return f"{resource['used']}/{resource['total']}"


def run(args):
    summary = bench_boards(args.boards, out=args.out)
    rows = []
    for name, s in summary.items():
        r = s["resources"]
        engine = f"{s['engine']['tm']}x{s['engine']['tn']}" if s["engine"]["present"] else "none"
        rows.append((name, engine, s["build_seconds"], _cells(r["LUTs"]), _cells(r["FFs"]),
                     _cells(r["DSPs"]), _cells(r["BRAMs"]), worst_fmax_mhz(s),
                     s["target_mhz"]))
    print_table(rows, ["board", "engine", "build s", "LUTs", "FFs", "DSPs", "BRAMs",
                       "fmax MHz", "target MHz"])
    print(f"wrote {args.out}/summary.json")
    return 0
