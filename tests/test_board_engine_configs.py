"""The conv engine exactly as each board builds it, against the golden model.

The default suite runs the engine at a small 4x4 configuration; the boards build other
ones (iCEBreaker: 2x2 without the SGD unit or stochastic rounding; ULX3S: 8x8 with one SGD
lane). One Verilator build per board config runs a few random layers in every mode.
"""

import pytest

from edgetrain.boards.platforms import BOARDS
from edgetrain.sim.tb.engine_run import run_engine_tb


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_engine_config_matches_golden(board):
    config = BOARDS[board].default_config()
    results = run_engine_tb("verilator", config=config, shapes=4, seed=11,
                            tag=f"board-{board}", limits={"max_cycles": 6000})
    assert len(results) == 16 and all(r["ok"] for r in results)
