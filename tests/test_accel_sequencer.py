"""The sequencer in Amaranth's simulator: fetch over AXI, queues, tokens, errors.

The DRAM is a Python AXI4 read responder with random pauses on both channels; the units are
Python stand-ins that take a descriptor with random backpressure and stay busy a random time
(following ``UnitSignature``'s contract). Each unit must receive exactly its instructions'
bodies in program order; no instruction may start before the tokens it pops were pushed;
loads must overlap computes in a double-buffered program; every bad program ends with its
error code, the sequencer idle, and the next program runs normally.
"""

import random

import pytest
from amaranth.sim import Simulator

from edgetrain.hw.accel.isa import (
    INSN_BYTES, Instruction, Opcode, check_program, decode, encode, instruction_layout,
    program_bytes, semaphores_of)
from edgetrain.hw.accel.sequencer import ErrorCode, Sequencer
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields
from edgetrain.errors import ConfigError
from edgetrain.sim.tb.engine_run import SMALL_CONFIG

CFG = SMALL_CONFIG
UNIT_OF = {Opcode.LOAD: "load", Opcode.STORE: "store", Opcode.COMPUTE: "engine",
           Opcode.POOL: "pool", Opcode.ELTWISE: "eltwise"}
PROG_BASE = 0x1000


def _transfer(tag, store=False):
    return {"buffer": Buffer.OUT if store else Buffer.ACT,
            "dma": {"dram_addr": 64 * tag, "seg_beats": 4, "buf_addr": tag % 7, "n0": 4,
                    "store": int(store)}}


def _compute(tag):
    from edgetrain.hw.accel.isa import engine_config
    fields = descriptor_fields(engine_config(CFG), "fp",
                               LayerShape(n=1, c=4, h=4, w=4, m=4, k=3, pad=1), key=tag)
    return {"halves": tag & 0xF, "desc": fields}


def double_buffered(tiles):
    """LOAD/COMPUTE/STORE per tile on two halves, tokens as a compiler would put them."""
    prog = []
    for i in range(tiles):
        prog.append(Instruction(Opcode.LOAD, _transfer(i), pop_next=i >= 2, push_next=True))
        prog.append(Instruction(Opcode.COMPUTE, _compute(i), pop_prev=True,
                                push_prev=i + 2 < tiles, pop_next=i >= 2, push_next=True))
        prog.append(Instruction(Opcode.STORE, _transfer(i, store=True), pop_prev=True,
                                push_prev=i + 2 < tiles or i == tiles - 1))
    prog.append(Instruction(Opcode.FINISH, pop_next=True))
    return prog


