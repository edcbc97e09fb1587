# amaranth: UnusedElaboratable=no
"""The pool and eltwise units of the compute queue (hw/accel/pool.py, hw/accel/eltwise.py).

Each unit runs in Amaranth's simulator against two Python bank models (ACT and OUT) that
drop ``ready`` at random and check the memory-port contract; after every descriptor the
whole content of both banks must equal the golden model's (sim/golden: pool, numerics,
layers) applied to the banks as they were, so a stray write anywhere fails the test.
"""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgetrain.errors import ConfigError
from edgetrain.hw.accel.banks import bank_addr_bits, half_depth
from edgetrain.hw.accel.eltwise import EltwiseOp, EltwiseUnit, encode_eltwise
from edgetrain.hw.accel.pool import PoolMode, PoolUnit, encode_pool
from edgetrain.hw.accel.rowunit import Operand
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.lanes import LANE_BITS, pack_lanes, unpack_lanes
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.golden import numerics
from edgetrain.sim.golden.layers import relu_backward
from edgetrain.sim.golden.pool import maxpool2x2, maxpool2x2_backward
from edgetrain.sim.reference.engine import pack_rows

ACT, OUT = Buffer.ACT, Buffer.OUT
SLOTS = [(b, h) for b in (ACT, OUT) for h in (0, 1)]


def config(t):
    """A small config; the OUT half (40 rows for T=4) is not a power of two."""
    return AcceleratorConfig(tm=t, tn=t, max_kernel=3, max_channels=8, max_size=8,
                             max_batch=4, input_depth=96 if t == 2 else 128, weight_depth=16,
                             output_depth=64 if t == 2 else 80)


class Banks:
    """The ACT and OUT banks as Python rows, addressed ``{half, row}`` like the ports."""

    def __init__(self, cfg, rnd=None, rows=None):
        """Random rows from ``rnd`` (every address, so stray writes show), or ``rows``."""
        self.cfg, self.t = cfg, cfg.tm
        self.rows = rows or {b: [rnd.getrandbits(b.row_bits(cfg))
                                 for _ in range(1 << bank_addr_bits(cfg, b))]
                             for b in (ACT, OUT)}

    def addr(self, operand, i):
        """The bank address of row ``i`` of the run starting at ``operand``."""
        buffer, half, row = operand
        assert 0 <= row + i < half_depth(self.cfg, buffer)
        return half << (bank_addr_bits(self.cfg, buffer) - 1) | (row + i)

    def read(self, operand, count):
        """Return the value lanes of ``count`` rows from ``operand`` as int16 ``[count, T]``."""
        rows = self.rows[operand.buffer]
        return np.array([unpack_lanes(rows[self.addr(operand, i)], self.t, signed=True)
                         for i in range(count)], dtype=np.int16).reshape(count, self.t)

    def write(self, operand, lanes):
        """Write rows of value lanes as the units do (``OUT``: mask bits ``value > 0``)."""
        for i, values in enumerate(lanes):
            row = pack_lanes(values)
            if operand.buffer is OUT:
                row |= pack_lanes([int(v > 0) for v in values], 1) << (LANE_BITS * self.t)
            self.rows[operand.buffer][self.addr(operand, i)] = row

    def fill(self, operand, rows, rnd):
        """Store packed rows (``OUT``: with random mask bits, which the units must ignore)."""
        for i, row in enumerate(rows):
            if operand.buffer is OUT:
                row |= rnd.getrandbits(self.t) << (LANE_BITS * self.t)
            self.rows[operand.buffer][self.addr(operand, i)] = row

    def copy(self):
        return Banks(self.cfg, rows={b: list(r) for b, r in self.rows.items()})


