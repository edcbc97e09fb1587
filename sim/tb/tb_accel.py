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
(``sim/reference/engine.py``). After each layer the counters read through the register port
must show the golden useful MACs, amax and saturations, and engine busy cycles in
``1..cycles``.
``test_bad_program_then_good``: an unknown opcode ends with its error code and idle, and
the next program runs.
"""

import json
import os

import cocotb
import numpy as np

from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.beats import beat_ratio, beat_row
from edgetrain.hw.accel.eltwise import EltwiseOp
from edgetrain.hw.accel.isa import (
    INSN_BYTES, Instruction, Opcode, check_program, engine_config, program_bytes)
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.program import raw_transfer
from edgetrain.hw.engine.descriptor import descriptor_fields
from edgetrain.sim.reference import engine as ref
from .accel_bench import AccelBench, rows_bytes, transfer

P = {"seed": 1, "cases": 4, "axi_pause": 0.2, **json.loads(os.environ.get("EDGETRAIN_PARAMS",
                                                                          "{}"))}
CFG = AcceleratorConfig(**P["config"])


def _bench(dut):
    return AccelBench(dut, seed=P["seed"], axi_pause=P["axi_pause"])


def _round_trip(rng, src, dst):
    """A LOAD / ELTWISE COPY / STORE program of one random run of ACT rows."""
    bus = CFG.axi_data_bits // 8
    ratio = beat_ratio(CFG, Buffer.ACT)
    rows = rng.randrange(1, min(64, half_depth(CFG, Buffer.ACT)) + 1)
    half = rng.randrange(2)
    start = rng.randrange(half_depth(CFG, Buffer.ACT) - rows + 1)
    nbytes = rows * ratio * bus
    load = raw_transfer(np.arange(src, src + nbytes, 2), bus_bytes=bus,
                        buf_addr=beat_row(CFG, Buffer.ACT, half, start))
    store = raw_transfer(np.arange(dst, dst + nbytes, 2), store=True, bus_bytes=bus,
                         buf_addr=beat_row(CFG, Buffer.ACT, 1 - half, start))
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
    bench = _bench(dut)
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


def _xfer(buffer, half, dram, nbytes, *, store=False):
    return transfer(CFG, buffer, half, dram, nbytes, store=store)


def _layer_program(case, halves):
    """LOAD the operands, COMPUTE the layer, STORE the result: the program and its data."""
    t, ecfg = CFG.tm, engine_config(CFG)
    src = case.x if case.mode == "fp" else case.dy
    act = rows_bytes(ref.pack_rows(src, t), 16 * t)
    wgt = rows_bytes(ref.pack_weight_rows(case.w, t), 16 * t * t)
    fields = descriptor_fields(ecfg, case.mode, case.layer, shift=case.shift,
                               stochastic=case.rounding == "stochastic", key=case.key,
                               relu=case.relu)
    lay = case.layer
    out_shape = ((lay.n, lay.m, lay.out_h, lay.out_w) if case.mode == "fp"
                 else (lay.n, lay.c, lay.h, lay.w))
    out_rows = out_shape[0] * -(-out_shape[1] // t) * out_shape[2] * out_shape[3]
    half_bits = sum(h << b.value for b, h in halves.items())
    program = [
        Instruction(Opcode.LOAD, _xfer(Buffer.ACT, halves[Buffer.ACT], ACT_AT, len(act))),
        Instruction(Opcode.LOAD, _xfer(Buffer.WGT, halves[Buffer.WGT], WGT_AT, len(wgt)),
                    push_next=True),
        Instruction(Opcode.COMPUTE, {"halves": half_bits, "desc": fields}, pop_prev=True,
                    push_next=True),
        Instruction(Opcode.STORE, _xfer(Buffer.OUT, halves[Buffer.OUT], OUT_AT,
                                            out_rows * 2 * t, store=True),
                    pop_prev=True, push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    check_program(program)
    return program, act, wgt, out_shape, out_rows


ACT_AT, WGT_AT, OUT_AT = 0x1000, 0x8000, 0x1_0000


@cocotb.test()
async def test_conv_layers(dut):
    bench = _bench(dut)
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
        want = ref.expected(case)
        c = want["data"].shape[1]
        what = f"case {case_no} ({mode} {case.layer}, halves {halves})"
        assert np.array_equal(got[:, :c], want["data"]), (
            f"{what}: {int(np.sum(got[:, :c] != want['data']))} of {want['data'].size} "
            f"outputs differ")
        errors = _counter_errors(await bench.counters(CFG), case, want)
        assert not errors, f"{what}: " + "; ".join(errors)


def _counter_errors(counters, case, want):
    """How the counters after one layer's program differ from the golden ``want``."""
    eng, errors = counters.engine, []
    for name, exp in (("macs", ref.useful_macs(case.mode, case.layer)),
                      ("amax", want["amax"]), ("saturations", want["saturations"])):
        if int(getattr(eng, name)) != exp:
            errors.append(f"engine {name} {int(getattr(eng, name))} != {exp}")
    if not 0 < int(eng.busy_cycles) <= int(counters.cycles):
        errors.append(f"engine busy_cycles {int(eng.busy_cycles)} not in "
                      f"1..{int(counters.cycles)}")
    return errors


@cocotb.test()
async def test_bad_program_then_good(dut):
    bench = _bench(dut)
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