class Bench:
    """The sequencer with a DRAM responder and stand-in units; ``run`` returns a record."""

    def __init__(self, seed=0, fail_unit=None, bad_fetch_addr=None):
        self.dut = Sequencer(config=CFG)
        self.rnd = random.Random(seed)
        self.mem = bytearray(1 << 16)
        self.fail_unit, self.bad_fetch_addr = fail_unit, bad_fetch_addr
        self.log = {name: [] for name in UNIT_OF.values()}
        self.cycle = 0
        self.programs = []      # (address, count) run in order
        self.results = []       # status after each program

    def add_program(self, image, addr=PROG_BASE):
        self.mem[addr:addr + len(image)] = image
        self.programs.append((addr, len(image) // INSN_BYTES))

    async def _clock(self, ctx):
        async for _ in ctx.tick():
            self.cycle += 1

    async def _dram(self, ctx):
        axi, nbytes = self.dut.m_axi, CFG.axi_data_bits // 8
        while True:
            ready = self.rnd.random() < 0.6
            ctx.set(axi.arready, ready)
            _, _, valid, addr, alen = await ctx.tick().sample(axi.arvalid, axi.araddr,
                                                              axi.arlen)
            if not (valid and ready):
                continue
            ctx.set(axi.arready, 0)
            for k in range(alen + 1):
                while self.rnd.random() < 0.3:
                    await ctx.tick()
                a = addr + k * nbytes
                ctx.set(axi.rdata, int.from_bytes(self.mem[a:a + nbytes], "little"))
                ctx.set(axi.rresp, 2 if addr == self.bad_fetch_addr else 0)
                ctx.set(axi.rlast, k == alen)
                ctx.set(axi.rvalid, 1)
                await ctx.tick().until(axi.rready)
                ctx.set(axi.rvalid, 0)

    async def _unit(self, ctx, name):
        port = getattr(self.dut, name)
        while True:
            ready = self.rnd.random() < 0.5
            ctx.set(port.desc.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(port.desc.valid, port.desc.payload)
            if not (valid and ready):
                continue
            ctx.set(port.desc.ready, 0)
            ctx.set(port.busy, 1)
            start = self.cycle
            for _ in range(self.rnd.randrange(1, 40)):
                await ctx.tick()
            fail = self.fail_unit == (name, len(self.log[name]))
            ctx.set(port.error, fail)
            ctx.set(port.busy, 0)
            self.log[name].append((int(payload.as_value().value) if hasattr(payload, "as_value")
                                   else int(payload), start, self.cycle))
            await ctx.tick()

    def _unit_process(self, name):
        async def process(ctx):
            await self._unit(ctx, name)
        return process

    async def _host(self, ctx):
        dut = self.dut
        for addr, count in self.programs:
            ctx.set(dut.addr, addr)
            ctx.set(dut.count, count)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for _ in range(20000):
                await ctx.tick()
                if not ctx.get(dut.status.busy):
                    break
            self.results.append({"done": ctx.get(dut.status.done),
                                 "error": ErrorCode(ctx.get(dut.status.error)),
                                 "cycle": self.cycle})
            for name in self.log:
                self.log[name].append("end")

    def run(self):
        sim = Simulator(self.dut)
        sim.add_clock(1e-8)
        sim.add_process(self._clock)
        sim.add_testbench(self._dram, background=True)
        for name in self.log:
            sim.add_testbench(self._unit_process(name), background=True)
        sim.add_testbench(self._host)
        sim.run()
        return self


def _runs(log, name):
    """Split a unit's log into one list per program."""
    out, cur = [], []
    for entry in log[name]:
        if entry == "end":
            out.append(cur)
            cur = []
        else:
            cur.append(entry)
    return out


def _body_bits(insn, layout):
    value = encode(CFG, insn, layout)
    body = layout["body"]
    field = body.shape[{Opcode.LOAD: "transfer", Opcode.STORE: "transfer",
                        Opcode.COMPUTE: "compute", Opcode.POOL: "pool",
                        Opcode.ELTWISE: "eltwise"}[insn.op]]
    return (value >> body.offset) & ((1 << field.width) - 1)


def _check_tokens(program, intervals):
    """Each pop of a semaphore starts after as many pushes of it have completed."""
    pushes = {}
    for i, insn in enumerate(program):
        for sem in semaphores_of(insn)[1]:
            pushes.setdefault(sem, []).append(intervals[i][1])
    pops = {}
    for i, insn in enumerate(program):
        if insn.op is Opcode.FINISH:
            continue        # runs in the queue itself; done is checked after every unit
        for sem in semaphores_of(insn)[0]:
            pops.setdefault(sem, []).append(intervals[i][0])
    for sem, starts in pops.items():
        ends = sorted(pushes.get(sem, []))
        for j, start in enumerate(sorted(starts)):
            assert j < len(ends) and ends[j] < start, (sem, j, start, ends)


def test_double_buffered_program_runs_in_token_order_and_overlaps():
    program = double_buffered(6)
    check_program(program)
    bench = Bench(seed=3)
    bench.add_program(program_bytes(CFG, program))
    bench.run()
    assert bench.results == [{"done": 1, "error": ErrorCode.NONE,
                              "cycle": bench.results[0]["cycle"]}]
    layout = instruction_layout(CFG)
    intervals = {}
    for op, name in UNIT_OF.items():
        mine = [i for i, insn in enumerate(program) if insn.op is op]
        got = _runs(bench.log, name)[0]
        assert [p for p, _, _ in got] == [_body_bits(program[i], layout) for i in mine]
        intervals.update({i: (s, e) for i, (_, s, e) in zip(mine, got)})
    _check_tokens(program, intervals)
    assert bench.results[0]["cycle"] > max(end for _, end in intervals.values())
    loads = [intervals[i] for i, insn in enumerate(program) if insn.op is Opcode.LOAD]
    computes = [intervals[i] for i, insn in enumerate(program) if insn.op is Opcode.COMPUTE]
    assert any(ls < ce and cs < le for ls, le in loads for cs, ce in computes)


def _then_good(bench, bad_image, expect):
    bench.add_program(bad_image)
    good = double_buffered(3)
    bench.add_program(program_bytes(CFG, good), addr=0x8000)
    bench.run()
    assert [(r["done"], r["error"]) for r in bench.results] == [(0, expect),
                                                                (1, ErrorCode.NONE)]
    assert len(_runs(bench.log, "engine")[1]) == 3


def test_unknown_opcode_stops_then_the_next_program_runs():
    image = bytearray(program_bytes(CFG, double_buffered(2)))
    image[3 * INSN_BYTES] = (image[3 * INSN_BYTES] & ~7) | 7      # opcode 7
    _then_good(Bench(seed=1), bytes(image), ErrorCode.OPCODE)


def test_flag_towards_a_missing_queue_is_refused():
    image = bytearray(program_bytes(CFG, double_buffered(2)))
    image[0] |= 1 << 3                                            # LOAD with pop_prev
    _then_good(Bench(seed=2), bytes(image), ErrorCode.DEPS)


def test_deadlock_is_detected():
    program = double_buffered(3)
    program[1] = Instruction(Opcode.COMPUTE, _compute(0), pop_prev=True, pop_next=True,
                             push_next=True)                      # waits for a store first
    with pytest.raises(ConfigError, match="deadlock: instruction 1"):
        check_program(program)
    _then_good(Bench(seed=4), program_bytes(CFG, program), ErrorCode.DEADLOCK)


def test_program_without_finish_is_refused():
    program = double_buffered(2)[:-1]
    with pytest.raises(ConfigError, match="only FINISH"):
        check_program(program)
    _then_good(Bench(seed=5), program_bytes(CFG, program), ErrorCode.NO_FINISH)


@pytest.mark.parametrize("unit, code", [("load", ErrorCode.LOAD), ("engine", ErrorCode.ENGINE),
                                        ("store", ErrorCode.STORE)])
def test_unit_error_stops_the_program(unit, code):
    bench = Bench(seed=6, fail_unit=(unit, 1))
    _then_good(bench, program_bytes(CFG, double_buffered(4)), code)


def test_fetch_error_response_stops_the_program():
    bench = Bench(seed=7, bad_fetch_addr=PROG_BASE + 2 * INSN_BYTES)
    _then_good(bench, program_bytes(CFG, double_buffered(2)), ErrorCode.FETCH)


def test_misaligned_program_address_is_refused():
    bench = Bench(seed=8)
    bench.programs.append((PROG_BASE + 8, 3))
    bench.add_program(program_bytes(CFG, double_buffered(3)), addr=0x8000)
    bench.run()
    assert [(r["done"], r["error"]) for r in bench.results] == [(0, ErrorCode.ALIGN),
                                                                (1, ErrorCode.NONE)]


def test_left_over_tokens_are_a_program_error():
    program = double_buffered(3)
    program[1] = Instruction(Opcode.COMPUTE, _compute(0), push_prev=True, push_next=True)
    with pytest.raises(ConfigError, match="tokens left when the program ends: l2c=1"):
        check_program(program)


def test_a_value_that_does_not_fit_its_field_is_refused_by_name():
    """``encode`` refuses what ``Layout.const`` would cut to the field's width; a signed
    field takes its values and their two's-complement bit patterns."""
    body = _compute(1)
    wide = dict(body, desc=dict(body["desc"], act_n=1000))
    with pytest.raises(ConfigError, match=r"COMPUTE body compute desc act_n = 1000 does not "
                                          r"fit its \d+-bit field"):
        encode(CFG, Instruction(Opcode.COMPUTE, wide))
    for shift in (-3, 253):
        insn = Instruction(Opcode.COMPUTE, dict(body, desc=dict(body["desc"], shift=shift)))
        assert decode(CFG, encode(CFG, insn)).body["desc"]["shift"] == -3
    with pytest.raises(ConfigError, match="shift = 256 does not fit its signed 8-bit"):
        encode(CFG, Instruction(Opcode.COMPUTE, dict(body, desc=dict(body["desc"],
                                                                     shift=256))))
