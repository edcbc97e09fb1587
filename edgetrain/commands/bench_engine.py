"""``edgetrain bench engine``: compute-phase PE utilization of FP, BP and WU in simulation."""

import sys
import time

from edgetrain.progress import print_table, write_json

HELP = "measure the conv engine's PE utilization per mode (cocotb, golden-checked)"

# Tiles whose data is on chip and whose reductions are longer than the pipeline: channel
# counts that fill the array (multiples of T = 8), stride 1 and 2, K = 1 and 3.
SHAPES = (
    {"n": 1, "c": 16, "h": 12, "w": 12, "m": 16, "k": 3, "stride": 1, "pad": 1},
    {"n": 2, "c": 16, "h": 14, "w": 14, "m": 8, "k": 3, "stride": 2, "pad": 1},
    {"n": 2, "c": 32, "h": 8, "w": 8, "m": 16, "k": 1, "stride": 1, "pad": 0},
)
MODES = ("fp", "bp", "wu", "update")


def add_arguments(parser):
    parser.add_argument("--simulator", default="verilator", choices=("icarus", "verilator"))
    parser.add_argument("--config", help="accelerator config TOML (default: built-in 8x8)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--build-dir", help="build directory (default sim_build/engine/...)")


def run(args):
    from edgetrain.hw.config import load_config
    from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields
    from edgetrain.sim.tb.engine_run import run_engine_tb
    from edgetrain.sim.tb.runner import SIM_ROOT, check_simulator

    check_simulator(args.simulator)
    cfg = load_config(args.config)
    for shape in SHAPES:
        for mode in MODES:
            descriptor_fields(cfg, mode, LayerShape(**shape))   # fits this configuration?
    layers = [(mode, shape) for mode in MODES for shape in SHAPES]
    build = args.build_dir or SIM_ROOT / "engine" / f"bench-{args.simulator}-{cfg.tm}x{cfg.tn}"
    t0 = time.monotonic()
    try:
        results = run_engine_tb(args.simulator, config=cfg, layers=layers,
                                backpressure=False, build_dir=build)
    except AssertionError as e:
        print(f"edgetrain: the engine mismatched the golden model during the benchmark ({e}); "
              f"run `edgetrain sim engine` to investigate", file=sys.stderr)
        return 1
    return _report(cfg, results, time.monotonic() - t0, args)


def _report(cfg, results, seconds, args):
    peak = cfg.tm * cfg.tn
    rows, util = [], {}
    for r in results:
        lay = r["layer"]
        rows.append([r["mode"], "n{n} c{c} {h}x{w} m{m} k{k} s{stride} p{pad}".format(**lay),
                     r["busy_cycles"], r["macs"], r["stall_cycles"],
                     f"{100 * r['macs'] / (peak * r['busy_cycles']):.2f}%"])
    for mode in MODES:
        rs = [r for r in results if r["mode"] == mode]
        util[mode] = sum(r["macs"] for r in rs) / (peak * sum(r["busy_cycles"] for r in rs))
    print_table(rows, ["mode", "layer", "cycles", "useful MACs", "stalls", "utilization"],
                title=f"conv engine {cfg.tm}x{cfg.tn} compute phase ({args.simulator}, "
                      f"{seconds:.0f} s; every output checked against the golden model)")
    print("utilization: " + ", ".join(f"{m} {100 * u:.2f}%" for m, u in util.items()))
    if args.json:
        write_json(args.json, {"array": [cfg.tm, cfg.tn], "simulator": args.simulator,
                               "utilization": util, "shapes": list(SHAPES),
                               "runs": results, "config": cfg.to_dict()})
        print(f"wrote {args.json}")
    return 0
