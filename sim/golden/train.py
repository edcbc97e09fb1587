"""Golden training on digits: the loop shared by the ``train`` and ``bench train`` commands.

``train(options)`` builds the net's plan, draws the initial weights from ``seed``, builds a
``FixedNet`` (16-bit dynamic fixed point) or ``FloatNet`` (``use_float``: float32 twin),
calibrates the fixed-point formats on the first batch, then runs ``epochs`` epochs. Each
epoch visits the training split in a fresh order drawn from ``seed`` and drops the last
incomplete batch. The learning rate drops tenfold for the last quarter of the epochs
(``TrainOptions.lr_at``; the host just hands the update unit a new ``lr_q``). After every
epoch it evaluates on the test split and reports an ``EpochRecord`` through ``on_epoch``;
``on_step(done, total, loss)`` follows every step.
"""

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import get_net
from .digits import SPLIT_DESCRIPTION, load_digits_split
from .float_net import FloatNet
from .net import FixedNet
from .numerics import ROUNDING_MODES
from .plan import init_weights, plan_net
from .storage import stored_activation_bytes

__all__ = ["TrainOptions", "EpochRecord", "TrainResult", "train", "build_model",
           "check_options"]


@dataclass(frozen=True)
class TrainOptions:
    """What to train and how. ``net`` is a name from ``firmware.nets`` or a ``Net``."""
    net: object = "digits-cnn"
    epochs: int = 20
    batch: int = 32
    rounding: str = "stochastic"
    seed: int = 0
    use_float: bool = False
    lr: float = 0.02
    momentum: float = 0.9
    lr_drop: float = 0.75

    @property
    def full_lr_epochs(self):
        """The epochs trained at the full ``lr``: the first ``lr_drop`` fraction, rounded up."""
        return math.ceil(self.lr_drop * self.epochs)

    def lr_at(self, epoch):
        """Return the learning rate of ``epoch`` (1-based): ``lr`` for the first
        ``full_lr_epochs``, then ``lr / 10``."""
        return self.lr if epoch <= self.full_lr_epochs else self.lr / 10


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    saturations: int
    wraps: int
    seconds: float
    saturations_by_kind: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    net: str
    numerics: str
    options: dict
    stored_activation_bytes: dict
    history: list = field(default_factory=list)
    calibration_passes: int = 0
    formats: dict = field(default_factory=dict)

    @property
    def test_accuracy(self):
        return self.history[-1].test_accuracy if self.history else 0.0

    def to_json(self):
        """Return the metrics dictionary written by ``train --metrics``."""
        return {"net": self.net, "numerics": self.numerics,
                "test_accuracy": self.test_accuracy, "epochs": len(self.history),
                "stored_activation_bytes": self.stored_activation_bytes["per_sample"],
                "stored_activation_bytes_batch": self.stored_activation_bytes["batch_total"],
                "stored_activation_layers": self.stored_activation_bytes["per_layer"],
                "split": SPLIT_DESCRIPTION, "options": self.options,
                "calibration_passes": self.calibration_passes,
                "saturations": sum(r.saturations for r in self.history),
                "saturations_by_kind": _sum_counts(r.saturations_by_kind
                                                   for r in self.history),
                "wraps": sum(r.wraps for r in self.history),
                "formats": self.formats, "history": [asdict(r) for r in self.history]}


def _positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")


def check_options(options, config=None):
    """Raise ``ConfigError`` for bad options, or a net that exceeds ``config``'s limits."""
    _positive("epochs", options.epochs)
    _positive("batch", options.batch)
    if options.rounding not in ROUNDING_MODES:
        raise ConfigError(f"unknown rounding mode {options.rounding!r}; choose from "
                          f"{', '.join(ROUNDING_MODES)}")
    if not options.lr > 0 or not 0 <= options.momentum < 1 or not 0 <= options.lr_drop <= 1:
        raise ConfigError(f"need lr > 0, 0 <= momentum < 1 and 0 <= lr_drop <= 1, not "
                          f"lr={options.lr!r}, momentum={options.momentum!r}, "
                          f"lr_drop={options.lr_drop!r}")
    net = get_net(options.net) if isinstance(options.net, str) else options.net
    plan = plan_net(net)
    if config is not None:
        _check_fits(plan, options.batch, config)
    return plan


