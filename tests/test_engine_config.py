# amaranth: UnusedElaboratable=no
"""Bad engine configurations and layer descriptors fail at construction with one clear line."""

import pytest

from edgetrain.errors import ConfigError
from edgetrain.hw.config import AcceleratorConfig, required_accumulator_bits
from edgetrain.hw.engine.conv import ConvEngine
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields, pack_descriptor
from edgetrain.sim.tb.engine_run import SMALL_CONFIG


@pytest.mark.parametrize("field", ["tm", "tn", "max_kernel", "max_channels", "max_size",
                                   "max_batch", "input_depth"])
def test_zero_dimension_is_rejected(field):
    with pytest.raises(ConfigError, match=f"{field} must be a positive integer, not 0"):
        AcceleratorConfig(**{field: 0})


@pytest.mark.parametrize("bits", [11, 33, 64])
def test_dram_address_width_outside_the_registers_is_rejected(bits):
    with pytest.raises(ConfigError, match=f"axi_addr_bits must be in 12..32.*not {bits}"):
        AcceleratorConfig(axi_addr_bits=bits)


def test_narrow_accumulator_is_rejected():
    need = required_accumulator_bits(AcceleratorConfig().max_reduction)
    with pytest.raises(ConfigError, match=f"acc_bits {need - 1} is too narrow.*{need}"):
        AcceleratorConfig(acc_bits=need - 1)


def test_kernel_above_maximum_is_rejected():
    lay = LayerShape(n=1, c=4, h=10, w=10, m=4, k=7)
    with pytest.raises(ConfigError, match="k=7 exceeds the config's max_kernel=5"):
        descriptor_fields(SMALL_CONFIG, "fp", lay)


@pytest.mark.parametrize("change, message", [
    (dict(stride=3), "stride must be 1 or 2"),
    (dict(pad=3), "pad must be in 0..k-1=2"),
    (dict(c=9), "c=9 exceeds the config's max_channels=8"),
    (dict(n=0), "n must be a positive integer, not 0"),
    (dict(h=2, w=2, k=3, pad=0), "kernel 3 is larger than the padded input 2x2"),
    (dict(h=10, w=10, k=3, pad=2), "output 12x12 exceeds the config's max_size=10"),
])
def test_bad_layer_is_rejected(change, message):
    fields = dict(n=1, c=4, h=6, w=6, m=4, k=3, stride=1, pad=1) | change
    with pytest.raises(ConfigError, match=message):
        descriptor_fields(SMALL_CONFIG, "bp", LayerShape(**fields))


def test_layer_larger_than_buffer_is_rejected():
    cfg = SMALL_CONFIG.replace(input_depth=64)
    with pytest.raises(ConfigError, match="needs 400 act buffer rows but the depth is 64"):
        descriptor_fields(cfg, "fp", LayerShape(n=2, c=8, h=10, w=10, m=4, k=3))


def test_unequal_array_sides_are_rejected():
    with pytest.raises(ConfigError, match="tm == tn"):
        ConvEngine(config=AcceleratorConfig(tm=2, tn=4))


def test_descriptor_packs_every_field_in_range():
    lay = LayerShape(n=2, c=8, h=10, w=10, m=8, k=5, stride=2, pad=2)
    for mode in ("fp", "bp", "wu"):
        f = descriptor_fields(SMALL_CONFIG, mode, lay, shift=-5, stochastic=True,
                              key=0xDEADBEEF, relu=True)
        assert pack_descriptor(SMALL_CONFIG, f) > 0
    with pytest.raises(ConfigError, match="does not fit"):
        pack_descriptor(SMALL_CONFIG, f | {"batch": 1 << 10})


def test_bp_checks_the_buffers_it_reads_and_writes():
    cfg = SMALL_CONFIG.replace(input_depth=64)
    lay = LayerShape(n=1, c=1, h=8, w=8, m=8, k=1)     # x: 64 act rows, y: 128 out rows
    descriptor_fields(cfg, "fp", lay)
    with pytest.raises(ConfigError, match="needs 128 act buffer rows but the depth is 64"):
        descriptor_fields(cfg, "bp", lay)              # BP reads dy from the act buffer


def test_unknown_pipeline_is_rejected_with_the_choices():
    with pytest.raises(ConfigError, match="pipeline must be \"deep\" .* or \"shallow\" .*, "
                                          "not 'fast'"):
        AcceleratorConfig(pipeline="fast")
    assert AcceleratorConfig().pipeline == "deep"
