"""Training on the generated accelerator in Verilator (``train --backend sim``), checked.

A small accelerator (4x4, shallow buffers, every block of the default one) that still holds
digits-cnn at batch 2 trains one step (after its calibration passes) on the first samples of digits, through the driver
of ``sim/driver.py`` with the simulated accelerator as its target, checked every step
against a golden ``FixedNet`` beside it: calibration, masters, velocities, compute copies,
formats, losses, saturations and the evaluation must be equal bit for bit (a difference
raises ``CheckMismatch``, which ``train_sim`` re-raises). The RTL's cycle counts come back
per phase. About 4 minutes (2.1k simulated cycles a second: cocotbext-axi's per-cycle
coroutines; see docs/train-rtl.md).
"""


from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.golden.train import TrainOptions
from edgetrain.sim.train_rtl import train_sim

#: The smallest buffers that still hold digits-cnn's step at batch 2 on a 4x4 array (a
#: ReLU mask's image needs 512 ACT rows of 4 lanes in one half).
SMALL = AcceleratorConfig(tm=4, tn=4, max_kernel=4, max_channels=16, max_size=10, max_batch=2,
                          input_depth=1024, weight_depth=128, output_depth=1024,
                          refresh=("none", "none", "none"))


def test_sim_training_equals_golden():
    steps = []
    out = train_sim(TrainOptions(batch=2, epochs=1), SMALL, steps=1, check="every",
                    subset=(8, 2), fast_compile=True,
                    on_step=lambda done, total, loss: steps.append((done, total)))
    assert steps == [(1, 1)]
    assert (out["steps"], out["checked_steps"], out["backend"]) == (1, 1, "sim")
    assert out["cycles_per_step"] > 0
    assert set(out["utilization"]) == {"fp", "bp", "update", "pool", "pool-bp", "relu-mask"}
    assert 0 < out["utilization"]["fp"] <= 1
