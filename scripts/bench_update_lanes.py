"""UPDATE-mode utilization of the 8 x 8 engine for several ``update_lanes`` settings.

    python scripts/bench_update_lanes.py [--lanes 1,2,8] [--simulator verilator] [--json FILE]

Builds the engine once per setting (default config otherwise) and runs the three tiles of
``edgetrain bench engine`` in UPDATE mode, every master weight and velocity checked against
the golden model; prints cycles, stalls and utilization = useful MACs / (Tm x Tn x busy
cycles) per tile and per setting. A block costs ``2 * T*T / L`` master-port cycles, so
tiles whose per-block reduction (``N * Ho * Wo``) is shorter stall the array.
"""

import argparse
import sys
import time

from edgetrain.commands.bench_engine import SHAPES
from edgetrain.hw.config import load_config
from edgetrain.progress import print_table, write_json
from edgetrain.sim.tb.engine_run import run_engine_tb
from edgetrain.sim.tb.runner import SIM_ROOT


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", default="1,2,8", help="comma-separated update_lanes values")
    ap.add_argument("--simulator", default="verilator", choices=("icarus", "verilator"))
    ap.add_argument("--config", help="accelerator config TOML (default: built-in 8x8)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    base = load_config(args.config)
    rows, summary = [], {}
    for lanes in (int(x) for x in args.lanes.split(",")):
        cfg = base.replace(update_lanes=lanes)
        t0 = time.monotonic()
        try:
            results = run_engine_tb(args.simulator, config=cfg,
                                    layers=[("update", s) for s in SHAPES], backpressure=False,
                                    build_dir=SIM_ROOT / "update_lanes" /
                                    f"bench-L{lanes}-{args.simulator}")
        except AssertionError as e:
            sys.exit(f"bench_update_lanes: mismatch with update_lanes {lanes}: {e}")
        peak = cfg.tm * cfg.tn
        for r in results:
            rows.append([lanes, "n{n} c{c} {h}x{w} m{m} k{k} s{stride} p{pad}".format(
                **r["layer"]), r["busy_cycles"], r["stall_cycles"],
                f"{100 * r['macs'] / (peak * r['busy_cycles']):.2f}%"])
        summary[lanes] = {"utilization": sum(r["macs"] for r in results) /
                          (peak * sum(r["busy_cycles"] for r in results)),
                          "runs": results, "seconds": round(time.monotonic() - t0, 1)}
        print(f"update_lanes {lanes}: {100 * summary[lanes]['utilization']:.2f}% "
              f"({summary[lanes]['seconds']} s)", flush=True)
    print_table(rows, ["lanes", "tile", "cycles", "stalls", "utilization"],
                title=f"UPDATE mode, {base.tm}x{base.tn} engine ({args.simulator})")
    if args.json:
        write_json(args.json, summary)


if __name__ == "__main__":
    main()
