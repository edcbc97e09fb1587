"""The build report: resources and per-clock Fmax from nextpnr, written as report.json.

``build_report`` reads nextpnr's ``--report`` JSON (and, for iCE40, counts LUTs and flip-flops
in the synthesised netlist, since an iCE40 logic cell holds one of each) and returns the dict
that ``edgetrain build`` writes to ``DIR/report.json``.
"""

import json
from collections import Counter
from pathlib import Path

from edgetrain.errors import ToolError
from edgetrain.progress import print_table

__all__ = ["build_report", "print_report", "worst_fmax_mhz", "RESOURCE_CELLS"]

# Report name -> nextpnr cell type, per FPGA family.
RESOURCE_CELLS = {
    "ecp5": {"LUTs": "TRELLIS_COMB", "FFs": "TRELLIS_FF", "DSPs": "MULT18X18D",
             "BRAMs": "DP16KD"},
    "ice40": {"LCs": "ICESTORM_LC", "DSPs": "ICESTORM_DSP", "BRAMs": "ICESTORM_RAM",
              "SPRAMs": "ICESTORM_SPRAM"},
}


def _netlist_cells(path):
    """Count the cell types of the top module of a Yosys JSON netlist."""
    modules = json.loads(Path(path).read_text())["modules"]
    top = next(m for m in modules.values() if m.get("attributes", {}).get("top"))
    return Counter(c["type"] for c in top["cells"].values())


def _resources(family, utilization, netlist):
    resources = {}
    for name, cell in RESOURCE_CELLS[family].items():
        u = utilization.get(cell, {"used": 0, "available": 0})
        resources[name] = {"used": u["used"], "total": u["available"]}
    if family == "ice40":
        cells = _netlist_cells(netlist)
        lcs = resources["LCs"]["total"]
        resources["LUTs"] = {"used": cells["SB_LUT4"], "total": lcs}
        resources["FFs"] = {"used": sum(n for t, n in cells.items() if t.startswith("SB_DFF")),
                            "total": lcs}
    return resources


def build_report(*, board, config, out_dir, name, stages, target_mhz):
    """Return the report dict of a finished build in ``out_dir`` (files ``name.*``)."""
    out_dir = Path(out_dir)
    try:
        pnr = json.loads((out_dir / f"{name}.report.json").read_text())
    except (OSError, ValueError) as e:
        raise ToolError(f"nextpnr's report {out_dir / (name + '.report.json')} is missing or "
                        f"unreadable ({e}); see {out_dir / (name + '.tim')}") from None
    family = "ecp5" if board.device.startswith("LFE5") else "ice40"
    fmax = {clk: {"achieved": round(v["achieved"], 2), "constraint": round(v["constraint"], 2)}
            for clk, v in pnr.get("fmax", {}).items()}
    return {
        "board": board.name,
        "device": board.device,
        "bitstream": board.bitstream,
        "resources": _resources(family, pnr["utilization"], out_dir / f"{name}.json"),
        "fmax_mhz": fmax,
        "target_mhz": target_mhz,
        "timing_met": all(v["achieved"] >= v["constraint"] for v in fmax.values()),
        "engine": {"tm": config.tm, "tn": config.tn},
        "memory": board.memory_note,
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "build_seconds": round(sum(stages.values()), 1),
        "config": config.to_dict(),
    }


def worst_fmax_mhz(report):
    """Return the lowest achieved frequency over the clocks of a build report."""
    return min(v["achieved"] for v in report["fmax_mhz"].values())


def print_report(report, stream=None):
    """Print the short text table of a build report."""
    rows = [(name, r["used"], r["total"],
             f"{100 * r['used'] / r['total']:.1f}%" if r["total"] else "-")
            for name, r in report["resources"].items()]
    print_table(rows, ["resource", "used", "total", "use"], stream=stream,
                title=f"{report['board']} ({report['device']}): {report['bitstream']}")
    rows = [(clk, v["achieved"], v["constraint"],
             "PASS" if v["achieved"] >= v["constraint"] else "FAIL")
            for clk, v in report["fmax_mhz"].items()]
    print_table(rows, ["clock", "fmax MHz", "target MHz", ""], stream=stream)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report["stage_seconds"].items())
    print(f"build time {report['build_seconds']:.1f}s ({stages})", file=stream)
