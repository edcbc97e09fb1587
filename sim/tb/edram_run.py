"""Run the eDRAM buffer's cocotb testbench (``tb_edram``) for pytest and the CLI.

``run_edram_tb``: random write/read/release traces on a small buffer, every refresh policy,
checked per read and per counter against ``EDRAMModel`` and against oracles computed from
the trace. ``run_edram_schedule_tb``: a net's training-sample schedule (as ``bench
refresh`` builds it) replayed on a buffer of the configured size.
"""

import json
from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import get_net
from edgetrain.hw.buffers.edram import EDRAMBuffer
from edgetrain.outputs import output_dir, write_text
from edgetrain.sim.reference.decay import EDRAMModel
from edgetrain.sim.reference.lifetime import ArrayModel, schedule_trace, training_schedule
from .runner import SIM_ROOT, run_cocotb

__all__ = ["TB_PARAMS", "run_edram_tb", "run_edram_schedule_tb"]

#: The small buffer of the random-trace tests: 2 banks of 8 rows, 64-cycle retention.
TB_PARAMS = {"depth": 16, "banks": 2, "data_bits": 16, "retention": 64, "allocations": 400}


def run_edram_tb(*, simulator, seed=1, waves=False, decay=True, testcase=None,
                 build_dir=None):
    """Build the small runtime-controlled buffer and run the random-trace tests; return the
    results XML path. ``decay=False`` turns the decay injection off (the detection test must
    then fail). Raises ``AssertionError`` on any failure."""
    p = dict(TB_PARAMS, seed=seed, decay=int(decay))
    dut = EDRAMBuffer(depth=p["depth"], data_bits=p["data_bits"], banks=p["banks"],
                      retention_cycles=p["retention"], policy="runtime", decay_injection=True)
    build_dir = build_dir or SIM_ROOT / "edram" / simulator
    return run_cocotb(component=dut, toplevel="edram_tb",
                      test_module="edgetrain.sim.tb.tb_edram", simulator=simulator,
                      build_dir=build_dir, params=p, waves=waves, testcase=testcase)


def run_edram_schedule_tb(*, net, config, policies, simulator, waves=False, build_dir=None):
    """Replay ``net``'s schedule on a buffer of ``config``'s size under each of ``policies``;
    return ``{policy: TraceOutcome}``, the model's counters, which the RTL matched.

    Raises ``ConfigError`` if the schedule needs more rows than ``input_depth``,
    ``AssertionError`` if the RTL differs from the model.
    """
    trace, rows, _ = schedule_trace(training_schedule(get_net(net),
                                                      ArrayModel(tm=config.tm, tn=config.tn)))
    depth, banks = config.input_depth, config.edram_banks
    if rows > depth:
        raise ConfigError(f"net {net!r} needs {rows} buffer rows but input_depth is {depth}")
    build_dir = output_dir(Path(build_dir or SIM_ROOT / "edram" /
                                f"{simulator}-{depth}x{banks}").resolve())
    trace_file = write_text(build_dir / f"{net}.trace.json",
                            json.dumps([[a.time, a.write, a.addr, a.data, a.last]
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
