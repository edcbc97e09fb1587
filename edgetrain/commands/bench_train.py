"""``edgetrain bench train``: wall time of one epoch of golden training on digits."""

import time

from edgetrain.progress import print_table, write_json

HELP = "measure the wall time of one epoch of golden training on digits"

VARIANTS = (("digits-cnn", "stochastic", False), ("digits-cnn", "nearest", False),
            ("digits-cnn", None, True), ("digits-revnet", "stochastic", False),
            ("digits-revnet", None, True))
GOAL_SECONDS = 5.0


def add_arguments(parser):
    parser.add_argument("--json", default=None, help="write the measurements to this file")
    parser.add_argument("--repeat", type=int, default=1,
                        help="epochs per variant; the fastest is reported (default 1)")


def run(args):
    from edgetrain.errors import ConfigError
    from edgetrain.sim.golden.digits import load_digits_split
    from edgetrain.sim.golden.train import TrainOptions, train

    if args.repeat < 1:
        raise ConfigError(f"--repeat must be a positive integer, not {args.repeat!r}")
    data = load_digits_split()
    rows, results = [], []
    for net, rounding, use_float in VARIANTS:
        opts = TrainOptions(net=net, epochs=args.repeat, rounding=rounding or "stochastic",
                            use_float=use_float)
        start = time.perf_counter()
        res = train(opts, data=data)
        total = time.perf_counter() - start
        epoch = min(r.seconds for r in res.history)
        numerics = res.numerics + (f" {rounding}" if rounding else "")
        steps = len(data.y_train) // opts.batch
        results.append({"net": net, "numerics": numerics, "epoch_seconds": epoch,
                        "steps": steps, "ms_per_step": 1000 * epoch / steps,
                        "total_seconds_with_setup_and_eval": total,
                        "within_goal": epoch < GOAL_SECONDS})
        rows.append((net, numerics, round(epoch, 3), round(1000 * epoch / steps, 1),
                     "yes" if epoch < GOAL_SECONDS else "NO"))
    print_table(rows, ("net", "numerics", "epoch s", "ms/step", f"< {GOAL_SECONDS:g} s"),
                title=f"one epoch of golden training on digits (batch 32, "
                      f"{len(data.y_train)} training images)")
    if args.json:
        write_json(args.json, {"goal_seconds": GOAL_SECONDS, "batch": 32,
                               "train_samples": len(data.y_train), "results": results})
        print(f"json: {args.json}")
