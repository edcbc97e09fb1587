"""``edgetrain sim bridge``: the UART host bridge and device core, driven by the host client."""

import time

from edgetrain.progress import print_table
from ._args import add_seed, add_simulator, add_waves

HELP = "verify the UART bridge + device core with the host client (incl. bad frames)"


def add_arguments(parser):
    add_simulator(parser)
    add_seed(parser, 5, help="seed of the random data")
    add_waves(parser)
    parser.add_argument("--test", help="run only this test (default: all)")


def run(args):
    from edgetrain.sim.tb.bridge_run import run_bridge_tb

    start = time.monotonic()
    try:
        results = run_bridge_tb(args.simulator, seed=args.seed, waves=args.waves,
                                testcase=args.test)
    except AssertionError as e:
        print(f"bridge testbench failed: {e}")
        return 1
    print_table([(name, "PASS" if ok else "FAIL", f"{ns / 1000:.1f}")
                 for name, ok, ns in results], ["test", "result", "sim us"],
                title=f"bridge testbench on {args.simulator} "
                      f"({time.monotonic() - start:.1f}s wall)")
    return 0 if all(ok for _, ok, _ in results) else 1
