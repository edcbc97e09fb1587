"""WU and UPDATE conv layers through the accelerator top, DRAM to DRAM, on both simulators
(``sim/tb/tb_accel_update.py``): 10 random layers of each per simulator, bit-exact; the WU
accumulators reach DRAM through the grad writer and the MST bank. The grad writer alone
(Amaranth's simulator, a stalling MST port) at every master row width."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgetrain.hw.accel.gradwriter import GradWriter
from edgetrain.hw.accel.isa import engine_config
from edgetrain.hw.accel.top import Accelerator
from edgetrain.hw.buffers.kinds import MASTER_WORD_BITS, Buffer, master_rows_per_block
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.tb.accel_run import ACCEL_CONFIG
from edgetrain.sim.tb.runner import SIM_ROOT, run_cocotb


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_accelerator_runs_wu_and_update_layers(simulator):
    assert ACCEL_CONFIG.update_lanes == 1
    run_cocotb(component=Accelerator(config=ACCEL_CONFIG), toplevel="accelerator",
               test_module="edgetrain.sim.tb.tb_accel_update", simulator=simulator,
               build_dir=SIM_ROOT / "accel_update" / f"default-{simulator}",
               params={"config": ACCEL_CONFIG.to_dict(), "seed": 1, "cases": 10,
                       "axi_pause": 0.2},
               fast_compile=True)


def _write_blocks(cfg, blocks, seed):
    """Offer ``blocks`` ({weight row: T*T lanes}, random order) to a ``GradWriter`` whose
    ``mst`` port is ready 70% of cycles; return the written rows {address: value}."""
    dut, rng, rows = GradWriter(config=cfg), random.Random(seed), {}
    order = list(blocks)
    rng.shuffle(order)

    async def testbench(ctx):
        for addr in order:
            ctx.set(dut.grad.payload, {"addr": addr, "acc": blocks[addr]})
            ctx.set(dut.grad.valid, 1)
            taken = False
            while not taken:
                ready = rng.random() < 0.7
                ctx.set(dut.mst.ready, ready)
                assert not ctx.get(dut.mst.r_en)
                if ready and ctx.get(dut.mst.w_en):
                    rows[ctx.get(dut.mst.addr)] = ctx.get(dut.mst.w_data)
                taken = bool(ctx.get(dut.grad.ready))
                await ctx.tick()
            ctx.set(dut.grad.valid, 0)
            ctx.set(dut.mst.ready, 1)
            assert not ctx.get(dut.mst.w_en)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return rows


@pytest.mark.parametrize("update_lanes", [0, 1, 2, 16])
def test_grad_writer_rows_give_one_dram_image(update_lanes):
    """Every block's rows are written, nothing else, and the rows' DRAM image is ``T * T``
    int64 per block in lane order (``ref.unpack_gradient_rows`` of 8 T-byte rows)."""
    cfg = engine_config(ACCEL_CONFIG.replace(update_lanes=update_lanes))
    t, np_rng = cfg.tm, np.random.default_rng(update_lanes)
    hi = 1 << (cfg.acc_bits - 1)
    acc = np_rng.integers(-hi, hi, size=(6, 7, 2, 2), dtype=np.int64)
    blocks = ref.grad_blocks(acc, t)
    assert len(blocks) <= cfg.weight_depth
    rows = _write_blocks(cfg, blocks, seed=update_lanes)
    assert sorted(rows) == list(range(len(blocks) * master_rows_per_block(cfg)))
    nbytes = Buffer.MST.row_bits(cfg) // 8
    image = b"".join(rows[a].to_bytes(nbytes, "little") for a in sorted(rows))
    word_rows = [int.from_bytes(image[i:i + t * MASTER_WORD_BITS // 8], "little")
                 for i in range(0, len(image), t * MASTER_WORD_BITS // 8)]
    got = ref.unpack_gradient_rows(word_rows, acc.shape, t)
    assert np.array_equal(got[:6, :7], acc)
    assert not np.any(got[6:]) and not np.any(got[:, 7:])
