"""``edgetrain sim bridge``: the UART host bridge and device core, driven by the host client."""

import time

from edgetrain.progress import print_table

HELP = "verify the UART bridge + device core with the host client (incl. bad frames)"


def add_arguments(parser):
    parser.add_argument("--simulator", default="icarus", choices=("icarus", "verilator"))
    parser.add_argument("--seed", type=int, default=5, help="seed of the random data")
    parser.add_argument("--waves", action="store_true", help="dump a waveform file")
    parser.add_argument("--test", help="run only this test (default: all)")


def run(args):
    from edgetrain.sim.tb.bridge_run import run_bridge_tb
    from edgetrain.sim.tb.runner import check_simulator

    check_simulator(args.simulator)
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
