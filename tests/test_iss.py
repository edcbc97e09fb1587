"""The instruction-level model (``sim/reference/iss.py``) against the golden models.

Tiled layers of every mode (``layer_program``, drawn like ``tb_accel_tiled``) on
``TILED_CONFIG`` and the digits convs on the default config must give the golden whole
layer (``accel_layers.check``) and its useful MACs; DMA transfers of ``dma_cases`` (padding,
corner turn, stores) the rows and bytes those cases expect; pool and eltwise programs (as
``tb_accel_units`` builds them) the golden functions; every bad program its ``ErrorCode``
and instruction index.
"""

import random
import time
from dataclasses import replace

import numpy as np
import pytest

from edgetrain.firmware.tiling import layer_program
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.beats import beat_row
from edgetrain.hw.accel.eltwise import EltwiseOp
from edgetrain.hw.accel.isa import (
    INSN_BYTES, Instruction, Opcode, engine_config, program_bytes)
from edgetrain.hw.accel.pool import PoolMode
from edgetrain.hw.accel.rowunit import UNIT_BUFFERS
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.dma.program import raw_transfer
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields
from edgetrain.sim.bench.accel import layer_sets
from edgetrain.sim.golden.layers import relu_backward
from edgetrain.sim.golden.numerics import wrap_add, wrap_sub
from edgetrain.sim.golden.pool import maxpool2x2, maxpool2x2_backward
from edgetrain.sim.reference import dma_cases
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.reference.iss import Machine, ProgramError
from edgetrain.sim.tb import accel_layers
from edgetrain.sim.tb.accel_bench import rows_bytes
from edgetrain.sim.tb.accel_cases import (
    CUTS, Run, draw_tiled, place_runs, random_map, tile_cuts)
from edgetrain.sim.tb.accel_run import ACCEL_CONFIG, TILED_CONFIG

MEM = 1 << 18
CASES = 6


def _run_layer(cfg, case, tiles=None, mem=MEM):
    """Run ``case``'s tiled program on a fresh ``Machine``; return the check's messages,
    the counters and the program."""
    images = accel_layers.images(cfg, case)
    at = accel_layers.place(images, mem)
    program = layer_program(cfg, case.mode, case.layer, at, tiles=tiles,
                            **accel_layers.options(case))
    machine = Machine(cfg, mem)
    for name, image in images.items():
        machine.dram[at[name]:at[name] + len(image)] = image
    counters = machine.run(program)
    result = accel_layers.result_of(case.mode)
    raw = bytes(machine.dram[at[result]:at[result] + len(images[result])])
    return accel_layers.check(cfg, case, raw), counters, program


@pytest.mark.parametrize("mode", ["fp", "bp", "wu", "update"])
def test_tiled_layers(mode):
    rng = np.random.default_rng([1, ref.MODES_SEED[mode], 15])
    seen = set()
    for case_no in range(CASES):
        cut = CUTS[mode][case_no % len(CUTS[mode])]
        case, tiles = draw_tiled(rng, TILED_CONFIG, mode, cut)
        if mode == "fp":
            case.relu = bool(case_no % 2)
        errors, counters, _ = _run_layer(TILED_CONFIG, case, tiles)
        what = f"case {case_no} ({mode} {case.layer}, {len(tiles)} tiles, {cut})"
        assert errors == [], what
        assert counters.macs == ref.useful_macs(mode, case.layer), what
        want = ref.expected(case)
        assert counters.saturations == want.get("saturations", 0), what
        assert counters.amax == want.get("amax", 0), what
        seen |= {case.rounding, f"relu={case.relu}"} | tile_cuts(tiles)
        seen |= {"accumulate"} if any(t.acc for t in tiles) else set()
        seen |= {"partial"} if any(t.partial for t in tiles) else set()
    assert "stochastic" in seen and "nearest" in seen
    assert set(CUTS[mode]) <= seen
    if mode == "fp":
        assert {"relu=True", "relu=False"} <= seen
    if mode == "wu":
        assert "accumulate" in seen, "no WU case cut the batch"
    if mode == "update":
        assert "partial" in seen, "no UPDATE case cut the batch"


