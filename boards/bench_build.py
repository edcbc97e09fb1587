"""Benchmark: build each board's bitstream and record time, resources and Fmax.

    python -m edgetrain.boards.bench_build [--boards ulx3s-85f,icebreaker] [-o out/bench/boards]

Each board builds into ``OUT/<board>`` (with its report.json); ``OUT/summary.json`` collects
the figures and a table is printed. The ULX3S build takes minutes (routing dominates).
"""

import argparse
import sys
from pathlib import Path

from edgetrain.errors import EdgetrainError
from edgetrain.progress import print_table, write_json
from .build import build_bitstream
from .platforms import BOARDS, get_board


def bench(boards, out):
    summary = {}
    for name in boards:
        board = get_board(name)
        report = build_bitstream(board=board, config=board.default_config(),
                                 out_dir=Path(out) / name, engine=board.engine)
        summary[name] = {k: report[k] for k in ("device", "engine", "resources", "fmax_mhz",
                                                "target_mhz", "stage_seconds",
                                                "build_seconds")}
    write_json(Path(out) / "summary.json", summary)
    rows = []
    for name, s in summary.items():
        r = s["resources"]
        fmax = min(v["achieved"] for v in s["fmax_mhz"].values())
        engine = f"{s['engine']['tm']}x{s['engine']['tn']}" if s["engine"]["present"] else "none"
        rows.append((name, engine, s["build_seconds"],
                     f"{r['LUTs']['used']}/{r['LUTs']['total']}",
                     f"{r['FFs']['used']}/{r['FFs']['total']}",
                     f"{r['DSPs']['used']}/{r['DSPs']['total']}",
                     f"{r['BRAMs']['used']}/{r['BRAMs']['total']}", fmax, s["target_mhz"]))
    print_table(rows, ["board", "engine", "build s", "LUTs", "FFs", "DSPs", "BRAMs",
                       "fmax MHz", "target MHz"])
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default=",".join(BOARDS))
    parser.add_argument("-o", "--out", default="out/bench/boards")
    args = parser.parse_args(argv)
    try:
        bench([b for b in args.boards.split(",") if b], args.out)
    except EdgetrainError as e:
        print(f"bench_build: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
