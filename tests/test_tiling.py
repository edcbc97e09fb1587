"""``firmware/tiling.py`` without a simulator: tiles fit one buffer half and cover the layer's
result exactly once, programs balance their tokens (ping-pong and serial), and a layer that
cannot be tiled is refused with a message naming the buffer and the depth field. The RTL runs
the programs in ``tests/test_accel_tiled_sim.py``."""

import itertools

import numpy as np
import pytest

from edgetrain.errors import ConfigError
from edgetrain.firmware.tiling import (
    TILE_OVERHEAD, _Budget, layer_program, operands, tile_layer)
from edgetrain.hw.accel.isa import Opcode, check_program, engine_config
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
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
    else:       # WU / UPDATE: each weight of each image's gradient
        hits = np.zeros((lay.m, lay.c, lay.n), dtype=int)
        for t in tiles:
            hits[t.o0:t.o0 + t.ob, t.r0:t.r0 + t.rb, t.n0:t.n0 + t.nb] += 1
    return hits


def _batch_parts(mode, tiles):
    """Check the WU / UPDATE batch parts of ``tiles``: consecutive per channel tile, which
    they share with its MST half (``wtile``), ``acc`` on all but the first and ``stores`` on
    the last only (UPDATE: the tiles before the last run as WU, the last adds their sums,
    ``partial``); return how many channel tiles were cut."""
    cut, i = 0, 0
    while i < len(tiles):
        j = i + 1
        while j < len(tiles) and tiles[j].continues:
            j += 1
        part = tiles[i:j]
        if mode == "update" and len(part) > 1:
            assert [t.engine_mode(mode) for t in part] == ["wu"] * (len(part) - 1) + [
                "update"], part
            assert [t.partial for t in part] == [False] * (len(part) - 1) + [True], part
            assert [t.acc for t in part] == [False] + [True] * (len(part) - 2) + [False]
        assert len({(t.o0, t.ob, t.r0, t.rb, t.wtile) for t in part}) == 1, part
        assert [t.stores for t in part] == [False] * (len(part) - 1) + [True], part
        assert [t.n0 for t in part] == list(itertools.accumulate(
            (t.nb for t in part[:-1]), initial=0)), part
        assert part[0].wtile == (tiles[i - 1].wtile + 1 if i else 0), part
        cut += len(part) > 1
        i = j
    return cut


@pytest.mark.parametrize("mode", MODES)
def test_tiles_fit_and_cover_the_result_once(mode):
    ecfg = engine_config(CFG)
    several = cut = 0
    for lay, tiles in _random_layers(mode, 60):
        assert all(fits(ecfg, mode, t.layer) for t in tiles), lay
        assert np.all(_covered(mode, lay, tiles) == 1), (mode, lay)
        several += len(tiles) > 1
        cut += _batch_parts(mode, tiles) if mode in ("wu", "update") else 0
    assert several >= 10, f"only {several} of 60 {mode} layers needed several tiles"
    assert (cut > 0) == (mode in ("wu", "update")), f"{cut} {mode} channel tiles cut along " \
                                                    f"the batch"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("serial", [False, True])
def test_programs_balance_their_tokens(mode, serial):
    for lay, tiles in _random_layers(mode, 20, seed=6):
        at = {name: 0x1000 * (i + 1) for i, name in enumerate(operands(mode))}
        program = layer_program(CFG, mode, lay, at, tiles=tiles, serial=serial, shift=2)
        check_program(program)        # layer_program checks too; a failure names the layer
        ops = [insn.op for insn in program]
        assert ops.count(Opcode.COMPUTE) == len(tiles)
        assert ops.count(Opcode.STORE) == sum(t.stores for t in tiles)
        assert ops[-1] is Opcode.FINISH
        adds = [insn.body["accumulate"] for insn in program if insn.op is Opcode.COMPUTE]
        assert adds == [int(t.acc) for t in tiles]


def test_row_tiles_pad_on_the_dma_and_the_engine_runs_them_unpadded():
    lay = LayerShape(n=1, c=8, h=8, w=6, m=4, k=3, stride=1, pad=1)
    tiles = tile_layer(CFG, "fp", lay)
    assert len(tiles) > 1 and all(t.pad is not None and t.layer.pad == 0 for t in tiles)
    assert tiles[0].pad[0] == 1 and tiles[-1].pad[1] == 1     # only the edges are padded
    assert all(t.pad == (0, 0) for t in tiles[1:-1])
    assert all(t.layer.w == lay.w + 2 for t in tiles)


def test_update_cuts_the_batch_only_with_an_sgd_unit():
    """The batch of one channel tile in four parts on TILED_CONFIG; without the SGD unit
    the cut is refused by name."""
    lay = LayerShape(n=4, c=8, h=8, w=8, m=8, k=3, pad=1)
    tiles = tile_layer(CFG, "update", lay)
    assert [(t.n0, t.engine_mode("update"), t.partial) for t in tiles[:4]] == [
        (0, "wu", False), (1, "wu", False), (2, "wu", False), (3, "update", True)]
    with pytest.raises(ConfigError, match="batch cut needs the SGD unit .* update_lanes >= 1"):
        tile_layer(CFG.replace(update_lanes=0), "update", lay)


