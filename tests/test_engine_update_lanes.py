"""The ``update_lanes`` knob: config validation, master-row layout, UPDATE runs bit for bit.

The default suite's engine runs (``test_engine_sim.py``) use the default ``update_lanes``;
these runs cover the other widths on Icarus: 0 (no SGD unit: exact accumulators stored),
2 on a 4 x 4 array (a lane's input channel wraps inside a beat) and 4 on a 2 x 2 array (a
whole block per beat); the slow suite adds 8 and 16 on the 4 x 4 array.
"""

import numpy as np
import pytest

from edgetrain.errors import ConfigError
from edgetrain.hw.config import AcceleratorConfig, load_config
from edgetrain.hw.engine.updater import master_depth, master_port_shape
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.tb.engine_run import SMALL_CONFIG, run_engine_tb
from edgetrain.sim.tb.runner import SIM_ROOT


@pytest.mark.parametrize("lanes", [3, -1, True, 128, "2"])
def test_bad_update_lanes_is_one_line_naming_the_value(lanes):
    with pytest.raises(ConfigError, match=r"update_lanes must be 0 .* divisor of tm\*tn = 64, "
                                          rf"not {lanes!r}$"):
        AcceleratorConfig(update_lanes=lanes)


def test_bad_stochastic_rounding_is_refused():
    with pytest.raises(ConfigError, match="stochastic_rounding must be true or false, not 1"):
        AcceleratorConfig(stochastic_rounding=1)


def test_knobs_load_from_toml(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text("update_lanes = 0\nstochastic_rounding = false\n")
    cfg = load_config(path)
    assert (cfg.update_lanes, cfg.stochastic_rounding) == (0, False)


@pytest.mark.parametrize("lanes, rows, width", [(1, 64, 64), (2, 32, 128), (8, 8, 512),
                                                (64, 1, 4096), (0, 8, 512)])
def test_master_buffer_shape_follows_the_lanes(lanes, rows, width):
    cfg = AcceleratorConfig(update_lanes=lanes, weight_depth=256)
    assert master_depth(cfg) == 256 * rows
    assert master_port_shape(cfg) == ((256 * rows - 1).bit_length(), width)


@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
def test_master_rows_round_trip(lanes):
    rng = np.random.default_rng(lanes)
    master = rng.integers(-2**31, 2**31, size=(5, 6, 3, 3))
    velocity = rng.integers(-2**31, 2**31, size=(5, 6, 3, 3))
    rows = ref.pack_master_rows(master, velocity, 4, lanes)
    assert len(rows) == 2 * 2 * 9 * 16 // lanes
    got_m, got_v = ref.unpack_master_rows(rows, master.shape, 4, lanes)
    assert np.array_equal(got_m[:5, :6], master) and np.array_equal(got_v[:5, :6], velocity)
    assert not got_m[5:].any() and not got_v[:, 6:].any()


def test_master_row_lane_positions():
    # Block lane q = i * T + j: with T = 2 and 2 lanes, row 1 holds (i=1, j=0), (i=1, j=1).
    master = np.arange(4).reshape(2, 2, 1, 1) + 10
    velocity = -np.arange(4).reshape(2, 2, 1, 1) - 1
    rows = ref.pack_master_rows(master, velocity, 2, 2)
    lane = [(rows[1] >> (64 * n)) & (2**64 - 1) for n in range(2)]
    assert [(w & 0xFFFFFFFF, w >> 32) for w in lane] == [(12, 2**32 - 3), (13, 2**32 - 4)]


def test_gradient_rows_are_sign_extended_64_bit_words():
    acc = np.array([[-5, 7], [2**40, -2**45]]).reshape(2, 2, 1, 1)
    rows = [sum((int(v) & (2**64 - 1)) << (64 * j) for j, v in enumerate(r))
            for r in acc.reshape(2, 2)]
    assert np.array_equal(ref.unpack_gradient_rows(rows, acc.shape, 2), acc)


def _run_update(t, lanes, *, shapes, stochastic=True):
    cfg = SMALL_CONFIG.replace(tm=t, tn=t, update_lanes=lanes, stochastic_rounding=stochastic)
    tag = f"t{t}-lanes{lanes}" + ("" if stochastic else "-nearest")
    results = run_engine_tb("icarus", config=cfg, modes=("update",), shapes=shapes, seed=11,
                            build_dir=SIM_ROOT / "update_lanes" / f"{tag}-icarus")
    assert len(results) == shapes and all(r["ok"] for r in results), results
    return results


# (T, lanes): no SGD unit; a lane's input channel wraps inside a beat; a whole 2 x 2 block
# per beat (each lane steps two output channels).
@pytest.mark.parametrize("t, lanes", [(4, 0), (4, 2), (2, 4)])
def test_update_runs_match_golden_model(t, lanes):
    results = _run_update(t, lanes, shapes=6)
    assert {r["rounding"] for r in results} == {"nearest", "stochastic"}


# A beat spans two output channels of a 4 x 4 block; a whole 4 x 4 block per beat.
@pytest.mark.slow
@pytest.mark.parametrize("lanes", [8, 16])
def test_wide_update_runs_match_golden_model(lanes):
    results = _run_update(4, lanes, shapes=12)
    assert {r["rounding"] for r in results} == {"nearest", "stochastic"}


def test_nearest_only_update_matches_golden_model():
    # stochastic_rounding = false: the SGD unit has no random generators; nearest cases only.
    results = _run_update(4, 2, shapes=4, stochastic=False)
    assert {r["rounding"] for r in results} == {"nearest"}
