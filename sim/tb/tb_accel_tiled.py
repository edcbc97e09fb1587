"""cocotb testbench of ``Accelerator``: layers larger than the buffers, tiled, DRAM to DRAM.

The host side is ``accel_bench`` (AxiRam with random pauses on every channel, registers,
program runs). Per case a random layer that does *not* fit one buffer half is drawn for a
mode (FP with or without ReLU, BP, WU over the batch, UPDATE), its operands are written into
DRAM in the row layout (``firmware/tiling.py``'s ``RowLayout``), the result regions are filled
with junk, and the program of ``layer_program`` runs it as tiles along output channels,
images and output rows (FP), input channels and images (BP), or output and input channels
(WU, UPDATE; also along images: WU's gradients added up in MST, UPDATE's earlier batch
tiles run as WU into the other MST half and its last adds those sums), with ping-pong halves
and overlapped loads and stores. The result read back from DRAM must equal the golden model
of the *whole* layer (``sim/reference/engine.py``), bit for bit, stochastic rounding included.

Parameters (``EDGETRAIN_PARAMS``): ``config`` (``AcceleratorConfig`` fields), ``seed``,
``cases`` (per mode), ``axi_pause``, ``serial`` (one tile at a time).
"""

import json
import os

import cocotb
import numpy as np

from edgetrain.firmware.tiling import layer_program
from edgetrain.hw.accel.isa import program_bytes
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.reference import engine as ref
from . import accel_layers
from .accel_bench import AccelBench
from .accel_cases import CUTS, draw_tiled, tile_cuts

P = {"seed": 1, "cases": 4, "axi_pause": 0.2, "serial": False,
     **json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))}
CFG = AcceleratorConfig(**P["config"])


async def _run_mode(dut, mode):
    bench = AccelBench(dut, seed=P["seed"], axi_pause=P["axi_pause"])
    await bench.reset()
    rng = np.random.default_rng([P["seed"], ref.MODES_SEED[mode], 15])
    for case_no in range(P["cases"]):
        case, tiles = draw_tiled(rng, CFG, mode, CUTS[mode][case_no % len(CUTS[mode])])
        images = accel_layers.images(CFG, case)
        at = accel_layers.place(images, bench.program_at)
        for name, image in images.items():
            bench.ram.write(at[name], image)
        program = layer_program(CFG, mode, case.layer, at, tiles=tiles, serial=P["serial"],
                                **accel_layers.options(case))
        status = await bench.run(program_bytes(CFG, program), limit=2_000_000)
        what = (f"case {case_no} ({mode} {case.layer}, {len(tiles)} tiles "
                f"{sorted(tile_cuts(tiles))})")
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
