# amaranth: UnusedElaboratable=no
"""Place and route one arithmetic unit alone on an ECP5 to measure its Fmax and size.

``FmaxShell`` wraps any component so that synthesis cannot simplify it and the chip's pins
suffice: every input port is fed from one long shift register loaded serially from pin
``din``, and every output port is registered and xor-reduced (in two registered levels) into
pin ``dout``. The shell's own paths are short, so the reported Fmax is the unit's.
``measure_fmax`` runs YoWASP Yosys (``synth_ecp5``) and nextpnr-ecp5 on it and returns the
achieved Fmax and the resources from nextpnr's report.
"""

import json
import subprocess
import time
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from edgetrain.errors import ToolError
from edgetrain.outputs import output_dir, write_text
from .build import INSTALL_HINT, tool_environment
from .report import RESOURCE_CELLS

__all__ = ["FmaxShell", "measure_fmax"]


class FmaxShell(wiring.Component):
    """Drive every input of ``unit`` from a serial shift register; xor every output."""

    din: In(1)
    dout: Out(1)

    def __init__(self, unit):
        self._unit = unit
        super().__init__()

    @property
    def shell_flip_flops(self):
        """Flip-flops the shell itself adds (input chain, output registers, xor stages)."""
        ports = list(self._unit.signature.flatten(self._unit))
        ins = sum(len(Value.cast(v)) for _, member, v in ports if member.flow == wiring.In)
        outs = sum(len(Value.cast(v)) for _, member, v in ports if member.flow == wiring.Out)
        return ins + outs + (outs + 15) // 16 + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        inputs, outputs = [], []
        for _, member, value in unit.signature.flatten(unit):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        chain = Signal(sum(len(v) for v in inputs))
        m.d.sync += chain.eq(Cat(self.din, chain[:-1]))
        m.d.comb += Cat(*inputs).eq(chain)
        # Register every output, then xor 16 at a time, then xor the groups: the shell adds
        # no path longer than a 16-input xor between two of its own flip-flops.
        outs = Signal(sum(len(v) for v in outputs))
        m.d.sync += outs.eq(Cat(*outputs))
        groups = Signal((len(outs) + 15) // 16)
        m.d.sync += groups.eq(Cat(outs[k:k + 16].xor() for k in range(0, len(outs), 16)))
        xored = Signal()
        m.d.sync += xored.eq(groups.xor())
        m.d.comb += self.dout.eq(xored)
        return m


def _run(argv, *, cwd, env, log):
    with open(Path(cwd) / log, "w") as out:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise ToolError(f"{Path(argv[0]).name} failed with exit code {proc.returncode} "
                        f"(log: {Path(cwd) / log})")


def measure_fmax(unit, *, out_dir, target_mhz=125.0, device="85k", package="CABGA381",
                 seed=1):
    """Synthesise, place and route ``unit`` in a ``FmaxShell``; return a result dict."""
    env = tool_environment()
    for var in ("YOSYS", "NEXTPNR_ECP5"):
        if var not in env:
            raise ToolError(f"{var} is not set and its YoWASP wheel is missing: {INSTALL_HINT}")
    out_dir = output_dir(out_dir)
    shell = FmaxShell(unit)
    write_text(out_dir / "top.v", verilog.convert(shell, name="top", emit_src=False))
    t0 = time.monotonic()
    _run([env["YOSYS"], "-q", "-p", "read_verilog top.v; synth_ecp5 -top top -json top.json"],
         cwd=out_dir, env=env, log="synth.log")
    t1 = time.monotonic()
    _run([env["NEXTPNR_ECP5"], f"--{device}", "--package", package, "--json", "top.json",
          "--freq", str(target_mhz), "--seed", str(seed), "--lpf-allow-unconstrained",
          "--timing-allow-fail", "--report", "report.json"], cwd=out_dir, env=env, log="pnr.log")
    t2 = time.monotonic()
    report = json.loads((out_dir / "report.json").read_text())
    fmax = min(v["achieved"] for v in report["fmax"].values())
    used = {name: report["utilization"].get(cell, {}).get("used", 0)
            for name, cell in RESOURCE_CELLS["ecp5"].items()}
    return {"fmax_mhz": round(fmax, 1), "target_mhz": target_mhz, **used,
            "shell_FFs": shell.shell_flip_flops,
            "synth_s": round(t1 - t0, 1), "pnr_s": round(t2 - t1, 1)}
