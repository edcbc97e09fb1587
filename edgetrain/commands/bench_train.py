"""``edgetrain bench train``: wall time of one epoch of golden training on digits."""

from edgetrain.outputs import output_file, write_json
from edgetrain.progress import Progress, print_table
from edgetrain.sim.bench import train as bench
from ._args import add_json, positive_int

HELP = "measure the wall time of one epoch of golden training on digits"


def add_arguments(parser):
    add_json(parser)
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="epochs per variant; the fastest is reported (default 1)")


def run(args):
    json_file = output_file(args.json)
    with Progress(len(bench.VARIANTS), "bench train") as bar:
        doc = bench.bench_train(repeat=args.repeat,
                                on_variant=lambda done, total: bar.update())
    goal = doc["goal_seconds"]
    print_table([(r["net"], r["numerics"], round(r["epoch_seconds"], 3),
                  round(r["ms_per_step"], 1), "yes" if r["within_goal"] else "NO")
                 for r in doc["results"]],
                ("net", "numerics", "epoch s", "ms/step", f"< {goal:g} s"),
                title=f"one epoch of golden training on digits (batch {doc['batch']}, "
                      f"{doc['train_samples']} training images)")
    if json_file:
        print(f"json: {write_json(json_file, doc)}")