def serve(dut, port, rows, rnd, p_ready, violations, half_rows):
    """Return a testbench answering ``port`` from ``rows``, ready with chance ``p_ready``,
    appending to ``violations`` every broken rule of the memory-port contract, every access
    while the unit is not busy and every row outside its half (``half_rows`` rows)."""
    row_mask = (1 << (len(port.addr) - 1)) - 1

    async def bank(ctx):
        held = None
        while True:
            ready = rnd.random() < p_ready
            ctx.set(port.ready, ready)
            *_, addr, r_en, w_en, w_data, busy = await ctx.tick().sample(
                port.addr, port.r_en, port.w_en, port.w_data, dut.busy)
            request = (addr, r_en, w_en, w_data if w_en else None) if r_en or w_en else None
            if held is not None and request != held:
                violations.append(f"request {held} changed to {request} while not ready")
            if request and (r_en and w_en or not busy or addr & row_mask >= half_rows):
                violations.append(f"request {request} (busy {busy})")
            if request and ready:
                if w_en:
                    rows[addr] = w_data
                else:
                    ctx.set(port.r_data, rows[addr])
            held = request if request and not ready else None
    return bank


def run(dut, banks, descriptors, *, seed=0, p_ready=0.7):
    """Run ``descriptors`` one after the other on ``dut``; return, per descriptor,
    ``(error, cycles from acceptance to the fall of busy, banks afterwards)``."""
    rnd, violations, results = random.Random(seed), [], []

    async def drive(ctx):
        for desc in descriptors:
            ctx.set(dut.desc.payload.as_value(), desc)
            ctx.set(dut.desc.valid, 1)
            await ctx.tick().until(dut.desc.ready)
            ctx.set(dut.desc.valid, 0)
            cycles = 0
            while ctx.get(dut.busy):
                await ctx.tick()
                cycles += 1
            results.append((ctx.get(dut.error), cycles, banks.copy()))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for b in (ACT, OUT):
        sim.add_testbench(serve(dut, getattr(dut, b.port_name), banks.rows[b], rnd, p_ready,
                                violations, half_depth(banks.cfg, b)), background=True)
    sim.add_testbench(drive)
    sim.run()
    assert violations == []
    return results


def place(rnd, cfg, sizes, slots=SLOTS):
    """Return one ``Operand`` per run length in ``sizes``, in random slots of ``slots`` (a
    buffer half each) at random rows, no two runs overlapping; ``None`` if they do not fit."""
    chosen = [rnd.choice(slots) for _ in sizes]
    starts = {}
    for slot in set(chosen):
        runs = [i for i, s in enumerate(chosen) if s == slot]
        rnd.shuffle(runs)
        spare = half_depth(cfg, slot[0]) - sum(sizes[i] for i in runs)
        if spare < 0:
            return None
        offset = 0
        for i, cut in zip(runs, sorted(rnd.randint(0, spare) for _ in runs)):
            starts[i], offset = cut + offset, offset + sizes[i]
    return [Operand(*chosen[i], starts[i]) for i in range(len(sizes))]


# -- eltwise ------------------------------------------------------------------------------

GOLDEN_ELTWISE = {EltwiseOp.ADD: numerics.wrap_add, EltwiseOp.SUB: numerics.wrap_sub,
                  EltwiseOp.RELU_MASK: lambda a, b: relu_backward(a, b > 0),
                  EltwiseOp.COPY: lambda a, b: a}


def eltwise_golden(banks, op, a, b, d, rows):
    """Apply one ``ELTWISE`` descriptor to ``banks`` with the golden functions."""
    x = banks.read(a, rows)
    y = banks.read(b, rows) if op is not EltwiseOp.COPY else None
    banks.write(d, GOLDEN_ELTWISE[op](x, y))


def random_eltwise(rnd, cfg):
    """A random good ``ELTWISE`` run: ``(op, a, b, d, rows)``; ``d`` sometimes in place."""
    op = rnd.choice(list(EltwiseOp))
    while True:
        rows = rnd.randint(1, 24)
        ops = place(rnd, cfg, [rows] * 3)
        if ops is not None:
            break
    a, b, d = ops
    if rnd.random() < 0.25:
        d = rnd.choice((a, b))
    return op, a, b, d, rows


