"""``edgetrain train``: train a network on the digits data set with a chosen backend."""

import importlib.util

from edgetrain.errors import ConfigError, ToolError
from edgetrain.firmware.netfile import load_net_file
from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json, writing
from edgetrain.progress import Progress
from edgetrain.sim.golden.numerics import ROUNDING_MODES
from edgetrain.sim.golden.train import EpochRecord, TrainOptions, check_options, train
from edgetrain.sim.train_rtl import train_sim
from ._args import add_config, add_seed, fraction, positive_float, positive_int

HELP = ("train a network on digits: the golden fixed-point model (or its float32 twin), or the "
        "accelerator's programs on the instruction-level model or the simulated RTL")

#: golden: ``FixedNet`` / ``FloatNet``; iss: the compiled programs on the instruction-level
#: model; sim: the compiled programs on the generated accelerator in Verilator.
BACKENDS = ("golden", "iss", "sim")
CHECKS = ("every", "end", "none")
DEFAULTS = TrainOptions()


def add_arguments(parser):
    parser.add_argument("--backend", default="golden", choices=BACKENDS,
                        help="where training runs (default golden)")
    parser.add_argument("--net", default=DEFAULTS.net,
                        help="net name (digits-cnn, digits-revnet) or a .toml net file")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs,
                        help=f"epochs (default {DEFAULTS.epochs})")
    parser.add_argument("--batch", type=positive_int, default=DEFAULTS.batch,
                        help=f"batch size (default {DEFAULTS.batch})")
    parser.add_argument("--rounding", default=DEFAULTS.rounding, choices=ROUNDING_MODES,
                        help=f"rounding of fixed-point results (default {DEFAULTS.rounding})")
    add_seed(parser, DEFAULTS.seed, help="seed of init and order")
    parser.add_argument("--lr", type=positive_float, default=DEFAULTS.lr,
                        help=f"learning rate (default {DEFAULTS.lr}; /10 for the last "
                             f"quarter of the epochs)")
    parser.add_argument("--momentum", type=fraction, default=DEFAULTS.momentum,
                        help=f"momentum (default {DEFAULTS.momentum})")
    parser.add_argument("--float", dest="use_float", action="store_true",
                        help="train the float32 twin instead of 16-bit fixed point")
    parser.add_argument("--steps", type=positive_int,
                        help="stop after this many training steps (iss and sim backends; "
                             "the epoch it ends in is evaluated)")
    parser.add_argument("--check", default="none", choices=CHECKS,
                        help="iss and sim backends: compare masters, velocities, compute "
                             "copies and formats with the golden trainer after every step, "
                             "after the last one, or not at all (default none)")
    add_config(parser, help="accelerator config TOML the net must fit (default config)")
    parser.add_argument("--metrics", metavar="FILE", help="write metrics JSON to this file")
    parser.add_argument("--plot", metavar="FILE.png", help="write loss/accuracy curves (PNG)")


def run(args):
    net = load_net_file(args.net) if args.net.endswith(".toml") else args.net
    options = TrainOptions(net=net, epochs=args.epochs, batch=args.batch,
                           rounding=args.rounding, seed=args.seed, lr=args.lr,
                           momentum=args.momentum, use_float=args.use_float)
    config = load_config(args.config)
    plan = check_options(options, config)
    if args.backend == "golden" and (args.steps or args.check != "none"):
        raise ConfigError("--steps and --check need --backend iss or sim (the golden "
                          "trainer runs whole epochs and is what they check against)")
    if args.backend != "golden" and options.use_float:
        raise ConfigError(f"--float trains the float32 twin, which only --backend golden has; "
                          f"drop --float or use --backend golden")
    metrics, plot = output_file(args.metrics), output_file(args.plot)
    if plot and importlib.util.find_spec("matplotlib") is None:
        raise ToolError("--plot needs matplotlib: pip install 'edgetrain[plot]'")
    numerics = "float32" if options.use_float else f"fixed16, {options.rounding} rounding"
    print(f"training {plan.net.name} on digits: {numerics}, {options.epochs} epochs, "
          f"batch {options.batch}, lr {options.lr} (/10 after epoch "
          f"{options.full_lr_epochs}), momentum {options.momentum}, seed {options.seed}")
    if args.backend == "golden":
        _print_header()
        with _TrainingBar(options.epochs) as bar:
            result = train(options, config=config, on_step=bar.on_step, on_epoch=_print_epoch)
        _report(result)
        out = result.to_json()
    else:
        out = _train_accel(args, options, config, plan)
    if metrics:
        print(f"metrics: {write_json(metrics, out)}")
    if plot:
        print(f"plot: {_plot(result, plot)}")


def _train_accel(args, options, config, plan):
    """Train on the instruction-level model or the simulated RTL; return the metrics."""
    from edgetrain.sim.driver import preflight

    preflight(config, plan, options)        # a net or batch the compiler refuses: one line
    where = {"iss": "the instruction-level model", "sim": "the accelerator in Verilator"}
    print(f"running every forward, backward and update program on {where[args.backend]} "
          f"({config.tm}x{config.tn}), check {args.check}")
    _print_header()
    with Progress(args.steps or 1, f"training ({args.backend})") as bar:
        def on_step(done, total, loss):
            bar.total = total
            bar.update(postfix=f"step {done}/{total}, loss {loss:.3f}")
        net_file = args.net if args.net.endswith(".toml") else None
        if args.backend == "iss":
            out = _train_iss(options, config, plan, args, on_step)
        else:
            out = train_sim(options, config, steps=args.steps, check=args.check,
                            net_file=net_file, on_step=on_step)
    for r in out["history"]:
        _print_epoch(EpochRecord(**r))
    print(f"{out['steps']} steps in {out['wall_seconds']:.1f} s wall "
          f"({out['wall_seconds'] / max(out['steps'], 1):.2f} s per step with evaluation); "
          f"checked against the golden trainer: {out['checked_steps']} steps, bit-exact")
    if "cycles_per_step" in out:
        util = ", ".join(f"{k} {100 * v:.1f}%" for k, v in out["utilization"].items())
        print(f"cycles per step: {out['cycles_per_step']:,.0f}; PE utilization: {util}; "
              f"refreshes: {out['refreshes']:,}")
    print(f"final test accuracy: {100 * out['test_accuracy']:.2f}% ({out['net']}, fixed16 "
          f"on {args.backend})")
    return out


def _train_iss(options, config, plan, args, on_step):
    import asyncio
    from edgetrain.sim.driver import IssTarget, step_memory, train_on_target

    memory = step_memory(config, plan.net, options.batch)
    result = asyncio.run(train_on_target(options, config, IssTarget(config, memory.mem_bytes),
                                         memory, steps=args.steps, check=args.check,
                                         on_step=on_step))
    return result.to_json()


class _TrainingBar(Progress):
    """One bar over every step of every epoch, fed by ``train``'s ``on_step`` callback."""

    def __init__(self, epochs):
        super().__init__(epochs, "training")
        self.epochs, self.epoch = epochs, 0

    def on_step(self, done, steps, loss):
        if done == 1:
            self.epoch += 1
            self.total = self.epochs * steps
        self.update(postfix=f"epoch {self.epoch}/{self.epochs}, loss {loss:.3f}")


EPOCH_COLUMNS = ("epoch", "train loss", "train acc", "test loss", "test acc", "saturations",
                 "wraps", "seconds")
_WIDTHS = (5, 10, 9, 9, 8, 11, 6, 7)


def _print_row(cells):
    """Print one row of the per-epoch results as training goes (a rich table would wait
    for the last epoch)."""
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
    with writing(path):
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
