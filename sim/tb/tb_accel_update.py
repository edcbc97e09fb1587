"""cocotb testbench of ``Accelerator``: WU and UPDATE conv layers DRAM to DRAM, bit-exact.

Same host side as ``tb_accel`` (``accel_bench``: AxiRam with random pauses, registers,
program runs). Parameters (``EDGETRAIN_PARAMS``): ``config`` (``AcceleratorConfig``
fields), ``seed``, ``cases``, ``axi_pause``.

Per case a program LOADs x into ACT, dy into OUT (the engine's WU reads dy there) and the
MST rows into random halves, runs one COMPUTE, then STOREs the MST half back.
``test_wu_layers``: the MST half starts as random junk (a row the grad writer skips, or
writes into the other half, is a mismatch); the stored rows must hold the exact
batch-summed accumulators (``ref.expected(case)["acc"]``), ``T * T`` int64 per block in
lane order. ``test_update_layers``: the MST half starts as the master weights and
velocities (``ref.pack_master_rows``); the stored rows must hold one SGD-with-momentum step
(``ref.expected(case)`` ``master`` and ``velocity``). Padding lanes must be zero.
"""

import json
import os

import cocotb
import numpy as np

from edgetrain.hw.accel.isa import (
    Instruction, Opcode, check_program, engine_config, program_bytes)
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.buffers.kinds import MASTER_WORD_BITS, Buffer, master_lanes
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.descriptor import descriptor_fields
from edgetrain.sim.reference import engine as ref
from .accel_bench import AccelBench, rows_bytes, transfer

P = {"seed": 1, "cases": 4, "axi_pause": 0.2, **json.loads(os.environ.get("EDGETRAIN_PARAMS",
                                                                          "{}"))}
CFG = AcceleratorConfig(**P["config"])
ACT_AT, OUT_AT, MST_AT, RESULT_AT = 0x1000, 0x8000, 0x1_0000, 0x2_0000
WORD_BYTES = MASTER_WORD_BITS // 8


def _program(case, halves, mst_bytes):
    """LOAD x, dy and the MST rows, COMPUTE the layer, STORE the MST half to ``RESULT_AT``."""
    t = CFG.tm
    act = rows_bytes(ref.pack_rows(case.x, t), 16 * t)
    dy = rows_bytes(ref.pack_rows(case.dy, t), 16 * t)
    fields = descriptor_fields(engine_config(CFG), case.mode, case.layer, shift=case.shift,
                               stochastic=case.rounding == "stochastic", key=case.key,
                               **case.sgd)
    half_bits = sum(h << b.value for b, h in halves.items())
    program = [
        Instruction(Opcode.LOAD, transfer(CFG, Buffer.ACT, halves[Buffer.ACT], ACT_AT,
                                          len(act))),
        Instruction(Opcode.LOAD, transfer(CFG, Buffer.OUT, halves[Buffer.OUT], OUT_AT,
                                          len(dy))),
        Instruction(Opcode.LOAD, transfer(CFG, Buffer.MST, halves[Buffer.MST], MST_AT,
                                          mst_bytes), push_next=True),
        Instruction(Opcode.COMPUTE, {"halves": half_bits, "desc": fields}, pop_prev=True,
                    push_next=True),
        Instruction(Opcode.STORE, transfer(CFG, Buffer.MST, halves[Buffer.MST], RESULT_AT,
                                           mst_bytes, store=True),
                    pop_prev=True, push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    check_program(program)
    return program, act, dy


def _weight_shape(case):
    lay = case.layer
    return (lay.m, lay.c, lay.k, lay.k)


def _block_words(case):
    """The 64-bit words of the layer's weight blocks in MST (``T * T`` per block)."""
    lay, t = case.layer, CFG.tm
    return -(-lay.m // t) * -(-lay.c // t) * lay.k ** 2 * t * t


async def _run_case(bench, rng, case, mst_image):
    """Run ``case`` with ``mst_image`` (bytes) in its MST half; return the stored bytes."""
    halves = {b: int(rng.integers(0, 2)) for b in Buffer}
    program, act, dy = _program(case, halves, len(mst_image))
    for at, data in ((ACT_AT, act), (OUT_AT, dy), (MST_AT, mst_image),
                     (RESULT_AT, bytes(len(mst_image)))):
        bench.ram.write(at, data)
    status = await bench.run(program_bytes(CFG, program))
    assert status == {"done": 1, "error": ErrorCode.NONE}, (case.mode, case.layer, halves,
                                                            status)
    return bench.ram.read(RESULT_AT, len(mst_image)), halves


def _mismatches(name, got, want, lay):
    """Messages for the logical part of a padded ``[M, C, K, K]`` tensor; padding must be 0."""
    errors = []
    bad = np.argwhere(got[:lay.m, :lay.c] != want)
    if len(bad):
        i = tuple(bad[0])
        errors.append(f"{len(bad)} of {want.size} {name} differ, first at {i}: "
                      f"{got[:lay.m, :lay.c][i]} != {want[i]}")
    if np.any(got[lay.m:]) or np.any(got[:, lay.c:]):
        errors.append(f"{name} padding lanes are not zero")
    return errors


@cocotb.test()
async def test_wu_layers(dut):
    bench = AccelBench(dut, seed=P["seed"], axi_pause=P["axi_pause"])
    await bench.reset()
    rng = np.random.default_rng([P["seed"], ref.MODES_SEED["wu"]])
    t = CFG.tm
    for case_no in range(P["cases"]):
        case = ref.random_case(rng, engine_config(CFG), "wu")
        junk = rng.bytes(_block_words(case) * WORD_BYTES)
        raw, halves = await _run_case(bench, rng, case, junk)
        # The DRAM image is T * T int64 per block in lane order, whatever the row width.
        rows = [int.from_bytes(raw[i:i + t * WORD_BYTES], "little")
                for i in range(0, len(raw), t * WORD_BYTES)]
        got = ref.unpack_gradient_rows(rows, _weight_shape(case), t)
        errors = _mismatches("accumulators", got, ref.expected(case)["acc"], case.layer)
        assert not errors, f"case {case_no} (wu {case.layer}, halves {halves}): {errors}"


@cocotb.test()
async def test_update_layers(dut):
    bench = AccelBench(dut, seed=P["seed"], axi_pause=P["axi_pause"])
    await bench.reset()
    rng = np.random.default_rng([P["seed"], ref.MODES_SEED["update"]])
    assert CFG.update_lanes, "UPDATE writes masters and velocities only with update_lanes >= 1"
    t, lanes = CFG.tm, master_lanes(CFG)
    row_bits = Buffer.MST.row_bits(CFG)
    for case_no in range(P["cases"]):
        case = ref.random_case(rng, engine_config(CFG), "update")
        image = rows_bytes(ref.pack_master_rows(case.master, case.velocity, t, lanes), row_bits)
        raw, halves = await _run_case(bench, rng, case, image)
        nbytes = row_bits // 8
        rows = [int.from_bytes(raw[i:i + nbytes], "little") for i in range(0, len(raw), nbytes)]
        got = ref.unpack_master_rows(rows, _weight_shape(case), t, lanes)
        want = ref.expected(case)
        errors = [e for name, g in zip(("master", "velocity"), got)
                  for e in _mismatches(name, g, want[name], case.layer)]
        assert not errors, f"case {case_no} (update {case.layer}, halves {halves}): {errors}"
