"""``firmware/tiling.py`` without a simulator: tiles fit one buffer half and cover the layer's
result exactly once, programs balance their tokens (ping-pong and serial), and a layer that
cannot be tiled is refused with a message naming the buffer and the depth field. The RTL runs
the programs in ``tests/test_accel_tiled_sim.py``."""

import numpy as np
import pytest

from edgetrain.errors import ConfigError
from edgetrain.firmware.tiling import layer_program, operands, tile_layer
from edgetrain.hw.accel.isa import Opcode, check_program, engine_config
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.engine.descriptor import MODES, LayerShape, fits
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.tb.accel_run import TILED_CONFIG as CFG


def _random_layers(mode, count, seed=5):
    big = CFG.replace(**{b.depth_field: b.depth(CFG) * 8
                         for b in (Buffer.ACT, Buffer.WGT, Buffer.OUT)})
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        lay = ref.random_layer(rng, big)
        try:
            found.append((lay, tile_layer(CFG, mode, lay)))
        except ConfigError:
            pass
    return found


def _covered(mode, lay, tiles):
    """How many tiles produce each element of the layer's result."""
    if mode == "fp":
        hits = np.zeros((lay.n, lay.m, lay.out_h), dtype=int)
        for t in tiles:
            hits[t.n0:t.n0 + t.nb, t.o0:t.o0 + t.ob, t.y0:t.y0 + t.yb] += 1
    elif mode == "bp":
        hits = np.zeros((lay.n, lay.c), dtype=int)
        for t in tiles:
            hits[t.n0:t.n0 + t.nb, t.o0:t.o0 + t.ob] += 1
    else:
        hits = np.zeros((lay.m, lay.c), dtype=int)
        for t in tiles:
            hits[t.o0:t.o0 + t.ob, t.r0:t.r0 + t.rb] += 1
    return hits


@pytest.mark.parametrize("mode", MODES)
def test_tiles_fit_and_cover_the_result_once(mode):
    ecfg = engine_config(CFG)
    several = 0
    for lay, tiles in _random_layers(mode, 60):
        assert all(fits(ecfg, mode, t.layer) for t in tiles), lay
        assert np.all(_covered(mode, lay, tiles) == 1), (mode, lay)
        several += len(tiles) > 1
    assert several >= 10, f"only {several} of 60 {mode} layers needed several tiles"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("serial", [False, True])
def test_programs_balance_their_tokens(mode, serial):
    for lay, tiles in _random_layers(mode, 20, seed=6):
        at = {name: 0x1000 * (i + 1) for i, name in enumerate(operands(mode))}
        program = layer_program(CFG, mode, lay, at, tiles=tiles, serial=serial, shift=2)
        check_program(program)        # layer_program checks too; a failure names the layer
        ops = [insn.op for insn in program]
        assert ops.count(Opcode.COMPUTE) == ops.count(Opcode.STORE) == len(tiles)
        assert ops[-1] is Opcode.FINISH


def test_row_tiles_pad_on_the_dma_and_the_engine_runs_them_unpadded():
    lay = LayerShape(n=1, c=8, h=8, w=6, m=4, k=3, stride=1, pad=1)
    tiles = tile_layer(CFG, "fp", lay)
    assert len(tiles) > 1 and all(t.pad is not None and t.layer.pad == 0 for t in tiles)
    assert tiles[0].pad[0] == 1 and tiles[-1].pad[1] == 1     # only the edges are padded
    assert all(t.pad == (0, 0) for t in tiles[1:-1])
    assert all(t.layer.w == lay.w + 2 for t in tiles)


@pytest.mark.parametrize("mode,lay,needle", [
    ("wu", LayerShape(n=4, c=8, h=8, w=8, m=8, k=3, pad=1),
     "whole batch of one channel tile .* raise input_depth, output_depth"),
    ("bp", LayerShape(n=1, c=4, h=8, w=8, m=8, k=3, pad=1),
     "one image of one input channel tile .* raise input_depth"),
    ("fp", LayerShape(n=1, c=8, h=8, w=8, m=4, k=3, pad=1),
     "row tile would be 10 columns wide .* over max_size=8"),
])
def test_layers_that_cannot_be_tiled_are_refused_by_name(mode, lay, needle):
    with pytest.raises(ConfigError, match=needle):
        tile_layer(CFG, mode, lay)


def test_missing_or_misaligned_dram_addresses_are_refused():
    lay = LayerShape(n=1, c=4, h=4, w=4, m=4, k=3, pad=1)
    with pytest.raises(ConfigError, match="needs the DRAM address of w"):
        layer_program(CFG, "fp", lay, {"x": 0x1000, "y": 0x2000})
    with pytest.raises(ConfigError, match="DRAM address of y 0x2004 is not a multiple"):
        layer_program(CFG, "fp", lay, {"x": 0x1000, "w": 0x3000, "y": 0x2004})


@pytest.mark.parametrize("mode", ["fp", "bp", "wu"])
def test_the_first_and_last_transfers_nothing_overlaps_are_one_group(mode):
    t = CFG.tm
    for lay, tiles in _random_layers(mode, 30, seed=9):
        channels = {"fp": lay.m, "bp": lay.c, "wu": lay.m}[mode]
        assert tiles[0].ob == min(t, channels)
        if mode == "wu":
            assert tiles[0].rb == min(t, lay.c)
            if len(tiles) > 1:
                assert tiles[-1].rb <= t and tiles[-1].ob <= t
        else:   # tiles that share a weight tile share its channels
            for a, b in zip(tiles, tiles[1:]):
                assert a.wtile != b.wtile or (a.o0, a.ob) == (b.o0, b.ob)
