"""The layout module: addresses, pack/unpack, tile contiguity, burst splitting, descriptors."""

import numpy as np
import pytest

from edgetrain.errors import ConfigError
from edgetrain.hw.dma import program as prog
from edgetrain.hw.dma.layout import ActivationLayout, Segment, WeightLayout, runs, split_bursts


@pytest.mark.parametrize("form", ["tiled", "naive"])
def test_activation_addresses_are_distinct_and_round_trip(form):
    rng = np.random.default_rng(0)
    layout = ActivationLayout(shape=(2, 5, 7, 6), tile=(4, 3, 4), form=form, lanes=4, base=64)
    a = layout.addresses()
    assert len(np.unique(a)) == a.size
    assert a.min() >= 64 and a.max() < 64 + layout.size_bytes
    x = rng.integers(-32768, 32768, size=layout.shape).astype(np.int16)
    image = bytearray(64 + layout.size_bytes)
    layout.pack(x, image)
    assert np.array_equal(layout.unpack(image), x)


def test_naive_is_nchw():
    layout = ActivationLayout(shape=(1, 2, 3, 4), tile=(4, 3, 4), form="naive", lanes=4)
    image = bytearray(layout.size_bytes)
    x = np.arange(24, dtype=np.int16).reshape(1, 2, 3, 4)
    layout.pack(x, image)
    assert bytes(image) == x.astype("<i2").tobytes()


@pytest.mark.parametrize("shape,tile", [((1, 8, 8, 8), (8, 4, 4)), ((2, 12, 9, 7), (8, 4, 3))])
def test_every_tiled_tile_is_one_run(shape, tile):
    tiled = ActivationLayout(shape=shape, tile=tile, form="tiled", lanes=4)
    naive = ActivationLayout(shape=shape, tile=tile, form="naive", lanes=4)
    for t in tiled.tiles():
        assert len(runs(tiled.region_addresses(*t))) == 1
    n, c0, tc, y0, rows, x0, cols = next(iter(naive.tiles()))
    tc = min(tc, shape[1])
    # naive: one run per (channel, row) unless the tile spans whole rows
    expect = tc if cols == shape[3] else tc * rows
    assert len(runs(naive.region_addresses(n, c0, tc, y0, rows, x0, cols))) == expect


def test_weight_blocks_are_contiguous_and_round_trip():
    rng = np.random.default_rng(1)
    layout = WeightLayout(shape=(10, 6, 3, 3), tile=(8, 4), form="tiled", lanes=4)
    w = rng.integers(-32768, 32768, size=layout.shape).astype(np.int16)
    image = bytearray(layout.size_bytes)
    layout.pack(w, image)
    assert np.array_equal(layout.unpack(image), w)
    for block in layout.tiles():
        assert len(runs(layout.region_addresses(*block))) == 1


def test_split_bursts_respects_4k_and_length():
    bursts = split_bursts(Segment(4096 - 16, 8 * 300), bus_bytes=8, max_beats=256)
    assert bursts[0] == (4096 - 16, 2)
    assert all(n <= 256 for _, n in bursts)
    assert sum(n for _, n in bursts) == 300
    for a, n in bursts:
        assert a // 4096 == (a + 8 * n - 1) // 4096
    # an unaligned segment is widened to whole bus words
    assert split_bursts(Segment(6, 4), bus_bytes=8, max_beats=16) == [(0, 2)]


def test_descriptor_pattern_of_a_naive_tile():
    layout = ActivationLayout(shape=(1, 4, 8, 8), tile=(4, 4, 4), form="naive", lanes=4)
    desc = prog.raw_transfer(layout.region_addresses(0, 0, 4, 0, 4, 4, 4), bus_bytes=8)
    assert (desc.seg_beats, desc.seg_count, desc.seg_stride) == (1, 4, 16)
    assert (desc.seg_count2, desc.seg_stride2) == (4, 128)


def test_bad_layout_parameters_name_the_value():
    with pytest.raises(ConfigError, match="tn=6"):
        ActivationLayout(shape=(1, 8, 4, 4), tile=(6, 4, 4), form="tiled", lanes=4)
    with pytest.raises(ConfigError, match="'nchw'"):
        ActivationLayout(shape=(1, 8, 4, 4), tile=(8, 4, 4), form="nchw", lanes=4)
