"""``edgetrain bench engine``: compute-phase PE utilization of FP, BP, WU and UPDATE."""

import sys
import time

from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json
from edgetrain.progress import print_table
from edgetrain.sim.bench.engine import bench_engine, layer_name
from ._args import add_build_dir, add_config, add_json, add_simulator

HELP = "measure the conv engine's PE utilization per mode (cocotb, golden-checked)"


def add_arguments(parser):
    add_simulator(parser, default="verilator")
    add_config(parser)
    add_json(parser)
    add_build_dir(parser)


def run(args):
    json_file = output_file(args.json)
    cfg = load_config(args.config)
    t0 = time.monotonic()
    try:
        doc = bench_engine(simulator=args.simulator, config=cfg, build_dir=args.build_dir)
    except AssertionError as e:
        print(f"edgetrain: the engine mismatched the golden model during the benchmark ({e}); "
              f"run `edgetrain sim engine` to investigate", file=sys.stderr)
        return 1
    peak = cfg.tm * cfg.tn
    print_table([[r["mode"], layer_name(r["layer"]), r["busy_cycles"], r["macs"],
                  r["stall_cycles"], f"{100 * r['macs'] / (peak * r['busy_cycles']):.2f}%"]
                 for r in doc["runs"]],
                ["mode", "layer", "cycles", "useful MACs", "stalls", "utilization"],
                title=f"conv engine {cfg.tm}x{cfg.tn} compute phase ({args.simulator}, "
                      f"{time.monotonic() - t0:.0f} s; every output checked against the "
                      f"golden model)")
    print("utilization: " + ", ".join(f"{m} {100 * u:.2f}%"
                                      for m, u in doc["utilization"].items()))
    if json_file:
        print(f"wrote {write_json(json_file, doc)}")
    return 0
