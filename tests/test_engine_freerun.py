"""The free-running engine issues one tap per cycle when every tap ends a reduction.

K = 1 layers with one input-channel tile make every FP/BP tap the last of its pixel, so each
one needs a result-queue credit; a WU block of a K = 1 layer is one long reduction per
weight block. With consumers that are always ready, the credits must never stall the
address generator: the runs are bit-exact, count no stall cycle, and a layer with more
taps takes exactly that many more busy cycles.
"""

import pytest

from edgetrain.sim.tb.engine_run import SMALL_CONFIG, run_engine_tb
from edgetrain.sim.tb.runner import SIM_ROOT

T = SMALL_CONFIG.tm
SIDES = (8, 10)   # both runs outlast the descriptor check they overlap


def _layers(mode):
    return [(mode, {"n": 1, "c": T, "h": s, "w": s, "m": T, "k": 1, "stride": 1, "pad": 0})
            for s in SIDES]


@pytest.mark.parametrize("mode", ["fp", "bp", "wu"])
def test_one_tap_per_cycle_without_stalls(mode):
    small, large = run_engine_tb("icarus", layers=_layers(mode), backpressure=False,
                                 build_dir=SIM_ROOT / "engine" / f"freerun-{mode}-icarus")
    assert small["ok"] and large["ok"], (small["error"], large["error"])
    assert small["stall_cycles"] == 0 and large["stall_cycles"] == 0
    # Every tap uses all T x T multipliers: taps = useful MACs / T^2.
    extra_taps = (large["macs"] - small["macs"]) // (T * T)
    assert extra_taps == SIDES[1] ** 2 - SIDES[0] ** 2
    assert large["busy_cycles"] - small["busy_cycles"] == extra_taps
