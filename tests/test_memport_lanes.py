"""Lane writes: a buffer port with ``w_lanes`` changes only the 16-bit lanes it enables."""

import gc
import warnings

import pytest
from amaranth.hdl import Fragment, UnusedElaboratable
from amaranth.sim import Simulator

from edgetrain.hw.buffers import Buffer, pack_lanes, unpack_lanes
from edgetrain.hw.buffers.memport import MemoryPortSignature, SRAMBuffer, row_lanes
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.tile import ConvEngineTile
from edgetrain.hw.link.device import device_regions
from edgetrain.hw.link.memmap import Region

ROW_BITS = 40           # three lanes, the last one 8 bits wide


def test_row_lanes_and_signature():
    assert [row_lanes(b) for b in (1, 16, 17, 40, 1024)] == [1, 1, 2, 3, 64]
    sig = MemoryPortSignature(addr_bits=4, data_bits=ROW_BITS, lane_writes=True)
    assert sig.members["w_lanes"].shape == 3
    assert sig.members["w_lanes"].init == 0b111          # whole rows unless driven
    assert "w_lanes" not in MemoryPortSignature(addr_bits=4, data_bits=ROW_BITS).members
    assert sig != MemoryPortSignature(addr_bits=4, data_bits=ROW_BITS)


def test_sram_writes_only_the_enabled_lanes():
    dut = SRAMBuffer(depth=8, data_bits=ROW_BITS, lane_writes=True)
    port, full = dut.port, (1 << ROW_BITS) - 1
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    seen = []

    async def write(ctx, addr, data, lanes, en=1):
        ctx.set(port.addr, addr)
        ctx.set(port.w_data, data)
        ctx.set(port.w_lanes, lanes)
        ctx.set(port.w_en, en)
        await ctx.tick()
        ctx.set(port.w_en, 0)

    async def read(ctx, addr):
        ctx.set(port.addr, addr)
        ctx.set(port.r_en, 1)
        await ctx.tick()
        ctx.set(port.r_en, 0)
        return ctx.get(port.r_data)

    async def bench(ctx):
        await write(ctx, 3, 0x12_3456_789A, 0b111)
        await write(ctx, 3, full, 0b010)                 # lane 1 only
        seen.append(await read(ctx, 3))
        await write(ctx, 3, 0, 0b100)                    # the narrow last lane
        seen.append(await read(ctx, 3))
        await write(ctx, 3, 0, 0b111, en=0)              # no w_en: nothing changes
        seen.append(await read(ctx, 3))
        seen.append(await read(ctx, 4))                  # another row is untouched

    sim.add_testbench(bench)
    sim.run()
    assert seen == [0x12_FFFF_789A, 0x00_FFFF_789A, 0x00_FFFF_789A, 0]


def test_lanes_pack_and_unpack():
    assert pack_lanes([0x1234, -1, 0x8000]) == 0x8000_FFFF_1234
    assert unpack_lanes(0x8000_FFFF_1234, 3) == [0x1234, 0xFFFF, 0x8000]
    assert unpack_lanes(0x8000_FFFF_1234, 3, signed=True) == [0x1234, -1, -0x8000]
    assert unpack_lanes(0x8000_FFFF_1234, 4) == [0x1234, 0xFFFF, 0x8000, 0]
    words = [-5, 1 << 40, -(1 << 63)]
    assert unpack_lanes(pack_lanes(words, 64), 3, 64, signed=True) == words


def test_buffers_size_the_tile_and_the_memory_map():
    """Every ``Buffer``'s depth and row width are its tile buffer's, host port's and
    memory region's; the config's depth fields are the ones users name."""
    cfg = AcceleratorConfig(tm=2, tn=2, max_kernel=3, max_channels=4, max_size=6,
                            max_batch=2, input_depth=64, weight_depth=16, output_depth=32)
    assert [b.depth(cfg) for b in Buffer] == [64, 16, 32, 16 * 4]
    assert [b.row_bits(cfg) for b in Buffer] == [32, 64, 34, 64]
    assert [b.depth_field for b in Buffer] == ["input_depth", "weight_depth", "output_depth",
                                               None]
    built = {}

    def recording(buffer, depth, data_bits):
        built[buffer] = (depth, data_bits)
        return SRAMBuffer(depth=depth, data_bits=data_bits, lane_writes=True)

    tile = ConvEngineTile(config=cfg, buffer_factory=recording)
    Fragment.get(tile, None)
    regions = device_regions(cfg, dram_depth=256, engine=True)[1:]
    for b, region in zip(Buffer, regions, strict=True):
        port = getattr(tile, f"host_{b.port_name}")
        assert (len(port.addr), len(port.w_data)) == (b.addr_bits(cfg), b.row_bits(cfg))
        assert built[b] == (region.depth, region.data_bits) == (b.depth(cfg), b.row_bits(cfg))
        assert region.name == b.port_name


def test_region_wider_than_a_lane_needs_lane_writes():
    with pytest.raises(ValueError, match="lane_writes=True"):
        Region("wgt", depth=64, data_bits=64, lane_writes=False)
    assert Region("wgt", depth=64, data_bits=64).lane_writes
    assert not Region("dram", depth=64, data_bits=16).lane_writes


def test_tile_refuses_a_buffer_without_lane_writes():
    cfg = AcceleratorConfig(tm=2, tn=2, max_kernel=3, max_channels=4, max_size=6,
                            max_batch=2, input_depth=64, weight_depth=16, output_depth=64)

    def plain(buffer, depth, data_bits):
        return SRAMBuffer(depth=depth, data_bits=data_bits)

    # The refused elaboration leaves the engine's parts unelaborated; Amaranth warns about
    # them when they are collected, so collect them here, with that warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        tile = ConvEngineTile(config=cfg, buffer_factory=plain)
        with pytest.raises(TypeError, match="built 'act' without lane writes"):
            Fragment.get(tile, None)
        del tile
        gc.collect()
