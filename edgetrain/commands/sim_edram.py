"""``edgetrain sim edram``: run the eDRAM buffer testbench (random traces, all policies)."""

import time

from ..errors import ConfigError
from ..hw.edram import EDRAMBuffer
from ..progress import print_table
from ..sim.runner import SIM_ROOT, SIMULATORS, run_cocotb

HELP = "run the eDRAM buffer + refresh controller testbench against the Python model"

#: The small buffer the testbench uses: 2 banks of 8 rows, 64-cycle retention.
TB_PARAMS = {"depth": 16, "banks": 2, "data_bits": 16, "retention": 64, "allocations": 400}


def add_arguments(parser):
    parser.add_argument("--simulator", default="icarus", choices=SIMULATORS)
    parser.add_argument("--seed", type=int, default=1, help="random trace seed (default 1)")
    parser.add_argument("--waves", action="store_true", help="dump waveforms in the build dir")
    parser.add_argument("--no-decay", action="store_true",
                        help="disable decay injection: the detection test must then fail")


def run_edram_sim(*, simulator, seed=1, waves=False, decay=True, testcase=None,
                  build_dir=None):
    """Build the runtime-controlled buffer and run ``sim/tb_edram.py``; return results."""
    p = dict(TB_PARAMS, seed=seed, decay=int(decay))
    dut = EDRAMBuffer(depth=p["depth"], data_bits=p["data_bits"], banks=p["banks"],
                      retention_cycles=p["retention"], policy="runtime", decay_injection=True)
    build_dir = build_dir or SIM_ROOT / "edram" / simulator
    return run_cocotb(component=dut, toplevel="edram_tb", test_module="edgetrain.sim.tb_edram",
                      simulator=simulator, build_dir=build_dir, params=p, waves=waves,
                      testcase=testcase)


def run(args):
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, not {args.seed}")
    start = time.monotonic()
    try:
        run_edram_sim(simulator=args.simulator, seed=args.seed, waves=args.waves,
                      decay=not args.no_decay)
        result = "pass"
    except AssertionError as e:
        result = f"FAIL ({e})"
    print_table([[args.simulator, args.seed, "on" if not args.no_decay else "off",
                  f"{time.monotonic() - start:.1f}s", result]],
                ["simulator", "seed", "decay", "time", "result"],
                title=f"eDRAM testbench ({TB_PARAMS['depth']} rows, {TB_PARAMS['banks']} "
                      f"banks, retention {TB_PARAMS['retention']} cycles)")
    return 0 if result == "pass" else 1
