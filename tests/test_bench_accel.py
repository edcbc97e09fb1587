"""``sim/bench/accel.py`` without a simulator: the compute set is compute-bound in every
phase by its own definition (``dma_bound``), and the bus beats a program moves are the
bytes of its operands in the row layout."""

import pytest

from edgetrain.firmware.tiling import RowLayout, tile_layer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.descriptor import LayerShape
from edgetrain.sim.bench.accel import (
    COMPUTE_BOUND, PHASES, bus_beats, dma_bound, layer_sets)

CFG = AcceleratorConfig()


@pytest.mark.parametrize("mode", PHASES)
def test_the_compute_set_is_compute_bound(mode):
    for name, lay in layer_sets()["compute"]:
        assert dma_bound(CFG, mode, lay) <= COMPUTE_BOUND, name
    # The digits' first conv (one input channel) is not: it is there to be reported.
    _, conv0 = layer_sets()["digits"][0]
    assert dma_bound(CFG, "wu", conv0) > 1


def test_bus_beats_of_one_tile_are_its_operands_bytes():
    lay = LayerShape(n=2, c=8, h=8, w=8, m=8, k=3, pad=1)
    rl, bus = RowLayout(CFG), CFG.axi_data_bits // 8
    sizes = {mode: rl.bytes_of(mode, lay) for mode in PHASES}
    for mode, read, written in (("fp", ("x", "w"), "y"), ("bp", ("dy", "w"), "dx"),
                                ("wu", ("x", "dy"), "grad")):
        assert len(tile_layer(CFG, mode, lay)) == 1
        assert bus_beats(CFG, mode, lay) == {
            "load": sum(sizes[mode][k] for k in read) // bus,
            "store": sizes[mode][written] // bus}