def test_program_from_dram_image():
    """The same tiled layer run from its DRAM image (PROG_ADDR / PROG_COUNT) gives the same
    DRAM and counters; the beats moved are the descriptors' DRAM beats."""
    case, tiles = draw_tiled(np.random.default_rng(5), TILED_CONFIG, "bp", "channels")
    errors, counters, program = _run_layer(TILED_CONFIG, case, tiles)
    assert errors == []
    images = accel_layers.images(TILED_CONFIG, case)
    at = accel_layers.place(images, MEM // 2)
    machine = Machine(TILED_CONFIG, MEM)
    for name, image in images.items():
        machine.dram[at[name]:at[name] + len(image)] = image
    image = program_bytes(TILED_CONFIG, program)
    machine.dram[MEM // 2:MEM // 2 + len(image)] = image
    assert machine.run(addr=MEM // 2, count=len(program)) == counters
    raw = bytes(machine.dram[at["dx"]:at["dx"] + len(images["dx"])])
    assert accel_layers.check(TILED_CONFIG, case, raw) == []
    beats = {op: sum(Descriptor(**i.body["dma"]).dram_beats for i in program if i.op is op)
             for op in (Opcode.LOAD, Opcode.STORE)}
    assert (counters.load_beats, counters.store_beats) == (beats[Opcode.LOAD],
                                                           beats[Opcode.STORE])


def test_update_without_sgd_unit():
    """``update_lanes`` 0: UPDATE leaves the exact accumulators in ``MST`` (T words a row)."""
    cfg = TILED_CONFIG.replace(update_lanes=0)
    rng = np.random.default_rng(21)
    for _ in range(3):
        case, tiles = draw_tiled(rng, cfg, "update", "channels")
        images = accel_layers.images(cfg, case)
        at = accel_layers.place(images, MEM)
        machine = Machine(cfg, MEM)
        for name, image in images.items():
            machine.dram[at[name]:at[name] + len(image)] = image
        machine.run(layer_program(cfg, "update", case.layer, at, tiles=tiles,
                                  **accel_layers.options(case)))
        raw = bytes(machine.dram[at["mst"]:at["mst"] + len(images["mst"])])
        size = Buffer.MST.row_bits(cfg) // 8
        rows = [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]
        lay = case.layer
        got = ref.unpack_gradient_rows(rows, (lay.m, lay.c, lay.k, lay.k), cfg.tm)
        assert np.array_equal(got[:lay.m, :lay.c], ref.expected(case)["acc"]), lay


@pytest.mark.parametrize("mode", ["fp", "bp", "wu", "update"])
def test_digits_layers_default_config(mode):
    cfg = AcceleratorConfig()
    for k, (name, lay) in enumerate(layer_sets()["digits"]):
        case = ref.random_case(np.random.default_rng([7, k, ref.MODES_SEED[mode]]), cfg, mode,
                               layer=lay)
        start = time.perf_counter()
        errors, counters, _ = _run_layer(cfg, case, mem=1 << 20)
        seconds = time.perf_counter() - start
        assert errors == [], f"{name} {mode}"
        assert counters.macs == ref.useful_macs(mode, lay), f"{name} {mode}"
        assert seconds < 5, f"{name} {mode} took {seconds:.2f} s"


def test_fp_rows_carry_relu_mask():
    """One untiled FP COMPUTE whose buffers hold junk in the lanes past ``c`` and ``m``: the
    OUT rows hold the golden values and ReLU mask bits (0 past ``m``), and the counters the
    golden saturations and amax."""
    cfg, t = ACCEL_CONFIG, ACCEL_CONFIG.tm
    lay = LayerShape(n=2, c=3, h=5, w=6, m=6, k=3, stride=1, pad=1)
    rng = np.random.default_rng(3)
    case = ref.random_case(rng, cfg, "fp", layer=lay)
    case.relu, case.rounding = True, "stochastic"
    want = ref.expected(case)
    x = rng.integers(-1 << 15, 1 << 15, size=(2, 4, 5, 6))
    w = rng.integers(-1 << 15, 1 << 15, size=(8, 4, 3, 3))
    x[:, :3], w[:6, :3] = case.x, case.w
    machine = Machine(cfg, 1 << 12)
    x, w = ref.pack_rows(x, t), ref.pack_weight_rows(w, t)
    machine.rows[Buffer.ACT][1][:len(x)] = x
    machine.rows[Buffer.WGT][0][:len(w)] = w
    desc = descriptor_fields(engine_config(cfg), "fp", lay, shift=case.shift, stochastic=True,
                             key=case.key, relu=True)
    halves = 1 << Buffer.ACT.value | 1 << Buffer.OUT.value
    counters = machine.run([Instruction(Opcode.COMPUTE, {"halves": halves, "accumulate": 0,
                                                         "release": 0, "desc": desc}),
                            Instruction(Opcode.FINISH)])
    data, mask = ref.unpack_rows(machine.rows[Buffer.OUT][1], (2, 6, 5, 6), t)
    assert np.array_equal(data[:, :6], want["data"]) and np.array_equal(mask[:, :6],
                                                                         want["mask"])
    assert mask.any() and not mask[:, 6:].any() and not data[:, 6:].any()
    assert (counters.saturations, counters.amax) == (want["saturations"], want["amax"])
    assert counters.macs == ref.useful_macs("fp", lay)


# DMA transfers ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", dma_cases.KINDS)
def test_dma_cases(kind):
    """``dma_cases`` transfers through MST (one beat per row on ``TILED_CONFIG``, two halves
    of 512): loads write exactly the expected beat rows, stores leave exactly the expected
    DRAM image."""
    cfg, lanes, buffer = TILED_CONFIG, TILED_CONFIG.axi_data_bits // 16, Buffer.MST
    depth, rows = 2 * half_depth(cfg, buffer), half_depth(cfg, buffer)
    rng = np.random.default_rng([11, dma_cases.KINDS.index(kind)])
    for _ in range(8):
        case = dma_cases.random_case(rng, kind, lanes=lanes, depth=depth, mem=1 << 14)
        machine = Machine(cfg, len(case.image))
        machine.dram[:] = case.image
        sentinel = [[(h << 20) | r for r in range(rows)] for h in range(2)]
        machine.rows[buffer] = [list(s) for s in sentinel]
        for a, v in case.rows_before.items():
            machine.rows[buffer][a // rows][a % rows] = v
        op = Opcode.STORE if case.desc.store else Opcode.LOAD
        machine.run([Instruction(op, {"buffer": buffer, "dma": vars(case.desc)}),
                     Instruction(Opcode.FINISH)])
        if case.expect_image is not None:
            assert bytes(machine.dram) == case.expect_image, kind
            continue
        for a in range(depth):
            want = case.expect_rows.get(a, sentinel[a // rows][a % rows])
            assert machine.rows[buffer][a // rows][a % rows] == want, (kind, a)


def test_wide_rows_written_with_last_slot():
    """A WGT row is 4 beats on ``ACCEL_CONFIG``: it is written when its 4th beat arrives,
    with the beats collected before (across LOADs), not before."""
    cfg = ACCEL_CONFIG
    machine = Machine(cfg, 1 << 12)
    machine.dram[:32] = bytes(range(32))
    base = beat_row(cfg, Buffer.WGT, 1, 3)

    def load(dram, slot, beats):
        desc = raw_transfer(np.arange(dram, dram + 8 * beats, 2), buf_addr=base + slot,
                            bus_bytes=8)
        return Instruction(Opcode.LOAD, {"buffer": Buffer.WGT, "dma": vars(desc)})
    machine.run([load(0, 0, 1), Instruction(Opcode.FINISH)])
    assert machine.rows[Buffer.WGT][1][3] == 0
    machine.run([load(0, 0, 1), load(8, 1, 3), Instruction(Opcode.FINISH)])
    assert machine.rows[Buffer.WGT][1][3] == int.from_bytes(bytes(range(32)), "little")


# Pool and eltwise ---------------------------------------------------------------------------

T = ACCEL_CONFIG.tm
ROW_BYTES = 2 * T


def _place(rng, sizes):
    return place_runs(rng, ACCEL_CONFIG, sizes)


def _dma(run, dram, *, store=False):
    desc = raw_transfer(np.arange(dram, dram + run.rows * ROW_BYTES, 2), store=store,
                        buf_addr=beat_row(ACCEL_CONFIG, run.buffer, run.half, run.row),
                        bus_bytes=ACCEL_CONFIG.axi_data_bits // 8)
    return {"buffer": run.buffer, "dma": vars(desc)}


class Memory:
    """Operand regions of one program in a ``Machine``'s DRAM."""

    def __init__(self, machine):
        self.machine, self.next = machine, 0x1000

    def put(self, rows):
        at, self.next = self.next, self.next + 0x4000
        raw = np.asarray(rows, dtype="<i2").tobytes()
        self.machine.dram[at:at + len(raw)] = raw
        return at

    def get(self, at, rows):
        raw = bytes(self.machine.dram[at:at + rows * ROW_BYTES])
        return np.frombuffer(raw, dtype="<i2").reshape(rows, T)


def _rows(a):
    """The ``[rows, T]`` int16 lanes of NCHW ``a`` (``ref.pack_rows``)."""
    image = rows_bytes(ref.pack_rows(a, T), 8 * ROW_BYTES)
    return np.frombuffer(image, dtype="<i2").reshape(-1, T)


def _tensor(rows, shape):
    ints = [int.from_bytes(r.astype("<i2").tobytes(), "little") for r in rows]
    return ref.unpack_rows(ints, shape, T)[0][:, :shape[1]]


def _pool_program(mem, mode, src, dst, idx, planes, h, w, loads):
    body = {"mode": mode, "src": src.operand, "dst": dst.operand, "idx": idx.operand,
            "planes": planes, "h": h, "w": w}
    stores = [dst, idx] if mode is PoolMode.FORWARD else [dst]
    at = {id(r): mem.put(np.zeros((r.rows, T))) for r in stores}
    program = [Instruction(Opcode.LOAD, _dma(run, mem.put(rows)),
                           push_next=k == len(loads) - 1) for k, (run, rows) in enumerate(loads)]
    program.append(Instruction(Opcode.POOL, body, pop_prev=True, push_next=True))
    program += [Instruction(Opcode.STORE, _dma(r, at[id(r)], store=True),
                            pop_prev=k == 0, push_prev=k == len(stores) - 1)
                for k, r in enumerate(stores)]
    return program + [Instruction(Opcode.FINISH, pop_next=True)], at


def test_pool_forward_backward():
    rng, nprng = random.Random(1), np.random.default_rng(1)
    for _ in range(8):
        x = random_map(rng, nprng, ACCEL_CONFIG)
        n, c, h, w = x.shape
        planes, full = n * -(-c // T), len(_rows(x))
        want_y, want_idx = maxpool2x2(x)
        machine = Machine(ACCEL_CONFIG, 1 << 17)
        src, dst, idx = _place(rng, (full, full // 4, full // 4))
        program, at = _pool_program(Memory(machine), PoolMode.FORWARD, src, dst, idx,
                                    planes, h, w, [(src, _rows(x))])
        machine.run(program)
        mem = Memory(machine)
        assert np.array_equal(_tensor(mem.get(at[id(dst)], dst.rows), want_y.shape), want_y)
        assert np.array_equal(_tensor(mem.get(at[id(idx)], idx.rows), want_idx.shape),
                              want_idx)
        dy = nprng.integers(-1 << 15, 1 << 15, size=want_y.shape).astype(np.int16)
        src, idx, dst = _place(rng, (full // 4, full // 4, full))
        program, at = _pool_program(Memory(machine), PoolMode.BACKWARD, src, dst, idx, planes,
                                    h, w, [(src, _rows(dy)),
                                           (idx, _rows(want_idx.astype(np.int16)))])
        machine.run(program)
        want_dx = maxpool2x2_backward(dy, want_idx)
        assert np.array_equal(_tensor(Memory(machine).get(at[id(dst)], full), want_dx.shape),
                              want_dx)


ELTWISE = {EltwiseOp.ADD: wrap_add, EltwiseOp.SUB: wrap_sub,
           EltwiseOp.RELU_MASK: lambda a, b: relu_backward(a, b > 0),
           EltwiseOp.COPY: lambda a, b: a}


@pytest.mark.parametrize("op", list(EltwiseOp))
def test_eltwise(op):
    rng, nprng = random.Random(op.value), np.random.default_rng(op.value)
    fit = min(half_depth(ACCEL_CONFIG, b) for b in UNIT_BUFFERS)
    for case in range(6):
        rows = rng.randint(1, fit)
        a, b = (nprng.integers(-1 << 15, 1 << 15, size=(rows, T)).astype(np.int16)
                for _ in range(2))
        ra, rb, rd = _place(rng, (rows,) * 3)
        rd = ra if case % 3 == 2 else rd        # in place
        machine = Machine(ACCEL_CONFIG, 1 << 17)
        mem = Memory(machine)
        a_at, b_at, d_at = mem.put(a), mem.put(b), mem.put(np.zeros((rows, T)))
        body = {"op": op, "a": ra.operand, "b": rb.operand, "d": rd.operand, "rows": rows}
        machine.run([
            Instruction(Opcode.LOAD, _dma(ra, a_at)),
            Instruction(Opcode.LOAD, _dma(rb, b_at), push_next=True),
            Instruction(Opcode.ELTWISE, body, pop_prev=True, push_next=True),
            Instruction(Opcode.STORE, _dma(rd, d_at, store=True), pop_prev=True,
                        push_prev=True),
            Instruction(Opcode.FINISH, pop_next=True)])
        want = ELTWISE[op](a, b)
        assert np.array_equal(mem.get(d_at, rows), want), (op, case)
        if rd.buffer is Buffer.OUT:
            masks = [v >> (16 * T) for v in machine.rows[Buffer.OUT][rd.half][rd.row:][:rows]]
            assert masks == [sum(1 << k for k, v in enumerate(row) if v > 0) for row in want]


# Bad programs -------------------------------------------------------------------------------

def _good():
    """A LOAD of 8 ACT rows, a COPY, a STORE, FINISH (``ACCEL_CONFIG``)."""
    a, d = Run(Buffer.ACT, 0, 0, 8), Run(Buffer.OUT, 1, 4, 8)
    copy = {"op": EltwiseOp.COPY, "a": a.operand, "b": a.operand, "d": d.operand, "rows": 8}
    return [Instruction(Opcode.LOAD, _dma(a, 0x1000), push_next=True),
            Instruction(Opcode.ELTWISE, copy, pop_prev=True, push_next=True),
            Instruction(Opcode.STORE, _dma(d, 0x2000, store=True), pop_prev=True,
                        push_prev=True),
            Instruction(Opcode.FINISH, pop_next=True)]


def _with(program, i, **changes):
    """``program`` with instruction ``i``'s body (``dma`` / ``desc`` fields too) changed."""
    insn = program[i]
    body = {k: dict(v) if isinstance(v, dict) else v for k, v in insn.body.items()}
    for key, value in changes.items():
        for part in ("dma", "desc"):
            if part in body and key in body[part]:
                body[part][key] = value
                break
        else:
            body[key] = value
    return program[:i] + [replace(insn, body=body)] + program[i + 1:]


def _compute_program():
    lay = LayerShape(n=1, c=4, h=4, w=4, m=4, k=3, pad=1)
    desc = descriptor_fields(engine_config(ACCEL_CONFIG), "fp", lay)
    return [Instruction(Opcode.COMPUTE, {"halves": 0, "accumulate": 0, "release": 0,
                                         "desc": desc}),
            Instruction(Opcode.FINISH)]


BAD = {
    "dma zero count": (lambda: _with(_good(), 0, n0=0), 0, ErrorCode.LOAD),
    "dma misaligned": (lambda: _with(_good(), 0, dram_addr=0x1002), 0, ErrorCode.LOAD),
    "dma bounds": (lambda: _with(_good(), 0, buf_addr=1020), 0, ErrorCode.LOAD),
    "dma lengths": (lambda: _with(_good(), 0, n0=7), 0, ErrorCode.LOAD),
    "dma padding on a store": (lambda: _with(_good(), 2, pad_top=1, n2=2),
                               2, ErrorCode.STORE),
    "load with the store bit": (lambda: _with(_good(), 0, store=1), 0, ErrorCode.LOAD),
    "row outside ACT": (lambda: _with(_good(), 0, buf_addr=2 * 128 - 4), 0, ErrorCode.LOAD),
    "row outside OUT": (lambda: _with(_good(), 2, buf_addr=250), 2, ErrorCode.STORE),
    "dram outside window": (lambda: _with(_good(), 2, dram_addr=(1 << 16) - 8), 2,
                            ErrorCode.STORE),
    "eltwise zero rows": (lambda: _with(_good(), 1, rows=0), 1, ErrorCode.ELTWISE),
    "eltwise run past half": (lambda: _with(_good(), 1, d={"buffer": Buffer.OUT, "half": 1,
                                                         "row": 125}), 1, ErrorCode.ELTWISE),
    "eltwise on WGT": (lambda: _with(_good(), 1, a={"buffer": Buffer.WGT, "half": 0,
                                                  "row": 0}), 1, ErrorCode.ELTWISE),
    "pool odd side": (lambda: [Instruction(Opcode.POOL, {
        "mode": PoolMode.FORWARD, "src": {"buffer": Buffer.ACT, "half": 0, "row": 0},
        "dst": {"buffer": Buffer.OUT, "half": 0, "row": 0},
        "idx": {"buffer": Buffer.OUT, "half": 1, "row": 0}, "planes": 1, "h": 3, "w": 2}),
        Instruction(Opcode.FINISH)], 0, ErrorCode.POOL),
    "engine pad >= kernel": (lambda: _with(_compute_program(), 0, pad=3), 0, ErrorCode.ENGINE),
    "engine run past ACT": (lambda: _with(_compute_program(), 0, act_plane=127, red_tiles=2,
                                          red_ch=8), 0, ErrorCode.ENGINE),
    "engine tile count": (lambda: _with(_compute_program(), 0, out_tiles=2), 0,
                          ErrorCode.ENGINE),
    "flag of a missing queue": (lambda: [replace(_good()[0], pop_prev=True)] + _good()[1:],
                                0, ErrorCode.DEPS),
    "deadlock": (lambda: [replace(_good()[0], push_next=False)] + _good()[1:], 1,
                 ErrorCode.DEADLOCK),
    "no finish": (lambda: _good()[:3], None, ErrorCode.NO_FINISH),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_program(name):
    build, index, code = BAD[name]
    machine = Machine(ACCEL_CONFIG, 1 << 17)
    machine.window = (0, 1 << 16)
    with pytest.raises(ProgramError) as e:
        machine.run(build())
    assert (e.value.index, e.value.code) == (index, code), str(e.value)
    assert machine.run(_good()).instructions == 4


def test_bad_program_image():
    """From DRAM: an unknown opcode, bad flags, a misaligned or out-of-window program."""
    machine = Machine(ACCEL_CONFIG, 1 << 17)
    image = bytearray(program_bytes(ACCEL_CONFIG, _good()))
    machine.dram[0x8000:0x8000 + len(image)] = image
    assert machine.run(addr=0x8000, count=4).instructions == 4
    for byte, code in ((0, ErrorCode.OPCODE), (7, ErrorCode.OPCODE),
                       (1 | 1 << 3, ErrorCode.DEPS)):
        bad = bytearray(image)
        bad[2 * INSN_BYTES] = byte
        machine.dram[0x8000:0x8000 + len(bad)] = bad
        with pytest.raises(ProgramError) as e:
            machine.run(addr=0x8000, count=4)
        assert (e.value.index, e.value.code) == (2, code)
    with pytest.raises(ProgramError) as e:
        machine.run(addr=0x8020, count=4)
    assert e.value.code is ErrorCode.ALIGN
    machine.window = (0, 0x8000)
    with pytest.raises(ProgramError) as e:
        machine.run(addr=0x8000, count=4)
    assert e.value.code is ErrorCode.FETCH
