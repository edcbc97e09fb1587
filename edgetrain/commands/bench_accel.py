"""``edgetrain bench accel``: whole layers on the accelerator, DRAM to DRAM, loads included."""

import importlib.util
import sys
import time

from edgetrain.errors import ToolError
from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json, writing
from edgetrain.progress import print_table
from edgetrain.sim.bench.accel import bench_accel, layer_sets
from ._args import add_build_dir, add_config, add_json, add_seed, add_simulator, name_list

HELP = ("measure whole layers on the accelerator from start to done: utilization with every "
        "load and store, DMA busy, token waits, refreshes (cocotb, golden-checked)")

QUEUES = ("load", "compute", "store")


def add_arguments(parser):
    add_simulator(parser, default="verilator")
    add_config(parser)
    parser.add_argument("--sets", type=name_list(tuple(layer_sets()), "layer set"),
                        help=f"comma-separated layer sets (default: all of "
                             f"{', '.join(layer_sets())})")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="draw the three queues over time (busy, waiting for a token) "
                             "with the refreshes under them")
    add_seed(parser, 1)
    add_json(parser)
    add_build_dir(parser)


def run(args):
    json_file, plot = output_file(args.json), output_file(args.plot)
    if plot and importlib.util.find_spec("matplotlib") is None:
        raise ToolError("--plot needs matplotlib: pip install 'edgetrain[plot]'")
    cfg = load_config(args.config)
    t0 = time.monotonic()
    try:
        doc = bench_accel(simulator=args.simulator, config=cfg, build_dir=args.build_dir,
                          sets=args.sets, seed=args.seed)
    except AssertionError as e:
        print(f"edgetrain: a layer mismatched the golden model or did not finish during the "
              f"benchmark ({e}); run `edgetrain sim accel` to investigate", file=sys.stderr)
        return 1
    for name, s in doc["sets"].items():
        print_table([[r["name"], r["mode"], r["tiles"], r["cycles"],
                      _percent(r["model_error"], signed=True),
                      f"{100 * r['utilization']:.2f}%", f"{100 * r['dma_bound']:.0f}%",
                      f"{100 * r['compute_busy']:.1f}%",
                      f"{100 * r['dma_busy']['load']:.1f}%",
                      f"{100 * r['dma_busy']['store']:.1f}%",
                      f"{100 * r['wait']['compute']:.1f}%", r["refreshes"]]
                     for r in s["layers"]],
                    ["layer", "phase", "tiles", "cycles", "model", "utilization", "bus need",
                     "compute busy",
                     "load busy", "store busy", "compute waits", "refreshes"],
                    title=f"{name} set on the {cfg.tm}x{cfg.tn} accelerator "
                          f"({args.simulator}, start to done, loads and stores included)")
        print(f"{name}: utilization " + ", ".join(
            f"{p} {100 * u:.2f}%" for p, u in s["utilization"].items()))
        errors = [abs(r["model_error"]) for r in s["layers"] if r["model_error"] is not None]
        if errors:
            print(f"{name}: planner cycles within {100 * max(errors):.2f}% of the RTL's on "
                  f"every layer (mean {100 * sum(errors) / len(errors):.2f}%)")
    for net, runs in doc["refresh"].items():
        print_table([[net, f["policy"], f["schedule"], f["runs"], f["tiles"], f["cycles"],
                      _percent(f["predicted"] / f["cycles"] - 1, signed=True), f["refreshes"],
                      "-" if f["fewer_than_periodic"] is None or f["policy"] == "periodic"
                      else f"{100 * f['fewer_than_periodic']:.1f}%",
                      f["stall_cycles"], f["violations"], f["wrong_layers"]]
                     for f in runs.values()],
                    ["net", "policy", "schedule", "layers", "tiles", "cycles", "model",
                     "refreshes",
                     "fewer than periodic", "stalls", "violations", "wrong layers"],
                    title=f"refreshes of ACT and OUT on the accelerator's own trace ({net} "
                          f"convs of a training step, start to done; fewer than periodic on "
                          f"the same schedule)")
    print(f"every result checked against the golden model: 0 mismatches, but for the "
          f"refresh runs made to lose data (their wrong layers) "
          f"({time.monotonic() - t0:.0f} s)")
    if json_file:
        print(f"wrote {write_json(json_file, doc)}")
    if plot:
        print(f"plot: {_plot(doc, plot)}")
    return 0


def _percent(value, *, signed=False):
    return "-" if value is None else f"{100 * value:{'+' if signed else ''}.2f}%"


def _intervals(run):
    """(start, end, {queue: (busy, wait) fractions}, refreshes) between timeline samples."""
    points = [{"cycle": 0, "queues": {q: {"busy": 0, "wait": 0} for q in QUEUES},
               "refreshes": 0}, *run["timeline"],
              {"cycle": run["cycles"], "queues": run["queues"], "refreshes": run["refreshes"]}]
    for a, b in zip(points, points[1:]):
        span = b["cycle"] - a["cycle"]
        if span <= 0:
            continue
        yield (a["cycle"], b["cycle"],
               {q: tuple((b["queues"][q][k] - a["queues"][q][k]) / span
                         for k in ("busy", "wait")) for q in QUEUES},
               b["refreshes"] - a["refreshes"])


def _plot(doc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = doc["sets"]
    fig, axes = plt.subplots(2 * len(sets), 1, figsize=(12, 3.2 * len(sets)),
                             gridspec_kw={"height_ratios": [3, 1] * len(sets)}, squeeze=False)
    colors = {"load": "tab:blue", "compute": "tab:green", "store": "tab:orange"}
    for i, (name, s) in enumerate(sets.items()):
        ax, rax = axes[2 * i][0], axes[2 * i + 1][0]
        offset = 0
        for r in s["layers"]:
            for start, end, frac, refreshes in _intervals(r):
                x0, width = offset + start, end - start
                for row, q in enumerate(reversed(QUEUES)):
                    busy, wait = frac[q]
                    ax.bar(x0, 0.8 * busy, width, bottom=row, align="edge",
                           color=colors[q], linewidth=0)
                    ax.bar(x0, 0.8 * wait, width, bottom=row + 0.8 * busy, align="edge",
                           color="tab:red", alpha=0.5, linewidth=0)
                rax.bar(x0, refreshes, width, align="edge", color="tab:purple", linewidth=0)
            ax.axvline(offset, color="grey", linewidth=0.5)
            ax.text(offset, len(QUEUES) + 0.05, f"{r['mode']}", fontsize=6, rotation=90,
                    va="bottom")
            offset += r["cycles"]
        util = ", ".join(f"{p} {100 * u:.1f}%" for p, u in s["utilization"].items())
        ax.set(yticks=[row + 0.4 for row in range(len(QUEUES))],
               yticklabels=list(reversed(QUEUES)), xlim=(0, offset), ylim=(0, len(QUEUES) + 0.9),
               title=f"{name} set: queues busy (colour) and waiting for a token (red); "
                     f"utilization {util}")
        rax.set(xlim=(0, offset), ylabel="refreshes", xlabel="cycles (layers one after another)")
    fig.tight_layout()
    with writing(path):
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
