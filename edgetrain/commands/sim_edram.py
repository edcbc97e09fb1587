"""``edgetrain sim edram``: run the eDRAM buffer testbench against the Python model.

Without ``--net``: random write/read/release traces on a small buffer, every policy,
checked per read and per counter against ``EDRAMModel`` and against oracles computed from
the trace. With ``--net``: the net's training-sample schedule (as ``bench refresh`` builds
it) replayed on a buffer of the configured size.
"""

import time

from edgetrain.firmware.nets import NETS
from edgetrain.hw.config import REFRESH_POLICIES, load_config
from edgetrain.progress import print_table
from edgetrain.sim.tb.edram_run import run_edram_schedule_tb, run_edram_tb
from ._args import add_config, add_seed, add_simulator, add_waves

HELP = "run the eDRAM buffer + refresh controller testbench against the Python model"


def add_arguments(parser):
    add_simulator(parser)
    add_seed(parser, 1, help="random trace seed")
    add_waves(parser)
    parser.add_argument("--no-decay", action="store_true",
                        help="disable decay injection: the detection test must then fail")
    parser.add_argument("--net", choices=sorted(NETS),
                        help="replay this net's training schedule instead (full-size buffer)")
    parser.add_argument("--policy", action="append", choices=REFRESH_POLICIES,
                        help="policy for --net (repeatable; default: all)")
    add_config(parser, help="accelerator config TOML for --net")


def run(args):
    start = time.monotonic()
    try:
        if args.net:
            outcomes = run_edram_schedule_tb(net=args.net, config=load_config(args.config),
                                             policies=args.policy or REFRESH_POLICIES,
                                             simulator=args.simulator, waves=args.waves)
        else:
            run_edram_tb(simulator=args.simulator, seed=args.seed, waves=args.waves,
                         decay=not args.no_decay)
        result = "pass"
    except AssertionError as e:
        outcomes, result = {}, f"FAIL ({e})"
    took = f"{time.monotonic() - start:.1f}s"
    if args.net and outcomes:
        print_table([[args.net, p, o.cycles, o.refreshes, o.stall_cycles, o.violations,
                      "RTL = model"] for p, o in outcomes.items()],
                    ["net", "policy", "cycles", "refreshes", "stalls", "violations", "check"],
                    title=f"{args.net} schedule on the RTL ({args.simulator}, {took})")
        return 0
    print_table([[args.simulator, args.net or f"random seed {args.seed}",
                  "off" if args.no_decay else "on", took, result]],
                ["simulator", "trace", "decay", "time", "result"],
                title=f"eDRAM testbench ({args.simulator})")
    return 0 if result == "pass" else 1
