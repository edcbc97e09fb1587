"""Run the conv engine's cocotb testbench (``tb_engine``) for pytest and the CLI.

One simulator build per configuration serves every shape and mode: the shapes reach the
testbench as parameters, not as elaboration parameters.
"""

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.tile import ConvEngineTile
from edgetrain.outputs import output_dir
from .runner import SIM_ROOT, run_cocotb
from .stall_buffer import stalling_factory

__all__ = ["SMALL_CONFIG", "DEFAULT_LIMITS", "run_engine_tb", "EngineRuns", "verify_engine"]

# The default test engine: small so that Icarus runs many shapes quickly, yet every
# feature (channel tails, K up to 5, stride 2, padding, batch) is reachable.
SMALL_CONFIG = AcceleratorConfig(tm=4, tn=4, max_kernel=5, max_channels=8, max_size=10,
                                 max_batch=2, input_depth=512, weight_depth=128,
                                 output_depth=512)
DEFAULT_LIMITS = {"max_cycles": 1500}


def run_engine_tb(simulator, *, config=SMALL_CONFIG, shapes=20, seed=1,
                  modes=("fp", "bp", "wu", "update"), limits=DEFAULT_LIMITS, layers=None,
                  backpressure=True, tag="default", build_dir=None, results=None,
                  progress=None, waves=False, stalling_buffers=False, ecp5=False):
    """Build the engine for ``simulator`` and run the testbench; return the per-run results.

    ``layers`` (``[(mode, LayerShape-dict)]``) replaces the random shapes;
    ``stalling_buffers`` builds the tile with ``StallingBuffer``s (ports not ready on random
    cycles) instead of plain SRAM. ``ecp5`` elaborates it for the ULX3S's ECP5 (registered
    MULT18X18D blocks in the PE array and DCCA global buffers, simulated by the models in
    ``sim/models``). Raises
    ``AssertionError`` if any run mismatches the golden model.
    """
    build_dir = Path(build_dir or SIM_ROOT / "engine" / f"{tag}-{simulator}")
    build_dir.mkdir(parents=True, exist_ok=True)
    results = Path(results or build_dir / "results.json").resolve()
    results.unlink(missing_ok=True)
    params = {"config": config.to_dict(), "modes": list(modes), "shapes": shapes,
              "seed": seed, "limits": limits, "backpressure": backpressure,
              "layers": layers, "results": str(results),
              "progress": str(Path(progress).resolve()) if progress else None}
    # -O0: the engine's wide rows make an optimised C++ build take many minutes.
    factory = {"buffer_factory": stalling_factory} if stalling_buffers else {}
    vendor = {}
    if ecp5:
        from edgetrain.boards.platforms import ULX3S85FPlatform
        vendor = {"platform": ULX3S85FPlatform(),
                  "extra_sources": [Path(__file__).parent / "models" / f"{cell}.v"
                                    for cell in ("MULT18X18D", "DCCA")]}
    run_cocotb(component=ConvEngineTile(config=config, **factory), toplevel="engine_tile",
               test_module="edgetrain.sim.tb.tb_engine", simulator=simulator,
               build_dir=build_dir, params=params, waves=waves, fast_compile=True, **vendor)
    return json.loads(results.read_text())


@dataclass(frozen=True)
class EngineRuns:
    """The outcome of ``verify_engine``: the testbench's ``results`` (a dict per run:
    mode, layer, ok, error, busy_cycles, ...), the runs asked for, the testbench's failure
    message (None if every run passed) and the build folder (``test.log``, waves)."""
    results: list
    expected: int
    failure: str | None
    build_dir: Path

    @property
    def passed(self):
        """Every run asked for ran and matched the golden model."""
        return self.failure is None and len(self.results) == self.expected

    def waves(self):
        """Return the newest wave file in the build folder, or None."""
        files = list(self.build_dir.glob("*.fst")) + list(self.build_dir.glob("*.vcd"))
        return max(files, key=lambda p: p.stat().st_mtime, default=None)


def verify_engine(simulator, *, config=SMALL_CONFIG, shapes=20, seed=1,
                  modes=("fp", "bp", "wu", "update"), max_cycles=1500, build_dir=None,
                  waves=False, on_run=None):
    """Run ``shapes`` random layers per mode against the golden model; return ``EngineRuns``.

    Unlike ``run_engine_tb`` a mismatch does not raise: it is in the returned runs.
    ``on_run(done, failed)`` follows the runs as they finish (from a watcher thread).
    """
    build = output_dir(build_dir or SIM_ROOT / "engine" /
                       f"cli-{simulator}{'-waves' if waves else ''}")
    progress = build / "progress.jsonl"
    progress.unlink(missing_ok=True)
    stop, failure = threading.Event(), None
    watcher = threading.Thread(target=_watch, args=(progress, on_run or (lambda *_: None),
                                                    stop), daemon=True)
    watcher.start()
    try:
        results = run_engine_tb(simulator, config=config, shapes=shapes, seed=seed,
                                modes=modes, limits={"max_cycles": max_cycles},
                                build_dir=build, progress=progress, waves=waves)
    except AssertionError as e:
        failure = str(e)
        done = build / "results.json"
        results = json.loads(done.read_text()) if done.exists() else []
    finally:
        stop.set()
        watcher.join()
    return EngineRuns(results, shapes * len(modes), failure, build)


def _watch(progress, on_run, stop):
    """Call ``on_run(done, failed)`` whenever the testbench's progress file grows, until
    ``stop`` is set (then once more)."""
    seen = 0
    while True:
        stopping = stop.wait(0.5)
        lines = progress.read_text().splitlines() if progress.exists() else []
        if len(lines) > seen:
            seen = len(lines)
            on_run(seen, sum('"ok": false' in ln for ln in lines))
        if stopping:
            return
