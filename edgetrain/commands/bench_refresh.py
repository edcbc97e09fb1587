"""``edgetrain bench refresh``: refreshes, stalls, violations and energy per refresh policy."""

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import NETS, get_net
from edgetrain.hw.buffers.edram import live_threshold
from edgetrain.hw.config import REFRESH_POLICIES, load_config
from edgetrain.progress import Progress, print_table, write_json
from edgetrain.sim.reference.lifetime import (
    CAMEL_CLOCK_MHZ,
    ArrayModel,
    EnergyParams,
    analyse,
    energy,
    row_lifetimes,
    schedule_trace,
    training_schedule)

HELP = "compare eDRAM refresh policies on tile schedules of the digits nets"

#: Cycles the lifetime-aware schedule keeps below the live threshold, for timeline slack.
SPILL_MARGIN = 128


def add_arguments(parser):
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--config", metavar="TOML", help="accelerator config (default: built-in)")
    parser.add_argument("--net", action="append", choices=sorted(NETS),
                        help="net to schedule (repeatable; default: all)")
    parser.add_argument("--energy", action="append", default=[], metavar="NAME=VALUE",
                        help="override an energy parameter (repeatable), e.g. refresh_pj=30")


def bench(*, config, nets, params, progress=None):
    """Return the benchmark results (the JSON document) for ``nets`` under ``config``."""
    depth, banks = config.input_depth, config.edram_banks
    retention = config.retention_cycles
    array = ArrayModel(tm=config.tm, tn=config.tn)
    row_bits = config.tn * config.data_bits
    spill_after = live_threshold(depth // banks, retention) - SPILL_MARGIN
    doc = {"assumptions": {
        "array": f"{array.tm}x{array.tn}", "clock_mhz": CAMEL_CLOCK_MHZ,
        "retention_cycles": retention, "retention_us": retention / CAMEL_CLOCK_MHZ,
        "buffer_rows": depth, "banks": banks, "row_bits": row_bits,
        "spill_after_cycles": spill_after, "energy": vars(params)}, "nets": {}}
    for name in nets:
        plan = training_schedule(get_net(name), array)
        result = {}
        for schedule, spill in (("sequential", None), ("lifetime_aware", spill_after)):
            trace, rows, spilled = schedule_trace(plan, spill_after=spill)
            if rows > depth:
                raise ConfigError(f"net {name!r} needs {rows} buffer rows but input_depth is "
                                  f"{depth}; raise input_depth")
            counts = analyse(trace, depth=depth, banks=banks, retention_cycles=retention,
                             data_bits=row_bits)
            for c in counts.values():
                c["energy_nj"] = energy(c, accesses=c["accesses"], depth=depth,
                                        row_bits=row_bits, dram_rows=2 * spilled,
                                        params=params)
            life = row_lifetimes(trace)
            periodic = counts["periodic"]["refreshes"]
            result[schedule] = {
                "rows_used": rows, "dram_rows": 2 * spilled, "accesses": len(trace),
                "lifetimes": {"rows": len(life.values), "max": life.max,
                              "mean": round(life.mean, 1),
                              "at_least_retention": life.at_least(retention)},
                "policies": counts,
                "reduction_vs_periodic": {
                    p: round(1 - c["refreshes"] / periodic, 4) if periodic else None
                    for p, c in counts.items()},
            }
            if progress:
                progress.update(postfix=f"{name} {schedule}")
        doc["nets"][name] = {**result["sequential"], "lifetime_aware": result["lifetime_aware"]}
    return doc


def _rows(doc):
    for name, net in doc["nets"].items():
        for schedule, res in (("sequential", net), ("lifetime-aware", net["lifetime_aware"])):
            for p in REFRESH_POLICIES:
                c = res["policies"][p]
                red = res["reduction_vs_periodic"][p]
                yield [name, schedule, p, c["refreshes"],
                       "-" if p == "periodic" else f"{100 * red:.1f}%", c["stall_cycles"],
                       c["violations"], res["dram_rows"], c["energy_nj"]["total_nj"]]


def run(args):
    config = load_config(args.config)
    params = EnergyParams.with_overrides(args.energy)
    nets = args.net or sorted(NETS)
    with Progress(2 * len(nets), "refresh bench") as progress:
        doc = bench(config=config, nets=nets, params=params, progress=progress)
    a = doc["assumptions"]
    print_table(list(_rows(doc)), ["net", "schedule", "policy", "refreshes", "vs periodic",
                                   "stalls", "violations", "dram rows", "energy nJ"],
                title=f"eDRAM refresh per training sample: {a['array']} array at "
                      f"{a['clock_mhz']} MHz, retention {a['retention_cycles']} cycles "
                      f"({a['retention_us']:.2f} us), {a['buffer_rows']} rows x "
                      f"{a['row_bits']} bits in {a['banks']} banks")
    life = [[name, s, r["lifetimes"]["rows"], r["lifetimes"]["max"], r["lifetimes"]["mean"],
             r["lifetimes"]["at_least_retention"], r["rows_used"]]
            for name, net in doc["nets"].items()
            for s, r in (("sequential", net), ("lifetime-aware", net["lifetime_aware"]))]
    print()
    print_table(life, ["net", "schedule", "row lives", "max", "mean", ">= retention",
                       "rows used"], title="row lifetimes (cycles)")
    if args.json:
        write_json(args.json, doc)
        print(f"\nwrote {args.json}")
