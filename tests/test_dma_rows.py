"""WideRowAdapter: the DMA's rows, in the DMA's walk order, become the engine's buffer rows."""

import random

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.dma import program as prog
from edgetrain.hw.dma.layout import ActivationLayout, WeightLayout, activation_rows, weight_rows
from edgetrain.hw.dma.rows import WideRowAdapter
from edgetrain.sim.reference.dma_cases import ints_to_rows, rows_to_ints
from edgetrain.sim.reference.engine import pack_rows, pack_weight_rows

T, LANES = 8, 4


class _Bench(wiring.Component):
    """Adapter + a wide memory; ``stall`` makes the wide side not ready."""

    def __init__(self, ratio, depth):
        self.ratio, self.depth = ratio, depth
        super().__init__({"narrow": In(MemoryPortSignature(
            addr_bits=(depth - 1).bit_length() + ratio.bit_length() - 1, data_bits=16 * LANES)),
            "stall": In(1), "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.adapter = ad = WideRowAdapter(narrow_bits=16 * LANES, ratio=self.ratio,
                                                   wide_addr_bits=(self.depth - 1).bit_length())
        m.submodules.mem = self.mem = memory.Memory(shape=16 * LANES * self.ratio,
                                                    depth=self.depth, init=[])
        rd, wr = self.mem.read_port(), self.mem.write_port()
        wiring.connect(m, wiring.flipped(self.narrow), ad.narrow)
        m.d.comb += [rd.addr.eq(ad.wide.addr), wr.addr.eq(ad.wide.addr),
                     wr.data.eq(ad.wide.w_data), wr.en.eq(ad.wide.w_en & ~self.stall),
                     rd.en.eq(ad.wide.r_en & ~self.stall), ad.wide.r_data.eq(rd.data),
                     ad.wide.ready.eq(~self.stall), self.error.eq(ad.error)]
        return m


def _walk(desc):
    return [desc.buf_addr + i2 * desc.s2 + i1 * desc.s1 + i0 * desc.s0
            for i2 in range(desc.n2) for i1 in range(desc.n1) for i0 in range(desc.n0)]


def _run(ratio, depth, order, rows, *, extra=None):
    """Write ``rows[a]`` for ``a`` in ``order`` with random stalls, read all back; return
    (wide memory rows, narrow rows read back, error)."""
    dut = _Bench(ratio, depth)
    rng = random.Random(3)
    out = {}

    async def bench(ctx):
        port = dut.narrow
        for a in [*order, *(extra or [])]:
            ctx.set(port.addr, a)
            ctx.set(port.w_data, rows[a % len(rows)])
            ctx.set(port.w_en, 1)
            ctx.set(dut.stall, rng.random() < 0.3)
            while not ctx.get(port.ready):
                await ctx.tick()
                ctx.set(dut.stall, rng.random() < 0.3)
            await ctx.tick()
        ctx.set(port.w_en, 0)
        ctx.set(dut.stall, 0)
        back = []
        for a in range(len(rows)):
            ctx.set(port.addr, a)
            ctx.set(port.r_en, 1)
            await ctx.tick()
            ctx.set(port.r_en, 0)
            back.append(ctx.get(port.r_data))
        out["back"] = back
        out["wide"] = [ctx.get(dut.mem.data[i]) for i in range(len(rows) // ratio)]
        out["error"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_activation_tile_becomes_engine_rows():
    x = np.random.default_rng(0).integers(-32768, 32768, size=(1, T, 3, 5)).astype(np.int16)
    lay = ActivationLayout(shape=x.shape, tile=(T, 3, 5), form="tiled", lanes=LANES)
    desc = prog.activation_load(lay, next(iter(lay.tiles())), bus_bytes=2 * LANES)
    rows = rows_to_ints(activation_rows(x[0], LANES))
    out = _run(T // LANES, 16, _walk(desc), rows)
    assert out["wide"] == pack_rows(x, T)
    assert out["back"] == rows and not out["error"]


def test_fp_weight_block_becomes_engine_rows_in_walk_order():
    w = np.random.default_rng(1).integers(-32768, 32768, size=(T, T, 3, 3)).astype(np.int16)
    lay = WeightLayout(shape=w.shape, tile=(T, T), form="tiled", lanes=LANES)
    desc = prog.weight_load(lay, next(iter(lay.tiles())), bus_bytes=2 * LANES)
    order = _walk(desc)
    assert order != sorted(order)  # the walk is not linear: slots arrive out of order
    rows = rows_to_ints(weight_rows(w, LANES))
    out = _run(T * T // LANES, 16, order, rows)
    assert out["wide"] == pack_weight_rows(w, T)
    assert np.array_equal(ints_to_rows(out["back"], LANES), weight_rows(w, LANES))
    assert not out["error"]


def test_interleaved_rows_raise_error():
    rows = list(range(1, 9))
    out = _run(2, 8, [0, 2], rows)
    assert out["error"]
