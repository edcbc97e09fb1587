"""``edgetrain sim edram``: run the eDRAM buffer testbench against the Python model.

Without ``--net``: random write/read/release traces on a small buffer, every policy,
checked per read and per counter against ``EDRAMModel`` and against oracles computed from
the trace. With ``--net``: the net's training-sample schedule (as ``bench refresh`` builds
it) replayed on a buffer of the configured size.
"""

import json
import time

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import NETS, get_net
from edgetrain.hw.buffers.edram import EDRAMBuffer
from edgetrain.hw.config import REFRESH_POLICIES, load_config
from edgetrain.progress import print_table
from edgetrain.sim.reference.decay import EDRAMModel
from edgetrain.sim.reference.lifetime import ArrayModel, schedule_trace, training_schedule
from edgetrain.sim.tb.runner import SIM_ROOT, SIMULATORS, run_cocotb

HELP = "run the eDRAM buffer + refresh controller testbench against the Python model"

#: The small buffer of the random-trace tests: 2 banks of 8 rows, 64-cycle retention.
TB_PARAMS = {"depth": 16, "banks": 2, "data_bits": 16, "retention": 64, "allocations": 400}


def add_arguments(parser):
    parser.add_argument("--simulator", default="icarus", choices=SIMULATORS)
    parser.add_argument("--seed", type=int, default=1, help="random trace seed (default 1)")
    parser.add_argument("--waves", action="store_true", help="dump waveforms in the build dir")
    parser.add_argument("--no-decay", action="store_true",
                        help="disable decay injection: the detection test must then fail")
    parser.add_argument("--net", choices=sorted(NETS),
                        help="replay this net's training schedule instead (full-size buffer)")
    parser.add_argument("--policy", action="append", choices=REFRESH_POLICIES,
                        help="policy for --net (repeatable; default: all)")
    parser.add_argument("--config", metavar="TOML", help="accelerator config for --net")


def run_edram_sim(*, simulator, seed=1, waves=False, decay=True, testcase=None,
                  build_dir=None):
    """Build the small runtime-controlled buffer and run the random-trace tests."""
    p = dict(TB_PARAMS, seed=seed, decay=int(decay))
    dut = EDRAMBuffer(depth=p["depth"], data_bits=p["data_bits"], banks=p["banks"],
                      retention_cycles=p["retention"], policy="runtime", decay_injection=True)
    build_dir = build_dir or SIM_ROOT / "edram" / simulator
    return run_cocotb(component=dut, toplevel="edram_tb", test_module="edgetrain.sim.tb.tb_edram",
                      simulator=simulator, build_dir=build_dir, params=p, waves=waves,
                      testcase=testcase)


def run_schedule_sim(*, net, config, policies, simulator, waves=False, build_dir=None):
    """Replay ``net``'s schedule on a configured-size buffer; return the model's counters."""
    trace, rows, _ = schedule_trace(training_schedule(get_net(net),
                                                      ArrayModel(tm=config.tm, tn=config.tn)))
    depth, banks = config.input_depth, config.edram_banks
    if rows > depth:
        raise ConfigError(f"net {net!r} needs {rows} buffer rows but input_depth is {depth}")
    build_dir = (build_dir or SIM_ROOT / "edram" / f"{simulator}-{depth}x{banks}").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    trace_file = build_dir / f"{net}.trace.json"
    trace_file.write_text(json.dumps([[a.time, a.write, a.addr, a.data, a.last]
                                      for a in trace]))
    p = {"depth": depth, "banks": banks, "data_bits": 16, "retention": config.retention_cycles,
         "trace_file": str(trace_file), "policies": list(policies), "decay": 1}
    dut = EDRAMBuffer(depth=depth, data_bits=16, banks=banks, policy="runtime",
                      retention_cycles=config.retention_cycles, decay_injection=True)
    run_cocotb(component=dut, toplevel="edram_tb", test_module="edgetrain.sim.tb.tb_edram",
               simulator=simulator, build_dir=build_dir, params=p, waves=waves)
    return {policy: EDRAMModel(depth=depth, data_bits=16, retention_cycles=p["retention"],
                               policy=policy, banks=banks, decay=True).run(trace)
            for policy in policies}


def run(args):
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, not {args.seed}")
    start = time.monotonic()
    try:
        if args.net:
            outcomes = run_schedule_sim(net=args.net, config=load_config(args.config),
                                        policies=args.policy or REFRESH_POLICIES,
                                        simulator=args.simulator, waves=args.waves)
        else:
            run_edram_sim(simulator=args.simulator, seed=args.seed, waves=args.waves,
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
