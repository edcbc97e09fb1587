"""``edgetrain bench refresh``: refreshes, stalls, violations and energy per refresh policy."""

from edgetrain.firmware.nets import NETS
from edgetrain.hw.config import REFRESH_POLICIES, load_config
from edgetrain.outputs import output_file, write_json
from edgetrain.progress import Progress, print_table
from edgetrain.sim.bench.refresh import SCHEDULES, bench_refresh
from edgetrain.sim.reference.lifetime import EnergyParams
from ._args import add_config, add_json

HELP = "compare eDRAM refresh policies on tile schedules of the digits nets"


def add_arguments(parser):
    add_json(parser)
    add_config(parser)
    parser.add_argument("--net", action="append", choices=sorted(NETS),
                        help="net to schedule (repeatable; default: all)")
    parser.add_argument("--energy", action="append", default=[], metavar="NAME=VALUE",
                        help="override an energy parameter (repeatable), e.g. refresh_pj=30")


def _schedules(net):
    return (("sequential", net), ("lifetime-aware", net["lifetime_aware"]))


def _policy_rows(doc):
    for name, net in doc["nets"].items():
        for schedule, res in _schedules(net):
            for p in REFRESH_POLICIES:
                c = res["policies"][p]
                red = res["reduction_vs_periodic"][p]
                yield [name, schedule, p, c["refreshes"],
                       "-" if p == "periodic" else f"{100 * red:.1f}%", c["stall_cycles"],
                       c["violations"], res["dram_rows"], c["energy_nj"]["total_nj"]]


def run(args):
    json_file = output_file(args.json)
    config = load_config(args.config)
    params = EnergyParams.with_overrides(args.energy)
    nets = args.net or sorted(NETS)
    with Progress(len(SCHEDULES) * len(nets), "refresh bench") as bar:
        doc = bench_refresh(config=config, nets=nets, params=params,
                            on_schedule=lambda net, s: bar.update(postfix=f"{net} {s}"))
    a = doc["assumptions"]
    print_table(list(_policy_rows(doc)), ["net", "schedule", "policy", "refreshes",
                                          "vs periodic", "stalls", "violations", "dram rows",
                                          "energy nJ"],
                title=f"eDRAM refresh per training sample: {a['array']} array at "
                      f"{a['clock_mhz']} MHz, retention {a['retention_cycles']} cycles "
                      f"({a['retention_us']:.2f} us), {a['buffer_rows']} rows x "
                      f"{a['row_bits']} bits in {a['banks']} banks")
    life = [[name, s, r["lifetimes"]["rows"], r["lifetimes"]["max"], r["lifetimes"]["mean"],
             r["lifetimes"]["at_least_retention"], r["rows_used"]]
            for name, net in doc["nets"].items() for s, r in _schedules(net)]
    print()
    print_table(life, ["net", "schedule", "row lives", "max", "mean", ">= retention",
                       "rows used"], title="row lifetimes (cycles)")
    if json_file:
        print(f"\nwrote {write_json(json_file, doc)}")
