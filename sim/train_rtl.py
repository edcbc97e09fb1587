"""Training on the generated accelerator in a simulator: ``edgetrain train --backend sim``.

``train_sim(options, cfg, ...)`` builds the ``Accelerator`` of ``cfg`` for Verilator (or
Icarus), runs ``sim/tb/tb_train.py`` (the driver of ``sim/driver.py`` with the simulated
accelerator as its target) in a thread, reports each step as the testbench writes it to its
progress file, and returns the testbench's result JSON (``AccelTrainResult.to_json()``).
A failed check or a program the hardware stopped comes back as one line
(``CheckMismatch``); a simulation that ends without a result is an ``AssertionError`` naming
its log.
"""

import hashlib
import json
import threading
from dataclasses import asdict
from pathlib import Path

from edgetrain.hw.accel.top import Accelerator
from edgetrain.sim.driver import CHECK_MODES, CheckMismatch, preflight
from edgetrain.sim.golden.train import check_options
from edgetrain.sim.tb.runner import SIM_ROOT, check_simulator, run_cocotb

__all__ = ["train_sim", "sim_build_dir"]


def sim_build_dir(cfg, simulator, fast_compile=False):
    """The build folder of ``cfg``'s accelerator for ``simulator`` (one per config and
    optimisation level)."""
    digest = hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()
    return SIM_ROOT / "train" / f"{digest[:10]}-{simulator}{'-O0' if fast_compile else ''}"


def train_sim(options, cfg, *, steps=None, check="none", simulator="verilator",
              net_file=None, subset=None, fast_compile=False, on_step=None):
    """Train on the simulated accelerator; return the result JSON (a dict). ``subset``
    (train, test) trains and evaluates on the first samples of the split only;
    ``fast_compile`` builds Verilator's C++ at -O0 (a short run of a small config)."""
    if check not in CHECK_MODES:
        raise CheckMismatch(f"--check must be one of {', '.join(CHECK_MODES)}, not {check!r}")
    check_simulator(simulator)
    plan = check_options(options, cfg)
    memory = preflight(cfg, plan, options)
    build = sim_build_dir(cfg, simulator, fast_compile)
    build.mkdir(parents=True, exist_ok=True)
    progress, out = build / "progress.jsonl", build / "result.json"
    for f in (progress, out):
        f.unlink(missing_ok=True)
    opts = asdict(options) | {"net": plan.net.name}
    params = {"config": cfg.to_dict(), "options": opts, "steps": steps, "check": check,
              "mem_bytes": memory.mem_bytes, "progress": str(progress.resolve()),
              "out": str(out.resolve()), "subset": subset, "net_file": net_file and str(Path(net_file).resolve())}
    failure = []

    def simulate():
        try:
            run_cocotb(component=Accelerator(config=cfg), toplevel="accelerator",
                       test_module="edgetrain.sim.tb.tb_train", simulator=simulator,
                       build_dir=build, params=params, fast_compile=fast_compile)
        except BaseException as e:          # reported in the caller's thread
            failure.append(e)

    thread = threading.Thread(target=simulate, daemon=True)
    thread.start()
    seen = 0
    while thread.is_alive() or seen < _lines(progress):
        lines = progress.read_text().splitlines() if progress.exists() else []
        for line in lines[seen:]:
            step = json.loads(line)
            if on_step:
                on_step(step["done"], step["total"], step["loss"])
        seen = len(lines)
        thread.join(0.5)
    if failure:
        raise failure[0]
    if not out.exists():
        raise AssertionError(f"the simulation wrote no result; log: {build / 'test.log'}")
    result = json.loads(out.read_text())
    if "error" in result:
        raise CheckMismatch(result["error"])
    return result


def _lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0
