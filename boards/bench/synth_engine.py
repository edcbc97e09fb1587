"""Benchmark: ECP5-85F synthesis of the conv engine (with its buffers), out of context.

``synth_engine`` writes the engine's Verilog, runs Yosys ``synth_ecp5`` and nextpnr-ecp5
(``--85k --package CABGA381 --out-of-context``) and returns LUTs, FFs, DSPs (MULT18X18D),
BRAMs (DP16KD), Fmax and the whole routed critical path; ``OUT/report.json`` holds them.
The tools come from ``YOSYS`` / ``NEXTPNR_ECP5`` (default: the YoWASP wheels in this venv).
``block`` synthesises one part of the tile alone (the PE array, the master-weight buffer)
to tell which part limits the clock. ``dsp="infer"`` leaves the multipliers to Yosys (a
MULT18X18D without its registers, operand and product flip-flops in the fabric) instead of
the PE array's own MULT18X18D instances; ``nextpnr_opts`` appends arguments to nextpnr's
command line (a seed, ``--router2-heatmap PREFIX``, ``--placer-heap-beta 0.7``, ...).
"""

import json
import re
import shlex
import subprocess
import time
from pathlib import Path

from amaranth.back import verilog

from edgetrain.errors import ConfigError, ToolError
from edgetrain.hw.buffers.memport import SRAMBuffer
from edgetrain.hw.engine.pe_array import PEArray
from edgetrain.hw.engine.tile import ConvEngineTile
from edgetrain.hw.engine.updater import master_depth, master_port_shape
from edgetrain.outputs import output_dir, write_json, write_text
from ..build import tool_command, tool_environment
from ..platforms import ULX3S85FPlatform

__all__ = ["RESOURCES", "BLOCKS", "ROUTERS", "DSPS", "synth_engine"]

RESOURCES = {"LUTs": "TRELLIS_COMB", "FFs": "TRELLIS_FF", "DSPs": "MULT18X18D",
             "BRAMs": "DP16KD"}
BLOCKS = ("tile", "pe", "mst-buffer")
ROUTERS = ("router1", "router2")
DSPS = ("instance", "infer")


def _run(cmd, log):
    """Run ``cmd`` with its output in ``log``; return (exit code, seconds)."""
    t = time.monotonic()
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    return code, time.monotonic() - t


def _checked(cmd, log):
    """Run ``cmd`` as ``_run`` does; raise ``ToolError`` if it fails; return the seconds."""
    code, seconds = _run(cmd, log)
    if code:
        raise ToolError(f"{Path(cmd[0]).name} failed (exit {code}); see {log}")
    return seconds


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


def _synthesise(yosys, src, out_dir, note):
    """Run ``synth_ecp5``; return (seconds, LUT mapper).

    The YoWASP build of ABC9 (``synth_ecp5``'s LUT mapper) exits with code 1 on some designs
    (the 4x4 engine tile, for one). Then the same script runs again with plain ``abc -lut
    4:7`` in its ``map_luts`` step, and the report says so.
    """
    json_out = out_dir / "engine_tile.json"
    code, seconds = _run([yosys, "-q", "-p", f"read_verilog {src}; synth_ecp5 -top "
                          f"engine_tile -json {json_out}"], out_dir / "yosys.log")
    if code == 0:
        return seconds, "abc9"
    note("ABC9 failed (see yosys.log); mapping LUTs with abc -lut 4:7")
    script = (f"read_verilog {src}; synth_ecp5 -top engine_tile -run :map_luts; "
              f"techmap -map +/lattice/latches_map.v; abc -lut 4:7; clean; "
              f"synth_ecp5 -top engine_tile -run map_cells: -json {json_out}")
    return _checked([yosys, "-q", "-p", script], out_dir / "yosys-abc.log"), "abc -lut 4:7"


def _block(cfg, block):
    """Return the component to synthesise: the whole tile or one part of it alone."""
    if block == "pe":
        return PEArray(tm=cfg.tm, tn=cfg.tn, acc_bits=cfg.acc_bits)
    if block == "mst-buffer":
        return SRAMBuffer(depth=master_depth(cfg), data_bits=master_port_shape(cfg)[1])
    return ConvEngineTile(config=cfg)


def synth_engine(cfg, out_dir, *, freq=125.0, block="tile", router="router2", dsp="instance",
                 nextpnr_opts="", note=print):
    """Synthesise, place and route ``block`` of ``cfg`` into ``out_dir``; write and return
    the report dict. ``note(text)`` hears of a fallback on the way."""
    for name, value, choices in (("block", block, BLOCKS), ("router", router, ROUTERS),
                                 ("dsp", dsp, DSPS)):
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    out_dir = output_dir(out_dir)
    env = tool_environment()
    yosys, nextpnr = (tool_command([t], env)[0] for t in ("yosys", "nextpnr-ecp5"))
    # Elaborated for the ULX3S's ECP5 as a board build is (vendor DSP primitives included),
    # unless the multipliers are left to Yosys.
    platform = ULX3S85FPlatform() if dsp == "instance" else None
    src = write_text(out_dir / "engine_tile.v",
                     verilog.convert(_block(cfg, block), name="engine_tile", emit_src=False,
                                     platform=platform))
    t_syn, mapper = _synthesise(yosys, src, out_dir, note)
    t_pnr = _checked([nextpnr, "--85k", "--package", "CABGA381", "--freq", str(freq),
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