@pytest.mark.parametrize("mode,lay,needle", [
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


def test_a_wu_whose_batch_does_not_fit_sums_its_parts_in_mst():
    lay = LayerShape(n=4, c=4, h=8, w=8, m=4, k=3, pad=1)   # one channel tile, 4 parts
    tiles = tile_layer(CFG, "wu", lay)
    assert [(t.n0, t.nb, t.acc, t.stores) for t in tiles] == [
        (n, 1, n > 0, n == 3) for n in range(4)]
    program = layer_program(CFG, "wu", lay, {"x": 0x1000, "dy": 0x9000, "grad": 0x11000})
    computes = [insn for insn in program if insn.op is Opcode.COMPUTE]
    halves = {insn.body["halves"] >> Buffer.MST.value & 1 for insn in computes}
    assert [insn.body["accumulate"] for insn in computes] == [0, 1, 1, 1] and halves == {0}
    assert [insn.op for insn in program].count(Opcode.STORE) == 1


def test_an_update_whose_batch_does_not_fit_sums_its_parts_in_the_other_mst_half():
    """Three WU COMPUTEs sum the gradients in MST half 1, the UPDATE adds them (``partial``)
    to its own in half 0, where the masters were loaded once and are stored once."""
    lay = LayerShape(n=4, c=4, h=8, w=8, m=4, k=3, pad=1)
    program = layer_program(CFG, "update", lay, {"x": 0x1000, "dy": 0x9000, "mst": 0x11000})
    computes = [insn.body for insn in program if insn.op is Opcode.COMPUTE]
    assert [MODES[b["desc"]["mode"]] for b in computes] == ["wu"] * 3 + ["update"]
    assert [b["halves"] >> Buffer.MST.value & 1 for b in computes] == [1, 1, 1, 0]
    assert [b["accumulate"] for b in computes] == [0, 1, 1, 0]
    assert [b["desc"]["partial"] for b in computes] == [0, 0, 0, 1]
    mst = [insn.op for insn in program
           if insn.op in (Opcode.LOAD, Opcode.STORE) and insn.body["buffer"] is Buffer.MST]
    assert mst == [Opcode.LOAD, Opcode.STORE]


#: The default accelerator with no refresh on its act / out buffers: a lifetime schedule.
LIFETIME = AcceleratorConfig(refresh=("lifetime", "none", "lifetime"))


@pytest.mark.parametrize("mode", ["fp", "bp", "wu", "update"])
def test_a_lifetime_schedule_keeps_every_compute_within_half_the_retention(mode):
    """Under ``lifetime`` (no refresh) no COMPUTE takes more than the budget, so no row
    outlives ``retention_cycles``; FP / BP tiles load their own weights. A layer whose
    smallest tile takes longer is refused by name."""
    budget = _Budget(LIFETIME, engine_config(LIFETIME), True)
    assert 2 * (budget.bound + TILE_OVERHEAD) <= LIFETIME.retention_cycles
    rng = np.random.default_rng(11)
    shorter = refused = 0
    for _ in range(40):
        lay = ref.random_layer(rng, LIFETIME)
        default = tile_layer(LIFETIME, mode, lay, lifetime=False)
        try:
            tiles = tile_layer(LIFETIME, mode, lay)
        except ConfigError as e:
            assert "lifetime refresh policy" in str(e) and "raise retention_cycles" in str(e)
            refused += 1
            continue
        assert all(budget.cycles(t.engine_mode(mode), t.layer, t.partial) <= budget.bound
                   for t in tiles), lay
        assert np.all(_covered(mode, lay, tiles) == 1), (mode, lay)
        if mode in ("wu", "update"):
            _batch_parts(mode, tiles)
        else:
            assert [t.wtile for t in tiles] == list(range(len(tiles)))
        shorter += len(tiles) > len(default)
    assert shorter >= 5, f"only {shorter} of 40 {mode} layers were cut shorter"
    assert refused < 40 - shorter


def test_a_lifetime_schedule_refuses_a_tile_it_cannot_shorten():
    # BP keeps one image of dy whole: 2 dy groups x 8x8 pixels x 9 taps = 1,152 cycles
    lay = LayerShape(n=1, c=8, h=8, w=8, m=16, k=3, pad=1)
    with pytest.raises(ConfigError, match=r"bp layer cannot be tiled for the lifetime refresh "
                       r"policy: .* computes for 1152 cycles, and its data must die within "
                       r"773 \(half of retention_cycles 1675"):
        tile_layer(LIFETIME, "bp", lay)
    tile_layer(LIFETIME.replace(refresh=("live", "none", "live")), "bp", lay)
