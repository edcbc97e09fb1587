"""Training through the driver (``sim/driver.py``) on the instruction-level model.

The host loop runs digits-cnn's compiled programs on ``IssTarget`` with a golden
``FixedNet`` beside it (``check="every"``): calibration, two training steps and the
evaluation must give the golden masters, velocities, compute copies, formats, losses and
saturations bit for bit. A subset of the digits split keeps it short. The check is shown to
catch a host that hands the update unit a learning rate one step off, and one that forgets
an amax. The command line refuses bad ``--steps`` / ``--check`` / backend combinations with
one line and exit 2. The simulated RTL runs the same loop (``sim/tb/tb_train.py``);
its test is in ``tests/test_train_sim.py``.
"""

import asyncio
import pytest

from edgetrain.cli import main
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim import driver
from edgetrain.sim.driver import (
    CheckMismatch, IssTarget, digits_subset, step_memory, train_on_target)
from edgetrain.sim.golden.train import TrainOptions, check_options

CFG = AcceleratorConfig()
OPTIONS = TrainOptions(batch=8, epochs=1)


def _train(steps, check="every", options=OPTIONS):
    plan = check_options(options, CFG)
    memory = step_memory(CFG, plan.net, options.batch)
    return asyncio.run(train_on_target(options, CFG, IssTarget(CFG, memory.mem_bytes), memory,
                                       data=digits_subset(40, 12), steps=steps, check=check))


def test_iss_training_equals_golden():
    result = _train(steps=2)
    out = result.to_json()
    assert (out["steps"], out["checked_steps"], out["backend"]) == (2, 2, "iss")
    assert len(out["history"]) == 1 and 0 <= out["test_accuracy"] <= 1
    assert out["calibration_passes"] >= 2
    assert "cycles_per_step" not in out          # the model has no time


def test_check_catches_a_wrong_host(monkeypatch):
    lr_fixed = driver.lr_fixed
    monkeypatch.setattr(driver, "lr_fixed", lambda lr, b: (lr_fixed(lr, b)[0] + 1,
                                                           lr_fixed(lr, b)[1]))
    with pytest.raises(CheckMismatch, match=r"^step 0: fc4 \(slot 4\) masters differ, first "
                                            r"at index \(\d+, \d+, \d+, \d+\): -?\d+ on the target"):
        _train(steps=1)
    monkeypatch.undo()

    run = driver.AccelTrainer._run

    async def no_fc_amax(self, p, num, *, observe=True):
        return await run(self, p, num, observe=observe and p.name != "fc4")
    monkeypatch.setattr(driver.AccelTrainer, "_run", no_fc_amax)
    with pytest.raises(CheckMismatch, match=r"^calibration: \d+ passes on the target, \d+ "
                                            r"golden; format act/4 is frac "):
        _train(steps=1)


@pytest.mark.parametrize("argv, needle", [
    (["--backend", "iss", "--steps", "0"], "--steps"),
    (["--backend", "iss", "--check", "often"], "often"),
    (["--backend", "golden", "--steps", "3"], "--backend iss or sim"),
    (["--backend", "golden", "--check", "end"], "--backend iss or sim"),
    (["--backend", "sim", "--float"], "--float"),
    (["--backend", "sim", "--net", "digits-revnet", "--batch", "8"], "RevBlock"),
])
def test_bad_accel_training_options(argv, needle, capsys):
    assert main(["train", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgetrain: error: ") and needle in lines[0]
