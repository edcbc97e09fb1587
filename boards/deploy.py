"""Build a board's bitstream as a user asks for it, refuse one that failed timing, flash it.

``build_board`` is what ``edgetrain build`` does: the board's own sizing unless a config is
given, the fit check, the build (``build.build_bitstream``), the timing check (a bitstream
whose logic cannot run at its clock may compute wrong results, so it is never flashed) and
the optional programming.
"""

from dataclasses import dataclass
from pathlib import Path

from edgetrain.errors import ToolError
from edgetrain.hw.config import load_config
from .build import build_bitstream
from .flash import flash_bitstream
from .platforms import get_board
from .report import worst_fmax_mhz
from .top import board_config

__all__ = ["BoardBuild", "build_board"]


@dataclass(frozen=True)
class BoardBuild:
    """A finished build: the board, its bitstream, the report (``report.json``'s contents)
    and, if it was programmed, the bitstream's sha256 digest."""
    board: object
    bitstream: Path
    report: dict
    flashed: str | None = None


def build_board(name, *, config_file=None, out_dir=None, clock_mhz=None, nextpnr_opts="",
                engine=None, from_stage="synth", flash=False, on_built=None):
    """Build board ``name`` into ``out_dir`` (default ``out/<board>``); return a ``BoardBuild``.

    ``engine=None`` takes the board's choice. ``on_built(build)`` sees the finished build
    before the timing check, which raises ``ToolError`` if the logic misses the clock; only
    then is the board programmed (``flash``).
    """
    board = get_board(name)
    config = load_config(config_file) if config_file else board.default_config()
    board_config(board, config)
    out = Path(out_dir or f"out/{board.name}")
    report = build_bitstream(board=board, config=config, out_dir=out,
                             nextpnr_opts=nextpnr_opts,
                             engine=board.engine if engine is None else engine,
                             from_stage=from_stage, sync_mhz=clock_mhz)
    built = BoardBuild(board, out / board.bitstream, report)
    if on_built:
        on_built(built)
    if not report["timing_met"]:
        worst = worst_fmax_mhz(report)
        raise ToolError(f"timing failed: the logic reaches {worst:.1f} MHz, not the "
                        f"{report['target_mhz']} MHz clock, so {built.bitstream} may "
                        f"compute wrong results: rebuild with a --clock-mhz below "
                        f"{worst:.0f} (one of {', '.join(map(str, board.clocks_mhz))})")
    if flash:
        return BoardBuild(board, built.bitstream, report, flash_bitstream(board, built.bitstream))
    return built
