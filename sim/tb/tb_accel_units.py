"""cocotb testbench of ``Accelerator``'s pool and eltwise units, DRAM to DRAM.

Every case is a program from DRAM (``accel_bench.AccelBench``, AxiRam with random pauses):
the operands are LOADed into random rows of random halves of ``ACT`` or ``OUT``, POOL or
ELTWISE instructions run on them, the results are STOREd; bit for bit against the golden
model. Parameters (``EDGETRAIN_PARAMS``): ``config`` (``AcceleratorConfig`` fields),
``seed``, ``cases``, ``axi_pause``.

``test_pool``: max-pool FORWARD (``y`` and the argmax rows) then BACKWARD on random ``dy``
and those argmax rows, against ``sim/golden/pool.py``.
``test_coupling``: ``y1 = x1 + F`` (ELTWISE ADD, in place or not) then ``x1 = y1 - F``
(SUB) on random int16 (``numerics.wrap_add``, the coupling of ``sim/golden/rev.py``): ``y1``
and the restored ``x1`` are both checked.
``test_conv_coupling``: the same with ``F = ReLU(conv(x2))`` from an FP COMPUTE into OUT
(``x2``, ``w`` LOADed; ``sim/reference/engine.py``'s golden conv layer).
``test_relu_mask``: ELTWISE RELU_MASK against ``layers.relu_backward(dy, act > 0)``.
With eDRAM-style banks (a refresh policy other than ``none`` for ``ACT``), every program
must also leave the banks' ``violations`` counters (``hw/accel/control.py``) at zero and
the tests together must see refreshes.
``test_compute_release`` (``live`` banks): a tiled FP layer (``firmware/tiling.py``, whose
COMPUTEs release the ACT halves they read) is bit-exact, and a program of WGT loads after it
refreshes no ACT row; the same layer with the release bits cleared leaves its rows live,
and the same WGT program refreshes them.
``test_lifetime_expiry`` (for a config whose ``ACT`` bank is ``lifetime`` with
``decay_injection``): a LOAD, COPY, STORE program is bit-exact when the data are used at
once, and comes out corrupted, with violations, when slow LOADs into ``WGT`` delay the COPY
past the retention time.
"""

import json
import os

import cocotb
import numpy as np

from edgetrain.firmware.tiling import layer_program
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.beats import beat_row
from edgetrain.hw.accel.eltwise import EltwiseOp
from edgetrain.hw.accel.isa import (
    Instruction, Opcode, check_program, engine_config, program_bytes)
from edgetrain.hw.accel.pool import PoolMode
from edgetrain.hw.accel.rowunit import UNIT_BUFFERS
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.program import raw_transfer
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields
from edgetrain.sim.golden.layers import relu_backward
from edgetrain.sim.golden.numerics import wrap_add, wrap_sub
from edgetrain.sim.golden.pool import maxpool2x2, maxpool2x2_backward
from edgetrain.sim.reference import engine as ref
from . import accel_layers
from .accel_bench import AccelBench, rows_bytes
from .accel_cases import Run, place_runs, random_map

P = {"seed": 1, "cases": 4, "axi_pause": 0.2, **json.loads(os.environ.get("EDGETRAIN_PARAMS",
                                                                          "{}"))}
CFG = AcceleratorConfig(**P["config"])
T = CFG.tm
ROW_BYTES = 2 * T           # the value lanes of an ACT or OUT row, as the DMA moves them
EDRAM = CFG.policy(Buffer.ACT) != "none"
DRAM_AT = 0x1000            # operand and result regions, 0x4000 bytes apart
REGION = 0x4000
WAIT_LOADS = 6              # WGT loads that delay a use past a short retention


def _place(rng, sizes):
    """Random non-overlapping runs of ``sizes`` rows in the ACT / OUT halves."""
    return place_runs(rng, CFG, sizes)


