"""Benchmark: build each board's default bitstream; record time, resources and Fmax.

Each board builds into ``OUT/<board>`` (with its report.json); ``OUT/summary.json``
collects the figures. The ULX3S build takes minutes (routing dominates).
"""

from edgetrain.outputs import output_dir, write_json
from ..build import build_bitstream
from ..platforms import get_board

__all__ = ["SUMMARY_KEYS", "bench_boards"]

#: The fields of each board's report that the summary keeps.
SUMMARY_KEYS = ("device", "engine", "resources", "fmax_mhz", "target_mhz", "stage_seconds",
                "build_seconds")


def bench_boards(names, *, out="out/bench/boards"):
    """Build every board of ``names`` with its own sizing; write ``out/summary.json`` and
    return the summary ``{board: figures}``."""
    boards = [get_board(name) for name in names]        # refuse a bad name before building
    out = output_dir(out)
    summary = {}
    for board in boards:
        report = build_bitstream(board=board, config=board.default_config(),
                                 out_dir=out / board.name, engine=board.engine)
        summary[board.name] = {k: report[k] for k in SUMMARY_KEYS}
    write_json(out / "summary.json", summary)
    return summary
