"""``edgetrain train``: train a network on the digits data set with a chosen backend."""

import math
from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.progress import Progress, write_json

HELP = "train a network on digits (golden fixed-point model, or its float32 twin)"

BACKENDS = ("golden",)


def add_arguments(parser):
    parser.add_argument("--backend", default="golden",
                        help=f"where training runs: {', '.join(BACKENDS)} (default golden)")
    parser.add_argument("--net", default="digits-cnn",
                        help="net name (digits-cnn, digits-revnet) or a .toml net file")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 20)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 32)")
    parser.add_argument("--rounding", default=None,
                        help="stochastic or nearest (default stochastic)")
    parser.add_argument("--seed", type=int, default=None, help="seed of init and order (0)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 0.02; /10 for the last quarter of the epochs)")
    parser.add_argument("--momentum", type=float, default=None, help="momentum (default 0.9)")
    parser.add_argument("--float", dest="use_float", action="store_true",
                        help="train the float32 twin instead of 16-bit fixed point")
    parser.add_argument("--config", default=None,
                        help="accelerator config TOML the net must fit (default config)")
    parser.add_argument("--metrics", default=None, help="write metrics JSON to this file")
    parser.add_argument("--plot", default=None, help="write loss/accuracy curves (PNG)")


def options_from_args(args):
    """Return ``TrainOptions`` from parsed arguments (unset ones keep their defaults)."""
    from edgetrain.firmware.netfile import load_net_file
    from edgetrain.sim.golden.train import TrainOptions

    if args.backend not in BACKENDS:
        raise ConfigError(f"backend {args.backend!r} is not available; choose from "
                          f"{', '.join(BACKENDS)}")
    net = load_net_file(args.net) if args.net.endswith(".toml") else args.net
    given = {k: getattr(args, k) for k in ("epochs", "batch", "rounding", "seed", "lr",
                                            "momentum")}
    return TrainOptions(net=net, use_float=args.use_float,
                        **{k: v for k, v in given.items() if v is not None})


def run(args):
    from edgetrain.hw.config import load_config
    from edgetrain.sim.golden.train import check_options, train

    options = options_from_args(args)
    config = load_config(args.config)
    plan = check_options(options, config)
    numerics = "float32" if options.use_float else f"fixed16, {options.rounding} rounding"
    drop = math.ceil(options.lr_drop * options.epochs)
    print(f"training {plan.net.name} on digits: {numerics}, {options.epochs} epochs, "
          f"batch {options.batch}, lr {options.lr} (/10 after epoch {drop}), "
          f"momentum {options.momentum}, seed {options.seed}")
    bars = _EpochBars()
    _print_header()
    result = train(options, config=config, on_step=bars.on_step, on_epoch=_print_epoch)
    _report(result)
    if args.metrics:
        print(f"metrics: {write_json(args.metrics, result.to_json())}")
    if args.plot:
        print(f"plot: {_plot(result, args.plot)}")


class _EpochBars:
    """One progress bar per epoch (stderr), fed by ``train``'s ``on_step`` callback."""

    def __init__(self):
        self.bar, self.epoch = None, 0

    def on_step(self, done, total, loss):
        if done == 1:
            self.epoch += 1
            self.bar = Progress(total, f"epoch {self.epoch}").__enter__()
        self.bar.update(postfix=f"loss {loss:.3f}")
        if done == total:
            self.bar.__exit__(None, None, None)


EPOCH_COLUMNS = ("epoch", "train loss", "train acc", "test loss", "test acc", "saturations",
                 "wraps", "seconds")
_WIDTHS = (5, 10, 9, 9, 8, 11, 6, 7)


def _print_row(cells):
    print("  ".join(str(c).rjust(w) for c, w in zip(cells, _WIDTHS)), flush=True)


def _print_header():
    _print_row(EPOCH_COLUMNS)
    _print_row("-" * w for w in _WIDTHS)


def _print_epoch(r):
    _print_row((r.epoch, f"{r.train_loss:.4f}", f"{100 * r.train_accuracy:.1f}%",
                f"{r.test_loss:.4f}", f"{100 * r.test_accuracy:.1f}%", r.saturations, r.wraps,
                f"{r.seconds:.2f}"))


def _report(result):
    act = result.stored_activation_bytes
    print(f"stored activations: {act['per_sample']:g} bytes/sample, "
          f"{act['batch_total']:g} bytes per batch of {act['batch']}")
    if result.numerics == "fixed16":
        print(f"formats after training (frac bits): {_formats_line(result.formats)}")
    print(f"final test accuracy: {100 * result.test_accuracy:.2f}% "
          f"({result.net}, {result.numerics})")


def _formats_line(formats):
    return ", ".join(f"{k}={v}" for k, v in sorted(formats.items()))


def _plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r.epoch for r in result.history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(ep, [r.train_loss for r in result.history], label="train")
    ax1.plot(ep, [r.test_loss for r in result.history], label="test")
    ax1.set(xlabel="epoch", ylabel="loss", yscale="log", title=f"{result.net} loss")
    ax2.plot(ep, [r.train_accuracy for r in result.history], label="train")
    ax2.plot(ep, [r.test_accuracy for r in result.history], label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy", title=f"{result.numerics}")
    for ax in (ax1, ax2):
        ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