def _dma(run, dram, *, store=False):
    """The LOAD (or STORE) body moving ``run``'s value lanes from (to) DRAM at ``dram``."""
    nbytes = run.rows * ROW_BYTES
    desc = raw_transfer(np.arange(dram, dram + nbytes, 2), store=store,
                        buf_addr=beat_row(CFG, run.buffer, run.half, run.row),
                        bus_bytes=CFG.axi_data_bits // 8)
    return {"buffer": run.buffer, "dma": vars(desc)}


def _rows(a):
    """The ``ACT``/``OUT`` rows (``[rows, T]`` int16 lanes) of an NCHW tensor
    (``ref.pack_rows``: channels padded to a multiple of ``T``)."""
    image = rows_bytes(ref.pack_rows(a, T), 8 * ROW_BYTES)
    return np.frombuffer(image, dtype="<i2").reshape(-1, T)


def _tensor(rows, shape):
    """The NCHW tensor of ``shape`` from its rows (``ref.unpack_rows``, padding dropped)."""
    ints = [int.from_bytes(row.tobytes(), "little") for row in rows]
    return ref.unpack_rows(ints, shape, T)[0][:, :shape[1]]


def _bench(dut):
    return AccelBench(dut, seed=P["seed"], axi_pause=P["axi_pause"])


class Memory:
    """The DRAM regions of one program: ``put`` operand rows, ``get`` result rows."""

    def __init__(self, bench):
        self.ram, self.next = bench.ram, DRAM_AT

    def put(self, rows):
        at, self.next = self.next, self.next + REGION
        self.ram.write(at, np.asarray(rows, dtype="<i2").tobytes())
        return at

    def result(self, rows):
        at, self.next = self.next, self.next + REGION
        self.ram.write(at, bytes(rows * ROW_BYTES))
        return at

    def get(self, at, rows):
        raw = self.ram.read(at, rows * ROW_BYTES)
        return np.frombuffer(raw, dtype="<i2").reshape(rows, T)


async def _bank_counts(bench):
    """Return ``{"refreshes", "violations"}`` of the ACT and OUT banks, summed."""
    banks = (await bench.counters(CFG)).banks
    return {name: sum(int(getattr(getattr(banks, b.port_name), name)) for b in UNIT_BUFFERS)
            for name in ("refreshes", "violations")}


async def _run(bench, program, what):
    """Run ``program``; fail unless it finishes without error (and, with eDRAM banks,
    without a violation). Return the bank counters."""
    check_program(program)
    status = await bench.run(program_bytes(CFG, program))
    assert status == {"done": 1, "error": ErrorCode.NONE}, (what, status)
    counts = await _bank_counts(bench)
    assert counts["violations"] == 0, (what, counts)
    return counts


class Refreshes:
    """Check, at the end of a test with eDRAM-style banks, that some refresh happened."""

    def __init__(self):
        self.seen = 0

    def add(self, counts):
        self.seen = max(self.seen, counts["refreshes"])

    def check(self):
        assert not EDRAM or self.seen > 0, "no refresh happened: shorten retention_cycles"


def _pool_forward(rng, mem, x):
    """The POOL FORWARD program of ``x`` and where its ``y`` and argmax rows land."""
    n, c, h, w = x.shape
    full = len(_rows(x))
    src, dst, idx = _place(rng, (full, full // 4, full // 4))
    x_at, y_at, idx_at = mem.put(_rows(x)), mem.result(dst.rows), mem.result(idx.rows)
    body = {"mode": PoolMode.FORWARD, "src": src.operand, "dst": dst.operand,
            "idx": idx.operand, "planes": n * -(-c // T), "h": h, "w": w}
    program = [
        Instruction(Opcode.LOAD, _dma(src, x_at), push_next=True),
        Instruction(Opcode.POOL, body, pop_prev=True, push_next=True),
        Instruction(Opcode.STORE, _dma(dst, y_at, store=True), pop_prev=True),
        Instruction(Opcode.STORE, _dma(idx, idx_at, store=True), push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    return program, (y_at, idx_at, dst.rows), (src, dst, idx)


def _pool_backward(rng, mem, dy, argmax):
    """The POOL BACKWARD program of ``dy`` and ``argmax`` and where ``dx`` lands."""
    n, c, h, w = dy.shape
    pooled = len(_rows(dy))
    src, idx, dst = _place(rng, (pooled, pooled, 4 * pooled))
    dy_at, idx_at, dx_at = mem.put(_rows(dy)), mem.put(_rows(argmax)), mem.result(dst.rows)
    body = {"mode": PoolMode.BACKWARD, "src": src.operand, "dst": dst.operand,
            "idx": idx.operand, "planes": n * -(-c // T), "h": 2 * h, "w": 2 * w}
    program = [
        Instruction(Opcode.LOAD, _dma(src, dy_at)),
        Instruction(Opcode.LOAD, _dma(idx, idx_at), push_next=True),
        Instruction(Opcode.POOL, body, pop_prev=True, push_next=True),
        Instruction(Opcode.STORE, _dma(dst, dx_at, store=True), pop_prev=True, push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    return program, dx_at, (src, idx, dst)


def _differ(got, want, what):
    return f"{what}: {int(np.sum(got != want))} of {want.size} values differ"


@cocotb.test()
async def test_pool(dut):
    bench = _bench(dut)
    await bench.reset()
    rng, nprng, refreshes = bench.rng, np.random.default_rng(P["seed"]), Refreshes()
    for case in range(P["cases"]):
        x = random_map(rng, nprng, CFG)
        want_y, want_idx = maxpool2x2(x)
        mem = Memory(bench)
        program, (y_at, idx_at, rows), runs = _pool_forward(rng, mem, x)
        what = f"case {case} forward {x.shape} {[vars(r) for r in runs]}"
        refreshes.add(await _run(bench, program, what))
        got_y = _tensor(mem.get(y_at, rows), want_y.shape)
        got_idx = _tensor(mem.get(idx_at, rows), want_idx.shape)
        assert np.array_equal(got_y, want_y), _differ(got_y, want_y, what + " y")
        assert np.array_equal(got_idx, want_idx), _differ(got_idx, want_idx, what + " argmax")
        dy = nprng.integers(-1 << 15, 1 << 15, size=want_y.shape).astype(np.int16)
        mem = Memory(bench)
        program, dx_at, runs = _pool_backward(rng, mem, dy, want_idx.astype(np.int16))
        what = f"case {case} backward {dy.shape} {[vars(r) for r in runs]}"
        refreshes.add(await _run(bench, program, what))
        want_dx = maxpool2x2_backward(dy, want_idx)
        got_dx = _tensor(mem.get(dx_at, len(_rows(want_dx))), want_dx.shape)
        assert np.array_equal(got_dx, want_dx), _differ(got_dx, want_dx, what + " dx")
    refreshes.check()


def _eltwise(op, a, b, d):
    return {"op": op, "a": a.operand, "b": b.operand, "d": d.operand, "rows": d.rows}


def _random_rows(rng, nprng):
    """``[rows, T]`` random int16 lanes, ``rows`` up to a half of ACT and OUT."""
    fit = min(half_depth(CFG, b) for b in UNIT_BUFFERS)
    return nprng.integers(-1 << 15, 1 << 15, size=(rng.randint(1, fit), T)).astype(np.int16)


def _coupling(rng, mem, x1, f):
    """LOAD ``x1`` and ``F``; ``y1 = x1 + F`` (in place over ``x1`` in some cases), then
    ``x1 = y1 - F`` into another run; STORE both. Return the program, the DRAM addresses of
    ``y1`` and of the restored ``x1``, and the runs.

    The STOREs come last: a STORE releases the rows it reads (``r_last``), so an eDRAM-style
    bank stops refreshing them."""
    rows = len(x1)
    x_run, f_run, y_run, back_run = _place(rng, (rows,) * 4)
    if rng.random() < 0.3:
        y_run = x_run
    x_at, f_at = mem.put(x1), mem.put(f)
    y_at, back_at = mem.result(rows), mem.result(rows)
    program = [
        Instruction(Opcode.LOAD, _dma(x_run, x_at)),
        Instruction(Opcode.LOAD, _dma(f_run, f_at), push_next=True),
        Instruction(Opcode.ELTWISE, _eltwise(EltwiseOp.ADD, x_run, f_run, y_run),
                    pop_prev=True),
        Instruction(Opcode.ELTWISE, _eltwise(EltwiseOp.SUB, y_run, f_run, back_run),
                    push_next=True),
        Instruction(Opcode.STORE, _dma(y_run, y_at, store=True), pop_prev=True),
        Instruction(Opcode.STORE, _dma(back_run, back_at, store=True), push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    return program, y_at, back_at, (x_run, f_run, y_run, back_run)


@cocotb.test()
async def test_coupling(dut):
    bench = _bench(dut)
    await bench.reset()
    rng, nprng, refreshes = bench.rng, np.random.default_rng(P["seed"] + 1), Refreshes()
    for case in range(P["cases"]):
        x1 = _random_rows(rng, nprng)
        f = nprng.integers(-1 << 15, 1 << 15, size=x1.shape).astype(np.int16)
        mem = Memory(bench)
        program, y_at, back_at, runs = _coupling(rng, mem, x1, f)
        what = f"case {case}: {len(x1)} rows {[vars(r) for r in runs]}"
        refreshes.add(await _run(bench, program, what))
        y1, back = mem.get(y_at, len(x1)), mem.get(back_at, len(x1))
        want = wrap_add(x1, f)
        assert np.array_equal(y1, want), _differ(y1, want, what + " y1 = x1 + F")
        assert np.array_equal(back, x1), _differ(back, x1, what + " x1 = y1 - F")
    refreshes.check()


def _relu_mask(rng, mem, dy, act):
    """LOAD ``dy`` and ``act``, ELTWISE RELU_MASK into a third run, STORE it."""
    a, b, d = _place(rng, (len(dy),) * 3)
    dy_at, act_at, dx_at = mem.put(dy), mem.put(act), mem.result(len(dy))
    program = [
        Instruction(Opcode.LOAD, _dma(a, dy_at)),
        Instruction(Opcode.LOAD, _dma(b, act_at), push_next=True),
        Instruction(Opcode.ELTWISE, _eltwise(EltwiseOp.RELU_MASK, a, b, d), pop_prev=True,
                    push_next=True),
        Instruction(Opcode.STORE, _dma(d, dx_at, store=True), pop_prev=True, push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    return program, dx_at, (a, b, d)


@cocotb.test()
async def test_relu_mask(dut):
    bench = _bench(dut)
    await bench.reset()
    rng, nprng, refreshes = bench.rng, np.random.default_rng(P["seed"] + 2), Refreshes()
    for case in range(P["cases"]):
        dy = _random_rows(rng, nprng)
        # The forward activation after ReLU (zeros and positives) or any int16.
        act = nprng.integers(-1 << 15, 1 << 15, size=dy.shape).astype(np.int16)
        if case % 2:
            act = np.maximum(act, 0)
        mem = Memory(bench)
        program, dx_at, runs = _relu_mask(rng, mem, dy, act)
        what = f"case {case}: {len(dy)} rows {[vars(r) for r in runs]}"
        refreshes.add(await _run(bench, program, what))
        got, want = mem.get(dx_at, len(dy)), relu_backward(dy, act > 0)
        assert np.array_equal(got, want), _differ(got, want, what)
    refreshes.check()



def _conv_case(nprng, fit):
    """A random FP layer with ReLU whose input and output rows both fit in ``fit`` rows."""
    while True:
        case = ref.random_case(nprng, engine_config(CFG), "fp")
        lay = case.layer
        x_rows = lay.n * -(-lay.c // T) * lay.h * lay.w
        f_rows = lay.n * -(-lay.m // T) * lay.out_h * lay.out_w
        if x_rows + f_rows <= fit:
            case.relu = True
            return case, x_rows, f_rows


def _conv_coupling(rng, mem, case, x_rows, x1):
    """LOAD ``x2`` (ACT), ``w`` and ``x1``; COMPUTE ``F = ReLU(conv(x2))`` into OUT, then
    ``y1 = x1 + F`` and ``x1 = y1 - F`` (into ACT after ``x2``); STORE both."""
    halves = {b: rng.randrange(2) for b in Buffer}
    act, out = halves[Buffer.ACT], halves[Buffer.OUT]
    rows = len(x1)
    f_run = Run(Buffer.OUT, out, 0, rows)
    x_run, y_run = Run(Buffer.ACT, 1 - act, 0, rows), Run(Buffer.OUT, 1 - out, 0, rows)
    back_run = Run(Buffer.ACT, act, x_rows, rows)
    wgt = rows_bytes(ref.pack_weight_rows(case.w, T), Buffer.WGT.row_bits(CFG))
    x2_at = mem.put(_rows(case.x.astype(np.int16)))
    w_at, mem.next = mem.next, mem.next + REGION
    mem.ram.write(w_at, wgt)
    x1_at, y_at, back_at = mem.put(x1), mem.result(rows), mem.result(rows)
    w_body = {"buffer": Buffer.WGT, "dma": vars(raw_transfer(
        np.arange(w_at, w_at + len(wgt), 2), buf_addr=beat_row(CFG, Buffer.WGT,
                                                               halves[Buffer.WGT], 0),
        bus_bytes=CFG.axi_data_bits // 8))}
    fields = descriptor_fields(engine_config(CFG), "fp", case.layer, shift=case.shift,
                               stochastic=case.rounding == "stochastic", key=case.key,
                               relu=True)
    half_bits = sum(h << b.value for b, h in halves.items())
    program = [
        Instruction(Opcode.LOAD, _dma(Run(Buffer.ACT, act, 0, x_rows), x2_at)),
        Instruction(Opcode.LOAD, w_body),
        Instruction(Opcode.LOAD, _dma(x_run, x1_at), push_next=True),
        Instruction(Opcode.COMPUTE, {"halves": half_bits, "desc": fields}, pop_prev=True),
        Instruction(Opcode.ELTWISE, _eltwise(EltwiseOp.ADD, x_run, f_run, y_run)),
        Instruction(Opcode.ELTWISE, _eltwise(EltwiseOp.SUB, y_run, f_run, back_run),
                    push_next=True),
        Instruction(Opcode.STORE, _dma(y_run, y_at, store=True), pop_prev=True),
        Instruction(Opcode.STORE, _dma(back_run, back_at, store=True), push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    return program, y_at, back_at, halves


@cocotb.test()
async def test_conv_coupling(dut):
    bench = _bench(dut)
    await bench.reset()
    rng, nprng, refreshes = bench.rng, np.random.default_rng(P["seed"] + 4), Refreshes()
    fit = min(half_depth(CFG, b) for b in UNIT_BUFFERS)
    for case_no in range(P["cases"]):
        case, x_rows, f_rows = _conv_case(nprng, fit)
        f = ref.expected(case)["data"].astype(np.int16)
        x1 = nprng.integers(-1 << 15, 1 << 15, size=f.shape).astype(np.int16)
        mem = Memory(bench)
        program, y_at, back_at, halves = _conv_coupling(rng, mem, case, x_rows, _rows(x1))
        what = f"case {case_no}: {case.layer}, halves {halves}"
        refreshes.add(await _run(bench, program, what))
        y1 = _tensor(mem.get(y_at, f_rows), f.shape)
        back = _tensor(mem.get(back_at, f_rows), f.shape)
        want = wrap_add(x1, f)
        assert np.array_equal(y1, want), _differ(y1, want, what + " y1 = x1 + F")
        assert np.array_equal(back, x1), _differ(back, x1, what + " x1 = y1 - F")
    refreshes.check()

def _wgt_load(mem):
    """The LOAD body of a whole WGT half from ``mem``'s next region (SRAM: it only takes
    time)."""
    wgt_bytes = half_depth(CFG, Buffer.WGT) * Buffer.WGT.row_bits(CFG) // 8
    return {"buffer": Buffer.WGT, "dma": vars(raw_transfer(
        np.arange(mem.next, mem.next + wgt_bytes, 2), buf_addr=0,
        bus_bytes=CFG.axi_data_bits // 8))}


def _copy_later(rng, mem, x, wait_loads):
    """LOAD ``x`` into ACT, then ``wait_loads`` LOADs of a whole WGT half (SRAM: they only
    take time), then ELTWISE COPY ``x`` into OUT and STORE the copy. Return the program and
    where the copy lands."""
    src = Run(Buffer.ACT, rng.randrange(2), 0, len(x))
    dst = Run(Buffer.OUT, rng.randrange(2), 0, len(x))
    x_at, copy_at = mem.put(x), mem.result(len(x))
    wait = _wgt_load(mem)
    program = [Instruction(Opcode.LOAD, _dma(src, x_at), push_next=not wait_loads)]
    program += [Instruction(Opcode.LOAD, wait, push_next=i == wait_loads - 1)
                for i in range(wait_loads)]
    program += [
        Instruction(Opcode.ELTWISE, _eltwise(EltwiseOp.COPY, src, src, dst), pop_prev=True,
                    push_next=True),
        Instruction(Opcode.STORE, _dma(dst, copy_at, store=True), pop_prev=True,
                    push_prev=True),
        Instruction(Opcode.FINISH, pop_next=True),
    ]
    check_program(program)
    return program, copy_at


@cocotb.test()
async def test_lifetime_expiry(dut):
    assert CFG.policy(Buffer.ACT) == "lifetime" and CFG.decay_injection, CFG
    bench = _bench(dut)
    await bench.reset()
    rng, nprng = bench.rng, np.random.default_rng(P["seed"] + 3)
    x = nprng.integers(-1 << 15, 1 << 15, size=(16, T)).astype(np.int16)
    mem = Memory(bench)
    program, copy_at = _copy_later(rng, mem, x, 0)
    await _run(bench, program, "used at once")
    cycles = int((await bench.counters(CFG)).cycles)
    assert cycles < CFG.retention_cycles, f"the prompt program ran {cycles} cycles"
    got = mem.get(copy_at, len(x))
    assert np.array_equal(got, x), _differ(got, x, "used at once")
    mem = Memory(bench)
    program, copy_at = _copy_later(rng, mem, x, WAIT_LOADS)
    status = await bench.run(program_bytes(CFG, program))
    assert status == {"done": 1, "error": ErrorCode.NONE}, status
    counts = await _bank_counts(bench)
    dut._log.info("retention %d cycles; the delayed program ran %d cycles, %s",
                  CFG.retention_cycles, int((await bench.counters(CFG)).cycles), counts)
    got = mem.get(copy_at, len(x))
    # Each of x's rows is read once, by the COPY, after its retention: a violation and a
    # corrupted row each.
    assert counts == {"refreshes": 0, "violations": len(x)}, counts
    intact = int(np.sum(np.all(got == x, axis=1)))
    assert intact == 0, f"{intact} of {len(x)} rows read after their retention came out intact"
    # The bank counters are the last program's: a prompt program after it counts none.
    mem = Memory(bench)
    program, copy_at = _copy_later(rng, mem, x, 0)
    await _run(bench, program, "used at once, after the delayed program")
    got = mem.get(copy_at, len(x))
    assert np.array_equal(got, x), _differ(got, x, "used at once, after the delayed program")


def _wgt_wait(mem, loads):
    """A program of ``loads`` LOADs of a whole WGT half (SRAM): time passing, ACT untouched."""
    return [Instruction(Opcode.LOAD, _wgt_load(mem))] * loads + [Instruction(Opcode.FINISH)]


def _act_refreshes(counters):
    return int(counters.banks.act.refreshes)


@cocotb.test()
async def test_compute_release(dut):
    assert CFG.policy(Buffer.ACT) == "live", CFG
    bench = _bench(dut)
    await bench.reset()
    nprng = np.random.default_rng(P["seed"] + 5)
    lay = LayerShape(n=2, c=T, h=8, w=8, m=T, k=3, pad=1)
    after = {}
    for release in (True, False):
        case = ref.random_case(nprng, CFG, "fp", layer=lay)
        images = accel_layers.images(CFG, case)
        at = accel_layers.place(images, bench.program_at)
        for name, image in images.items():
            bench.ram.write(at[name], image)
        program = layer_program(CFG, "fp", lay, at, **accel_layers.options(case))
        computes = [insn.body for insn in program if insn.op is Opcode.COMPUTE]
        assert all(b["release"] >> Buffer.ACT.value & 1 for b in computes), computes
        if not release:
            for body in computes:
                body["release"] = 0
        status = await bench.run(program_bytes(CFG, program))
        assert status == {"done": 1, "error": ErrorCode.NONE}, (release, status)
        errors = accel_layers.check(CFG, case, bench.ram.read(at["y"], len(images["y"])))
        assert not errors, (release, errors)
        wait = _wgt_wait(Memory(bench), WAIT_LOADS)
        status = await bench.run(program_bytes(CFG, wait))
        assert status == {"done": 1, "error": ErrorCode.NONE}, (release, status)
        c = await bench.counters(CFG)
        after[release] = _act_refreshes(c)
        assert int(c.cycles) > CFG.retention_cycles, int(c.cycles)
    dut._log.info("ACT refreshes in the WGT-only program after the layer: %s", after)
    assert after[True] == 0 and after[False] > 0, after