@pytest.mark.parametrize("t", [2, 4])
def test_eltwise_matches_golden_on_random_runs(t):
    cfg, rnd = config(t), random.Random(t)
    banks = Banks(cfg, rnd)
    expected, descriptors = banks.copy(), []
    coupling = (Operand(ACT, 1, 3), Operand(ACT, 1, 20), Operand(ACT, 1, 3), 16)
    steps = [random_eltwise(rnd, cfg) for _ in range(10)]
    # Last, in place and all on the ACT port: a coupling x1 += x2, then its inverse.
    steps += [(EltwiseOp.ADD, *coupling), (EltwiseOp.SUB, *coupling)]
    after = []
    for op, a, b, d, rows in steps:
        descriptors.append(encode_eltwise(cfg, op=op, a=a, b=b, d=d, rows=rows))
        eltwise_golden(expected, op, a, b, d, rows)
        after.append(expected.copy())
    results = run(EltwiseUnit(config=cfg), banks, descriptors, seed=t)
    assert [r[0] for r in results] == [0] * len(steps)
    for (_, _, got), want, step in zip(results, after, steps):
        assert got.rows == want.rows, step
    x1 = [r[2].read(coupling[0], 16) for r in results[-3:]]
    assert not np.array_equal(x1[0], x1[1]) and np.array_equal(x1[0], x1[2])


def test_eltwise_refusals_write_nothing_and_the_next_runs():
    cfg, rnd = config(2), random.Random(7)
    banks = Banks(cfg, rnd)
    a, b, d = Operand(ACT, 0, 4), Operand(OUT, 1, 0), Operand(OUT, 0, 2)
    good = dict(op=EltwiseOp.RELU_MASK, a=a, b=b, d=d, rows=9)
    bad = [dict(good, rows=0), dict(good, a=Operand(Buffer.WGT, 0, 0)),
           dict(good, b=Operand(Buffer.MST, 1, 0)), dict(good, d=Operand(Buffer.WGT, 0, 0)),
           dict(good, a=Operand(ACT, 1, half_depth(cfg, ACT) - 8)),
           dict(good, d=Operand(OUT, 0, half_depth(cfg, OUT) - 8))]
    copy_unused_b = dict(good, op=EltwiseOp.COPY, b=Operand(Buffer.WGT, 1, 0))
    sequence = [x for refused in bad for x in (refused, good)] + [copy_unused_b]
    expected, after = banks.copy(), []
    for step in sequence:
        if step in bad:
            after.append((1, expected.copy()))
        else:
            eltwise_golden(expected, step["op"], step["a"], step["b"], step["d"], step["rows"])
            after.append((0, expected.copy()))
    results = run(EltwiseUnit(config=cfg), banks,
                  [encode_eltwise(cfg, **s) for s in sequence], seed=7)
    for (error, cycles, got), (want_error, want), step in zip(results, after, sequence):
        assert (error, got.rows) == (want_error, want.rows), step
        if error:
            assert cycles == EltwiseUnit.check_cycles


# -- pool ---------------------------------------------------------------------------------

