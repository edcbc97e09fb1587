"""``edgetrain sim engine``: run the conv engine's cocotb testbench on random layers."""

import threading
import time
from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.progress import Progress, print_table

HELP = "verify the conv engine (FP/BP/WU/UPDATE) against the golden model on random layers"

MODES = ("fp", "bp", "wu", "update")


def add_arguments(parser):
    parser.add_argument("--simulator", default="icarus", choices=("icarus", "verilator"))
    parser.add_argument("--shapes", type=int, default=20, help="random layers per mode")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random layers")
    parser.add_argument("--modes", default="fp,bp,wu,update", help="comma-separated modes")
    parser.add_argument("--config", help="accelerator config TOML (default: the small "
                                         "4x4 test engine)")
    parser.add_argument("--max-cycles", type=int, default=1500,
                        help="largest layer drawn, in array cycles")
    parser.add_argument("--waves", action="store_true", help="dump a waveform file")
    parser.add_argument("--build-dir", help="build directory (default sim_build/engine/...)")


def _watch(progress_file, bar, stop):
    seen = 0
    while not stop.is_set():
        lines = progress_file.read_text().splitlines() if progress_file.exists() else []
        if len(lines) > seen:
            fails = sum('"ok": false' in ln for ln in lines)
            bar.update(len(lines) - seen, postfix=f"{fails} failed" if fails else "")
            seen = len(lines)
        time.sleep(0.5)


def run(args):
    from edgetrain.hw.config import load_config
    from edgetrain.sim.tb.engine_run import SMALL_CONFIG, run_engine_tb
    from edgetrain.sim.tb.runner import SIM_ROOT, check_simulator

    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    for m in modes:
        if m not in MODES:
            raise ConfigError(f"mode {m!r} is not simulated; choose from {', '.join(MODES)}")
    if args.shapes < 1:
        raise ConfigError(f"--shapes must be >= 1, not {args.shapes}")
    check_simulator(args.simulator)
    cfg = load_config(args.config) if args.config else SMALL_CONFIG
    build = Path(args.build_dir or SIM_ROOT / "engine" /
                 f"cli-{args.simulator}{'-waves' if args.waves else ''}")
    build.mkdir(parents=True, exist_ok=True)
    progress_file = build / "progress.jsonl"
    progress_file.unlink(missing_ok=True)
    stop, error = threading.Event(), None
    t0 = time.monotonic()
    with Progress(args.shapes * len(modes), f"sim engine ({args.simulator})") as bar:
        watcher = threading.Thread(target=_watch, args=(progress_file, bar, stop), daemon=True)
        watcher.start()
        try:
            run_engine_tb(args.simulator, config=cfg, shapes=args.shapes, seed=args.seed,
                          modes=modes, limits={"max_cycles": args.max_cycles},
                          build_dir=build, progress=progress_file, waves=args.waves)
        except AssertionError as e:
            error = e
        finally:
            stop.set()
            watcher.join()
    return _report(build, modes, error, time.monotonic() - t0, args)


def _report(build, modes, error, seconds, args):
    import json
    results_file = build / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    rows = []
    for mode in modes:
        rs = [r for r in results if r["mode"] == mode]
        rows.append([mode, len(rs), sum(r["ok"] for r in rs), sum(not r["ok"] for r in rs),
                     sum(r["busy_cycles"] for r in rs)])
    print_table(rows, ["mode", "runs", "passed", "failed", "cycles"],
                title=f"conv engine vs golden model ({args.simulator}, seed {args.seed}, "
                      f"{seconds:.0f} s)")
    for r in results:
        if not r["ok"]:
            print(f"FAIL {r['mode']} {r['layer']}: {r['error']}")
    if args.waves:
        waves = sorted(list(build.glob("*.fst")) + list(build.glob("*.vcd")),
                       key=lambda p: p.stat().st_mtime)
        print(f"waves: {waves[-1] if waves else 'none written (see ' + str(build) + ')'}")
    if error is not None or len(results) < len(modes) * args.shapes:
        print(f"log: {build / 'test.log'}")
        return 1
    return 0
