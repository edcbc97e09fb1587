"""``edgetrain plan``: the planner's per-layer plan of a training step, without a simulator."""

from edgetrain.firmware.netfile import load_net_file
from edgetrain.firmware.nets import get_net
from edgetrain.firmware.planner import plan_step
from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json
from edgetrain.progress import print_table
from ._args import add_config, add_json, positive_int

HELP = ("plan a training step on the accelerator: per program (layer and phase) the predicted "
        "cycles, utilization, DRAM traffic, buffer lifetimes and refreshes per policy")


def add_arguments(parser):
    parser.add_argument("--net", default="digits-cnn",
                        help="net name (digits-cnn, digits-revnet) or a .toml net file "
                             "(default digits-cnn)")
    add_config(parser)
    parser.add_argument("--batch", type=positive_int, default=8,
                        help="batch size (default 8)")
    add_json(parser, help="write the plan as JSON to FILE (layers, step_cycles, totals)")


def run(args):
    json_file = output_file(args.json)
    cfg = load_config(args.config)
    net = load_net_file(args.net) if args.net.endswith(".toml") else get_net(args.net)
    rounding = "stochastic" if cfg.stochastic_rounding else "nearest"
    plan = plan_step(cfg, net, args.batch, rounding=rounding)
    print_table([[p.layer, p.phase, p.tiles, p.cycles,
                  f"{100 * p.busy['compute'] / p.cycles:.1f}%",
                  f"{100 * p.utilization:.1f}%", p.dram_bytes, _longest(p),
                  _count(p.refreshes["periodic"]), _count(p.refreshes["live"]),
                  p.expiring_rows] for p in plan.layers],
                ["layer", "phase", "tiles", "cycles", "compute busy", "utilization",
                 "DRAM bytes", "longest life", "periodic", "live", "expiring rows"],
                title=f"{net.name} training step at batch {args.batch} on the {cfg.tm}x{cfg.tn} "
                      f"accelerator (planner model; refreshes of act, wgt and out per policy, "
                      f"retention {cfg.retention_cycles} cycles)")
    totals = plan.totals()
    print(f"step: {totals['step_cycles']} cycles, {totals['macs']} MACs "
          f"({100 * totals['macs'] / (totals['step_cycles'] * cfg.tm * cfg.tn):.1f}% "
          f"utilization), {totals['dram_bytes']} DRAM bytes; refreshes periodic "
          f"{_count(totals['refreshes']['periodic'])}, live "
          f"{_count(totals['refreshes']['live'])}, lifetime 0 with "
          f"{totals['expiring_rows']} rows held past the retention")
    if json_file:
        print(f"wrote {write_json(json_file, plan.as_dict())}")
    return 0


def _longest(p):
    """The longest lifetime of the program's buffered data and its buffer."""
    buffer, life = max(((b, v["max"]) for b, v in p.lifetimes.items()), key=lambda x: x[1])
    return f"{life} ({buffer})"


def _count(n):
    return "-" if n is None else n
