"""``edgetrain sim accel``: run the whole accelerator's cocotb testbench (AxiRam as DRAM)."""

import time
from pathlib import Path

from edgetrain.hw.config import load_config
from edgetrain.sim.tb.accel_run import ACCEL_CONFIG, run_accel_tb
from ._args import (add_build_dir, add_config, add_seed, add_simulator, add_waves, fraction,
                    positive_int)

HELP = "run programs on the accelerator: round trips, FP/BP layers DRAM to DRAM, bad programs"


def add_arguments(parser):
    add_simulator(parser)
    add_seed(parser, 1, help="seed of the random programs and data")
    parser.add_argument("--cases", type=positive_int, default=20,
                        help="random round trips and conv layers (half FP, half BP)")
    add_config(parser, help="accelerator config TOML (default: a small 4x4 accelerator)")
    parser.add_argument("--axi-pause", type=fraction, default=0.2,
                        help="probability an AXI channel pauses in a cycle")
    add_waves(parser)
    add_build_dir(parser)


def run(args):
    cfg = load_config(args.config) if args.config else ACCEL_CONFIG
    t0 = time.monotonic()
    try:
        results = run_accel_tb(args.simulator, config=cfg, seed=args.seed, cases=args.cases,
                               axi_pause=args.axi_pause, waves=args.waves,
                               build_dir=args.build_dir)
    except AssertionError as e:
        print(f"sim accel: FAILED ({e})")
        return 1
    print(f"sim accel: {args.simulator}, {cfg.tm}x{cfg.tn} engine, seed {args.seed}: "
          f"{args.cases} round trips, {args.cases} conv layers (FP and BP) DRAM to DRAM, "
          f"a bad program then a good one: 0 mismatches ({time.monotonic() - t0:.1f} s)")
    if args.waves:
        print(f"waves: {Path(results).parent}")
    return 0
