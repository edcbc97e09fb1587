"""``edgetrain sim engine``: run the conv engine's cocotb testbench on random layers."""

from edgetrain.hw.config import load_config
from edgetrain.hw.engine.descriptor import MODES
from edgetrain.progress import Progress, print_table
from edgetrain.sim.tb.engine_run import SMALL_CONFIG, verify_engine
from ._args import (add_build_dir, add_config, add_seed, add_simulator, add_waves, name_list,
                    positive_int)

HELP = "verify the conv engine (FP/BP/WU/UPDATE) against the golden model on random layers"


def add_arguments(parser):
    add_simulator(parser)
    parser.add_argument("--shapes", type=positive_int, default=20, help="random layers per mode")
    add_seed(parser, 1, help="seed of the random layers")
    parser.add_argument("--modes", type=name_list(MODES, "mode"), default=MODES,
                        help="comma-separated modes (default all)")
    add_config(parser, help="accelerator config TOML (default: the small 4x4 test engine)")
    parser.add_argument("--max-cycles", type=positive_int, default=1500,
                        help="largest layer drawn, in array cycles")
    add_waves(parser)
    add_build_dir(parser)


def run(args):
    cfg = load_config(args.config) if args.config else SMALL_CONFIG
    with Progress(args.shapes * len(args.modes), f"sim engine ({args.simulator})") as bar:
        def on_run(done, failed):
            bar.update(done - bar.done, postfix=f"{failed} failed" if failed else "")
        runs = verify_engine(args.simulator, config=cfg, shapes=args.shapes, seed=args.seed,
                             modes=args.modes, max_cycles=args.max_cycles,
                             build_dir=args.build_dir, waves=args.waves, on_run=on_run)
        seconds = bar.elapsed
    rows = []
    for mode in args.modes:
        rs = [r for r in runs.results if r["mode"] == mode]
        rows.append([mode, len(rs), sum(r["ok"] for r in rs), sum(not r["ok"] for r in rs),
                     sum(r["busy_cycles"] for r in rs)])
    print_table(rows, ["mode", "runs", "passed", "failed", "cycles"],
                title=f"conv engine vs golden model ({args.simulator}, seed {args.seed}, "
                      f"{seconds:.0f} s)")
    for r in runs.results:
        if not r["ok"]:
            print(f"FAIL {r['mode']} {r['layer']}: {r['error']}")
    if args.waves:
        waves = runs.waves()
        print(f"waves: {waves or 'none written (see ' + str(runs.build_dir) + ')'}")
    if not runs.passed:
        print(f"log: {runs.build_dir / 'test.log'}")
        return 1
    return 0
