"""cocotb testbench of ``Accelerator``: programs from DRAM, cocotbext-axi's AxiRam as DRAM.

The host side writes a program and its data into the AxiRam, sets the control registers
(``hw/accel/control.py``) through the ``regs`` port, starts the program and polls STATUS;
the AxiRam pauses every AXI channel at random. Parameters (``EDGETRAIN_PARAMS``): ``config``
(``AcceleratorConfig`` fields), ``seed``, ``cases``, ``axi_pause``.

``test_round_trip``: per case a random tensor is LOADed into a random half of ACT, copied
by ELTWISE COPY into the other half, STOREd to another DRAM region, bit for bit.
``test_conv_layers``: random FP (with or without ReLU) and BP layers, DRAM to DRAM: the
operands are LOADed as the engine's buffer rows into random halves, one COMPUTE runs the
layer, the result's value lanes are STOREd; bit for bit against the golden model
(``sim/reference/engine.py``).
``test_bad_program_then_good``: an unknown opcode ends with its error code and idle, and
the next program runs.
"""

import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from edgetrain.hw.accel.beats import beat_ratio, beat_row
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.control import Reg
from edgetrain.hw.accel.eltwise import EltwiseOp
from edgetrain.hw.accel.isa import (
    INSN_BYTES, Instruction, Opcode, check_program, engine_config, program_bytes)
from edgetrain.hw.accel.sequencer import ErrorCode, StatusLayout
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.program import raw_transfer
from edgetrain.hw.engine.descriptor import descriptor_fields
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.tb.tb_dma import _pauses, wake_combinational

P = {"seed": 1, "cases": 4, "axi_pause": 0.2, **json.loads(os.environ.get("EDGETRAIN_PARAMS",
                                                                          "{}"))}
CFG = AcceleratorConfig(**P["config"])
MEM_BYTES = 1 << 18
PROGRAM_AT = 0x3_0000


