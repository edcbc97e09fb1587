"""cocotb testbench of ``Accelerator``: layers larger than the buffers, tiled, DRAM to DRAM.

The host side is ``accel_bench`` (AxiRam with random pauses on every channel, registers,
program runs). Per case a random layer that does *not* fit one buffer half is drawn for a
mode (FP with or without ReLU, BP, WU over the batch, UPDATE), its operands are written into
DRAM in the row layout (``firmware/tiling.py``'s ``RowLayout``), the result regions are filled
with junk, and the program of ``layer_program`` runs it as tiles along output channels,
images and output rows (FP), input channels and images (BP), or output and input channels
(WU, UPDATE; WU also along images, its gradients added up in MST), with ping-pong halves
and overlapped loads and stores. The result read back from DRAM must equal the golden model
of the *whole* layer (``sim/reference/engine.py``), bit for bit, stochastic rounding included.

Parameters (``EDGETRAIN_PARAMS``): ``config`` (``AcceleratorConfig`` fields), ``seed``,
``cases`` (per mode), ``axi_pause``, ``serial`` (one tile at a time).
"""

import json
import os

import cocotb
import numpy as np

from edgetrain.errors import ConfigError
from edgetrain.firmware.tiling import layer_program, tile_layer
from edgetrain.hw.accel.isa import program_bytes
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.reference import engine as ref
from . import accel_layers
from .accel_bench import AccelBench

P = {"seed": 1, "cases": 4, "axi_pause": 0.2, "serial": False,
     **json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))}
CFG = AcceleratorConfig(**P["config"])
#: Layers are drawn as if the buffers were this many times deeper, then tiled.
DRAW_DEPTH = 8


#: The cuts each mode's cases take turns to include (a row cut with padding, on the DMA).
CUTS = {"fp": ("channels", "images", "rows"), "bp": ("channels", "images"),
        "wu": ("channels", "images"), "update": ("channels",)}


def _draw(rng, mode, cut):
    """A random case of ``mode`` whose tiles cut its layer along ``cut``, and the tiles."""
    big = CFG.replace(**{b.depth_field: b.depth(CFG) * DRAW_DEPTH
                         for b in (Buffer.ACT, Buffer.WGT, Buffer.OUT)})
    while True:
        lay = ref.random_layer(rng, big)
        if cut == "rows" and lay.pad == 0:
            continue      # row tiles of a padded layer: the DMA inserts the padding
        try:
            tiles = tile_layer(CFG, mode, lay)
        except ConfigError:
            continue      # e.g. a WU whose whole batch of one channel tile does not fit
        if cut in _cuts(tiles):
            return ref.random_case(rng, big, mode, layer=lay), tiles


def _cuts(tiles):
    """Which ways ``tiles`` cut their layer: a subset of {"channels", "images", "rows"}."""
    cuts = set()
    if len({(t.o0, t.r0) for t in tiles}) > 1:
        cuts.add("channels")
    if len({t.n0 for t in tiles}) > 1:
        cuts.add("images")
    if len({t.y0 for t in tiles}) > 1:
        cuts.add("rows")
    return cuts


async def _run_mode(dut, mode):
    bench = AccelBench(dut, seed=P["seed"], axi_pause=P["axi_pause"])
    await bench.reset()
    rng = np.random.default_rng([P["seed"], ref.MODES_SEED[mode], 15])
    for case_no in range(P["cases"]):
        case, tiles = _draw(rng, mode, CUTS[mode][case_no % len(CUTS[mode])])
        images = accel_layers.images(CFG, case)
        at = accel_layers.place(images, bench.program_at)
        for name, image in images.items():
            bench.ram.write(at[name], image)
        program = layer_program(CFG, mode, case.layer, at, tiles=tiles, serial=P["serial"],
                                **accel_layers.options(case))
        status = await bench.run(program_bytes(CFG, program), limit=2_000_000)
        what = f"case {case_no} ({mode} {case.layer}, {len(tiles)} tiles {sorted(_cuts(tiles))})"
        assert status == {"done": 1, "error": ErrorCode.NONE}, (what, status)
        result = accel_layers.result_of(mode)
        errors = accel_layers.check(CFG, case, bench.ram.read(at[result], len(images[result])))
        assert not errors, f"{what}: {errors}"
        dut._log.info("%s: %d instructions, bit-exact", what, len(program))


@cocotb.test()
async def test_tiled_fp(dut):
    await _run_mode(dut, "fp")


@cocotb.test()
async def test_tiled_bp(dut):
    await _run_mode(dut, "bp")


@cocotb.test()
async def test_tiled_wu(dut):
    await _run_mode(dut, "wu")


@cocotb.test()
async def test_tiled_update(dut):
    await _run_mode(dut, "update")