def random_pool(rnd, cfg, mode, slots=SLOTS):
    """A random pool shape ``(n, c, h, w)`` and the operands ``(src, dst, idx)`` of a
    ``mode`` run on it."""
    t = cfg.tm
    while True:
        n, c = rnd.randint(1, 3), rnd.randint(1, 2 * t)
        h, w = rnd.choice((2, 4, 6, 8)), rnd.choice((2, 4, 6, 8))
        full = n * -(-c // t) * h * w
        src, dst = (full, full // 4) if mode is PoolMode.FORWARD else (full // 4, full)
        ops = place(rnd, cfg, [src, dst, full // 4], slots)
        if ops is not None:
            return (n, c, h, w), ops


def pool_case(rnd, cfg, banks, mode, shape, ops):
    """Fill ``banks`` with random inputs of one pool run; return its descriptor and what
    its destination rows must hold (an ``Operand`` and rows)."""
    (n, c, h, w), (src, dst, idx) = shape, ops
    x = np.array([[[[rnd.randint(-4, 4) * rnd.choice((1, 1000)) for _ in range(w)]
                    for _ in range(h)] for _ in range(c)] for _ in range(n)], dtype=np.int16)
    y, argmax = maxpool2x2(x)
    t, planes = cfg.tm, n * -(-c // cfg.tm)
    if mode is PoolMode.FORWARD:
        banks.fill(src, pack_rows(x, t), rnd)
        writes = [(dst, pack_rows(y, t)), (idx, pack_rows(argmax, t))]
    else:
        dy = np.array(rnd.choices(range(-2 ** 15, 2 ** 15), k=y.size),
                      dtype=np.int16).reshape(y.shape)
        banks.fill(src, pack_rows(dy, t), rnd)
        banks.fill(idx, pack_rows(argmax, t), rnd)
        writes = [(dst, pack_rows(maxpool2x2_backward(dy, argmax), t))]
    desc = encode_pool(cfg, mode=mode, src=src, dst=dst, idx=idx, planes=planes, h=h, w=w)
    return desc, writes


def expect_rows(banks, writes):
    for operand, rows in writes:
        lanes = [unpack_lanes(r, banks.t, signed=True) for r in rows]
        banks.write(operand, lanes)


@pytest.mark.parametrize("t", [2, 4])
@pytest.mark.parametrize("mode", list(PoolMode))
def test_pool_matches_golden_on_random_shapes(t, mode):
    cfg, rnd = config(t), random.Random(10 * t + mode.value)
    for k, slots in enumerate((SLOTS, SLOTS, [(OUT, 1)], [(ACT, 0)], SLOTS)):
        banks = Banks(cfg, rnd)
        shape, ops = random_pool(rnd, cfg, mode, slots)
        desc, writes = pool_case(rnd, cfg, banks, mode, shape, ops)
        expected = banks.copy()
        expect_rows(expected, writes)
        [(error, _, got)] = run(PoolUnit(config=cfg), banks, [desc], seed=k)
        assert error == 0 and got.rows == expected.rows, (shape, ops)


def test_pool_refusals_write_nothing_and_the_next_runs():
    cfg, rnd = config(2), random.Random(11)
    banks = Banks(cfg, rnd)
    ops = (Operand(ACT, 1, 0), Operand(OUT, 0, 0), Operand(OUT, 1, 0))
    # 2 planes of 4 x 6: 48 source rows, the whole ACT half.
    good_desc, writes = pool_case(rnd, cfg, banks, PoolMode.FORWARD, (1, 3, 4, 6), ops)
    good = dict(mode=PoolMode.FORWARD, src=ops[0], dst=ops[1], idx=ops[2], planes=2, h=4, w=6)
    assert encode_pool(cfg, **good) == good_desc
    last = half_depth(cfg, OUT) - 11                     # 12 pooled rows from here: one over
    bad = [dict(good, planes=0), dict(good, h=0), dict(good, w=0), dict(good, h=3),
           dict(good, w=5), dict(good, src=Operand(Buffer.WGT, 0, 0)),
           dict(good, idx=Operand(Buffer.MST, 0, 0)), dict(good, dst=Operand(Buffer.WGT, 1, 0)),
           dict(good, src=Operand(ACT, 1, 1)), dict(good, idx=Operand(OUT, 1, last)),
           dict(good, dst=Operand(OUT, 0, last)),
           dict(good, mode=PoolMode.BACKWARD, src=ops[1], dst=Operand(ACT, 1, 1))]
    expected = banks.copy()
    sequence = [x for refused in bad for x in (refused, good)]
    unit = PoolUnit(config=cfg)
    results = run(unit, banks, [encode_pool(cfg, **s) for s in sequence], seed=11)
    previous = expected.copy().rows
    expect_rows(expected, writes)   # the good run's rows do not depend on what ran before
    for (error, cycles, got), step in zip(results, sequence):
        if step is good:
            assert (error, got.rows) == (0, expected.rows)
        else:
            assert (error, cycles, got.rows) == (1, unit.check_cycles, previous), step
        previous = got.rows


def test_encoders_refuse_values_that_do_not_fit():
    cfg = config(2)
    with pytest.raises(ConfigError, match="rows=4096"):
        encode_eltwise(cfg, op=EltwiseOp.ADD, a=Operand(ACT, 0, 0), d=Operand(ACT, 0, 0),
                       rows=4096)
    with pytest.raises(ConfigError, match="src.half=2"):
        encode_pool(cfg, mode=PoolMode.FORWARD, src=Operand(ACT, 2, 0),
                    dst=Operand(ACT, 0, 0), idx=Operand(ACT, 0, 0), planes=1, h=2, w=2)
    with pytest.raises(ConfigError, match="mode must be a PoolMode"):
        encode_pool(cfg, mode=5, src=Operand(ACT, 0, 0), dst=Operand(ACT, 0, 0),
                    idx=Operand(ACT, 0, 0), planes=1, h=2, w=2)
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig, not 3"):
        PoolUnit(config=3)


# -- timing -------------------------------------------------------------------------------

def busiest_port(accesses):
    """The accesses of a run on its busiest port, from ``(buffer, count)`` pairs."""
    return max(sum(n for b, n in accesses if b is port) for port in (ACT, OUT))


@pytest.mark.parametrize("op, buffers", [
    (EltwiseOp.COPY, (ACT, ACT, OUT)), (EltwiseOp.ADD, (ACT, OUT, OUT)),
    (EltwiseOp.ADD, (ACT, ACT, OUT)), (EltwiseOp.SUB, (OUT, OUT, OUT))])
def test_eltwise_overlaps_accesses_on_different_ports(op, buffers):
    """With the banks always ready a run takes its busiest port's accesses, plus a few
    cycles of latency: row ``i + 1`` is read while row ``i`` is written."""
    cfg, rows = config(4), 32
    a, b, d = (Operand(buf, half, 0) for buf, half in zip(buffers, (0, 1, 0)))
    desc = encode_eltwise(cfg, op=op, a=a, b=b, d=d, rows=rows)
    unit = EltwiseUnit(config=cfg)
    [(error, cycles, _)] = run(unit, Banks(cfg, random.Random(1)), [desc], p_ready=1.0)
    reads = [(a.buffer, rows)] + ([(b.buffer, rows)] if op is not EltwiseOp.COPY else [])
    busiest = busiest_port(reads + [(d.buffer, rows)])
    assert error == 0 and busiest <= cycles - unit.check_cycles <= busiest + 4


@pytest.mark.parametrize("mode", list(PoolMode))
@pytest.mark.parametrize("buffers", [(ACT, OUT, OUT), (OUT, ACT, ACT), (ACT, ACT, ACT)])
def test_pool_overlaps_accesses_on_different_ports(mode, buffers):
    cfg, rnd = config(4), random.Random(2)
    banks, shape = Banks(cfg, rnd), (1, 4, 4, 8)                   # 32 rows, 8 pooled
    src, dst, idx = (Operand(buf, half, 0) for buf, half in zip(buffers, (0, 1, 0)))
    if idx[:2] in (src[:2], dst[:2]):
        idx = idx._replace(row=32)                              # after the 32-row run
    desc, _ = pool_case(rnd, cfg, banks, mode, shape, (src, dst, idx))
    unit = PoolUnit(config=cfg)
    [(error, cycles, _)] = run(unit, banks, [desc], p_ready=1.0)
    fwd = mode is PoolMode.FORWARD
    busiest = busiest_port([(src.buffer, 32 if fwd else 8), (dst.buffer, 8 if fwd else 32),
                            (idx.buffer, 8)])
    assert error == 0 and busiest <= cycles - unit.check_cycles <= busiest + 7