class AccelBench:
    """DRAM, clock, reset and the register port of one accelerator."""

    def __init__(self, dut):
        self.dut = dut
        self.rng = random.Random(P["seed"])
        logging.getLogger(f"cocotb.{dut._name}.m_axi").setLevel(logging.WARNING)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi", bus_separator="__"), dut.clk,
                          dut.rst, size=MEM_BYTES)
        channels = (self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                    self.ram.write_if.b_channel, self.ram.read_if.ar_channel,
                    self.ram.read_if.r_channel)
        for channel in channels:
            channel.set_pause_generator(_pauses(random.Random(self.rng.random()),
                                                P["axi_pause"]))

    async def reset(self):
        dut = self.dut
        for name in ("regs__addr", "regs__w_en", "regs__r_en", "regs__w_data"):
            getattr(dut, name).value = 0
        wake_combinational(dut)
        dut.rst.value = 1
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def write_reg(self, reg, value):
        dut = self.dut
        dut.regs__addr.value, dut.regs__w_data.value, dut.regs__w_en.value = reg, value, 1
        await RisingEdge(dut.clk)
        dut.regs__w_en.value = 0

    async def read_reg(self, reg):
        dut = self.dut
        dut.regs__addr.value, dut.regs__r_en.value = reg, 1
        await RisingEdge(dut.clk)
        dut.regs__r_en.value = 0
        await RisingEdge(dut.clk)
        return int(dut.regs__r_data.value)

    async def run(self, program_image, *, limit=200_000):
        """Run a program image; return the decoded STATUS once it is not busy."""
        self.ram.write(PROGRAM_AT, program_image)
        await self.write_reg(Reg.PROG_ADDR.value, PROGRAM_AT)
        await self.write_reg(Reg.PROG_COUNT.value, len(program_image) // INSN_BYTES)
        await self.write_reg(Reg.WINDOW_BASE.value, 0)
        await self.write_reg(Reg.WINDOW_SIZE.value, MEM_BYTES)
        await self.write_reg(Reg.START.value, 1)
        for _ in range(limit):
            status = StatusLayout.from_bits(await self.read_reg(Reg.STATUS.value))
            if not status.busy:
                return {"done": status.done, "error": status.error}
        raise AssertionError(f"the program did not finish in {limit} register polls")


def _round_trip(rng, src, dst):
    """A LOAD / ELTWISE COPY / STORE program of one random run of ACT rows."""
    bus = CFG.axi_data_bits // 8
    ratio = beat_ratio(CFG, Buffer.ACT)
    rows = rng.randrange(1, min(64, half_depth(CFG, Buffer.ACT)) + 1)
    half = rng.randrange(2)
    start = rng.randrange(half_depth(CFG, Buffer.ACT) - rows + 1)
    beat_base = ((half << (half_depth(CFG, Buffer.ACT) - 1).bit_length()) + start) * ratio
    nbytes = rows * ratio * bus
    load = raw_transfer(np.arange(src, src + nbytes, 2), buf_addr=beat_base, bus_bytes=bus)
    other = beat_base ^ (1 << ((half_depth(CFG, Buffer.ACT) - 1).bit_length()
                               + ratio.bit_length() - 1))
    store = raw_transfer(np.arange(dst, dst + nbytes, 2), store=True, buf_addr=other,
                         bus_bytes=bus)
    copy = {"op": EltwiseOp.COPY, "a": {"buffer": Buffer.ACT, "half": half, "row": start},
            "b": {"buffer": Buffer.ACT, "half": half, "row": start},
            "d": {"buffer": Buffer.ACT, "half": 1 - half, "row": start}, "rows": rows}
    program = [
        Instruction(Opcode.LOAD, {"buffer": Buffer.ACT, "dma": vars(load)}, push_next=True),
        Instruction(Opcode.ELTWISE, copy, pop_prev=True, push_next=True),
        Instruction(Opcode.STORE, {"buffer": Buffer.ACT, "dma": vars(store)}, pop_prev=True,
                    push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    check_program(program)
    return program, nbytes


@cocotb.test()
async def test_round_trip(dut):
    bench = AccelBench(dut)
    await bench.reset()
    for case in range(P["cases"]):
        src, dst = 0x1000, 0x2_0000
        program, nbytes = _round_trip(bench.rng, src, dst)
        data = bytes(bench.rng.getrandbits(8) for _ in range(nbytes))
        bench.ram.write(src, data)
        bench.ram.write(dst, bytes(nbytes))
        status = await bench.run(program_bytes(CFG, program))
        assert status == {"done": 1, "error": ErrorCode.NONE}, (case, status)
        got = bench.ram.read(dst, nbytes)
        assert got == data, f"case {case}: {nbytes} bytes differ"


def _rows_bytes(rows, row_bits):
    nbytes = row_bits // 8
    return b"".join(int(r).to_bytes(nbytes, "little") for r in rows)


def _transfer(buffer, half, dram, nbytes, *, store=False):
    """A LOAD/STORE body moving ``nbytes`` between ``dram`` and ``buffer``'s ``half``."""
    bus = CFG.axi_data_bits // 8
    desc = raw_transfer(np.arange(dram, dram + nbytes, 2), store=store,
                        buf_addr=beat_row(CFG, buffer, half, 0), bus_bytes=bus)
    return {"buffer": buffer, "dma": vars(desc)}


def _layer_program(case, halves):
    """LOAD the operands, COMPUTE the layer, STORE the result: the program and its data."""
    t, ecfg = CFG.tm, engine_config(CFG)
    src = case.x if case.mode == "fp" else case.dy
    act = _rows_bytes(ref.pack_rows(src, t), 16 * t)
    wgt = _rows_bytes(ref.pack_weight_rows(case.w, t), 16 * t * t)
    fields = descriptor_fields(ecfg, case.mode, case.layer, shift=case.shift,
                               stochastic=case.rounding == "stochastic", key=case.key,
                               relu=case.relu)
    lay = case.layer
    out_shape = ((lay.n, lay.m, lay.out_h, lay.out_w) if case.mode == "fp"
                 else (lay.n, lay.c, lay.h, lay.w))
    out_rows = out_shape[0] * -(-out_shape[1] // t) * out_shape[2] * out_shape[3]
    half_bits = sum(h << b.value for b, h in halves.items())
    program = [
        Instruction(Opcode.LOAD, _transfer(Buffer.ACT, halves[Buffer.ACT], ACT_AT, len(act))),
        Instruction(Opcode.LOAD, _transfer(Buffer.WGT, halves[Buffer.WGT], WGT_AT, len(wgt)),
                    push_next=True),
        Instruction(Opcode.COMPUTE, {"halves": half_bits, "desc": fields}, pop_prev=True,
                    push_next=True),
        Instruction(Opcode.STORE, _transfer(Buffer.OUT, halves[Buffer.OUT], OUT_AT,
                                            out_rows * 2 * t, store=True),
                    pop_prev=True, push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    check_program(program)
    return program, act, wgt, out_shape, out_rows


ACT_AT, WGT_AT, OUT_AT = 0x1000, 0x8000, 0x1_0000


@cocotb.test()
async def test_conv_layers(dut):
    bench = AccelBench(dut)
    await bench.reset()
    rng = np.random.default_rng(P["seed"])
    for case_no in range(P["cases"]):
        mode = ("fp", "bp")[case_no % 2]
        case = ref.random_case(rng, engine_config(CFG), mode)
        halves = {b: int(rng.integers(0, 2)) for b in Buffer}
        program, act, wgt, out_shape, out_rows = _layer_program(case, halves)
        bench.ram.write(ACT_AT, act)
        bench.ram.write(WGT_AT, wgt)
        bench.ram.write(OUT_AT, bytes(out_rows * 2 * CFG.tm))
        status = await bench.run(program_bytes(CFG, program))
        assert status == {"done": 1, "error": ErrorCode.NONE}, (case_no, case.layer, status)
        raw = bench.ram.read(OUT_AT, out_rows * 2 * CFG.tm)
        rows = [int.from_bytes(raw[i:i + 2 * CFG.tm], "little")
                for i in range(0, len(raw), 2 * CFG.tm)]
        got, _ = ref.unpack_rows(rows, out_shape, CFG.tm)
        want = ref.expected(case)["data"]
        n, c, h, w = want.shape
        assert np.array_equal(got[:, :c], want), (
            f"case {case_no} ({mode} {case.layer}, halves {halves}): "
            f"{int(np.sum(got[:, :c] != want))} of {want.size} outputs differ")


@cocotb.test()
async def test_bad_program_then_good(dut):
    bench = AccelBench(dut)
    await bench.reset()
    program, nbytes = _round_trip(bench.rng, 0x1000, 0x2_0000)
    image = bytearray(program_bytes(CFG, program))
    image[INSN_BYTES] = (image[INSN_BYTES] & ~7) | 7
    status = await bench.run(bytes(image))
    assert status == {"done": 0, "error": ErrorCode.OPCODE}, status
    data = bytes(bench.rng.getrandbits(8) for _ in range(nbytes))
    bench.ram.write(0x1000, data)
    status = await bench.run(program_bytes(CFG, program))
    assert status == {"done": 1, "error": ErrorCode.NONE}, status
    assert bench.ram.read(0x2_0000, nbytes) == data