def _check_fits(plan, batch, cfg):
    if batch > cfg.max_batch:
        raise ConfigError(f"batch {batch} exceeds the config's max_batch {cfg.max_batch}")
    for lp in plan.layers:
        for shape in lp.weight_shapes:
            m, c, kh, kw = shape
            if max(kh, kw) > cfg.max_kernel:
                raise ConfigError(f"layer {lp.index}: kernel {kh}x{kw} exceeds the config's "
                                  f"max_kernel {cfg.max_kernel}")
            if max(m, c) > cfg.max_channels:
                raise ConfigError(f"layer {lp.index}: {max(m, c)} channels exceed the "
                                  f"config's max_channels {cfg.max_channels}")
        if max(lp.in_shape[1:]) > cfg.max_size:
            raise ConfigError(f"layer {lp.index}: input side {max(lp.in_shape[1:])} exceeds "
                              f"the config's max_size {cfg.max_size}")


def build_model(plan, options):
    """Return the ``FixedNet`` or ``FloatNet`` the options ask for, with initial weights."""
    weights = init_weights(plan, options.seed)
    if options.use_float:
        return FloatNet(plan, weights, lr=options.lr, momentum=options.momentum)
    return FixedNet(plan, weights, rounding=options.rounding, lr=options.lr,
                    momentum=options.momentum)


def train(options, *, config=None, data=None, on_step=None, on_epoch=None):
    """Train as ``options`` say; return a ``TrainResult``.

    BLAS runs single-threaded: the matrices are small, and threads only contend.
    """
    with threadpool_limits(1):
        return _train(options, config, data, on_step, on_epoch)


def _train(options, config, data, on_step, on_epoch):
    plan = check_options(options, config)
    data = data or load_digits_split()
    model = build_model(plan, options)
    b = options.batch
    steps = len(data.y_train) // b
    if steps < 1:
        raise ConfigError(f"batch {b} is larger than the training split "
                          f"({len(data.y_train)} samples)")
    result = TrainResult(net=plan.net.name, numerics="float32" if options.use_float else
                         "fixed16", options={**asdict(options), "net": plan.net.name},
                         stored_activation_bytes=stored_activation_bytes(plan, b))
    rng = np.random.default_rng(options.seed)
    for epoch in range(1, options.epochs + 1):
        order = rng.permutation(len(data.y_train))
        if epoch == 1 and not options.use_float:
            first = order[:b]
            result.calibration_passes = model.calibrate(data.x_train[first], data.y_train[first])
        model.lr = options.lr_at(epoch)
        result.history.append(_epoch(model, data, order, b, epoch, on_step))
        if on_epoch:
            on_epoch(result.history[-1])
    if not options.use_float:
        result.formats = model.formats.as_dict()
    return result


def _epoch(model, data, order, b, epoch, on_step):
    start = time.perf_counter()
    steps = len(order) // b
    loss = correct = sat = wraps = 0
    by_kind = []
    for i in range(steps):
        idx = order[i * b:(i + 1) * b]
        r = model.train_step(data.x_train[idx], data.y_train[idx])
        loss, correct = loss + r.loss, correct + r.correct
        sat, wraps = sat + r.saturations, wraps + r.wraps
        by_kind.append(r.saturations_by_kind)
        if on_step:
            on_step(i + 1, steps, r.loss)
    seconds = time.perf_counter() - start
    test_loss, test_correct = model.evaluate(data.x_test, data.y_test)
    return EpochRecord(epoch, loss / steps, correct / (steps * b), test_loss,
                       test_correct / len(data.y_test), sat, wraps, seconds,
                       _sum_counts(by_kind))


def _sum_counts(dicts):
    total = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total
