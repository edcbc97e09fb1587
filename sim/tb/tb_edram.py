"""cocotb testbench of EDRAMBuffer (built with runtime control): random traces per policy.

Every run replays a random trace of writes, reads and releases with known lifetimes and
compares, bit for bit and per read, the hardware with ``EDRAMModel`` (data, which reads are
violations, refresh / stall / violation counters). On top of that it checks what each policy
promises against oracles that do not use the model: the data written, and the ages of the
reads computed from the trace alone.

Parameters (``EDGETRAIN_PARAMS``): depth, banks, data_bits, retention, seed, decay (1: the
decay injection is enabled in the runs that rely on it; 0 shows the detection then fails).
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from edgetrain.hw.config import REFRESH_POLICIES
from edgetrain.sim.reference.decay import Access, EDRAMModel, random_trace, read_ages

P = json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))
DEPTH, BANKS = P.get("depth", 16), P.get("banks", 2)
DATA_BITS, RETENTION = P.get("data_bits", 16), P.get("retention", 64)
SEED, DECAY = P.get("seed", 1), P.get("decay", 1)
ALLOCATIONS = P.get("allocations", 150)
TRACE_FILE = P.get("trace_file")   # replay this trace instead of the random ones


def mixed_trace():
    """Lifetimes from a few cycles to three retention periods."""
    return random_trace(depth=DEPTH, data_bits=DATA_BITS, lifetimes=(4, 3 * RETENTION),
                        allocations=ALLOCATIONS, seed=SEED)


def short_trace():
    """Lifetimes below the retention time, with room for slot shifts."""
    return random_trace(depth=DEPTH, data_bits=DATA_BITS, lifetimes=(4, RETENTION - 12),
                        allocations=ALLOCATIONS, seed=SEED + 1)


def golden_reads(trace):
    """Return the data each read must return if nothing is ever lost."""
    mem, out = {}, []
    for acc in trace:
        if acc.write:
            mem[acc.addr] = acc.data
        else:
            out.append(mem[acc.addr])
    return out


def start_clock(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())


async def reset(dut, policy, decay):
    await RisingEdge(dut.clk)   # leave a previous run's read-only phase
    dut.policy.value = REFRESH_POLICIES.index(policy)
    dut.decay.value = decay
    dut.port__r_en.value = dut.port__w_en.value = dut.port__r_last.value = 0
    dut.port__addr.value = dut.port__w_data.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0   # the cycle starting now is cycle 0


async def replay(dut, trace):
    """Drive ``trace`` with the port protocol; return (reads, accepted, counters)."""
    reads, accepted = [], []
    t, i, pending, last_viol = 0, 0, None, 0
    while True:
        acc = trace[i] if i < len(trace) and trace[i].time <= t else None
        dut.port__addr.value = acc.addr if acc else 0
        dut.port__w_en.value = int(bool(acc and acc.write))
        dut.port__r_en.value = int(bool(acc and not acc.write))
        dut.port__r_last.value = int(bool(acc and acc.last))
        dut.port__w_data.value = acc.data if acc and acc.write else 0
        await ReadOnly()
        viol = int(dut.violations.value)
        if pending is not None:
            reads.append((int(dut.port__r_data.value), viol - last_viol == 1))
            pending = None
        last_viol = viol
        if acc is None and i == len(trace):
            counters = (int(dut.refreshes.value), int(dut.stall_cycles.value), viol)
            return reads, accepted, counters
        if acc is not None and int(dut.port__ready.value):
            accepted.append(t)
            pending = None if acc.write else True
            i += 1
        await RisingEdge(dut.clk)
        t += 1


async def run_policy(dut, trace, policy, decay):
    """Run ``trace`` under ``policy``; assert it equals the model; return the model outcome."""
    await reset(dut, policy, decay)
    reads, accepted, counters = await replay(dut, trace)
    model = EDRAMModel(depth=DEPTH, data_bits=DATA_BITS, retention_cycles=RETENTION,
                       policy=policy, banks=BANKS, decay=bool(decay)).run(trace)
    assert accepted == model.accepted, f"{policy}: acceptance cycles differ from the model"
    want = [(r.data, r.violated) for r in model.reads]
    for k, (got, exp) in enumerate(zip(reads, want)):
        assert got == exp, f"{policy}: read {k} (data, violated) = {got}, model says {exp}"
    assert len(reads) == len(want)
    assert counters == (model.refreshes, model.stall_cycles, model.violations), \
        f"{policy}: counters (refreshes, stalls, violations) {counters} != model " \
        f"{(model.refreshes, model.stall_cycles, model.violations)}"
    dut._log.info("%s: %d cycles, refreshes %d, stalls %d, violations %d", policy,
                  model.cycles, *counters)
    return reads, counters


def wrong_reads(trace, reads):
    """Return the indices of reads whose data differs from what was written."""
    return [k for k, ((data, _), want) in enumerate(zip(reads, golden_reads(trace)))
            if data != want]


@cocotb.test(skip=TRACE_FILE is not None)
async def refresh_keeps_long_lived_data(dut):
    """periodic and live: no violation, every read returns what was written."""
    start_clock(dut)
    trace = mixed_trace()
    assert max(a for a in read_ages(trace)) >= 2 * RETENTION, "trace has no long lifetimes"
    for policy in ("periodic", "live"):
        reads, (refreshes, _, violations) = await run_policy(dut, trace, policy, 1)
        assert violations == 0 and refreshes > 0
        assert wrong_reads(trace, reads) == [], f"{policy} lost data"


@cocotb.test(skip=TRACE_FILE is not None)
async def no_refresh_loses_long_lived_data(dut):
    """none and lifetime: exactly the reads older than the retention fail the data check."""
    start_clock(dut)
    trace = mixed_trace()
    late = [k for k, age in enumerate(read_ages(trace)) if age >= RETENTION]
    assert late, "trace has no read past the retention"
    for policy in ("none", "lifetime"):
        reads, (refreshes, stalls, violations) = await run_policy(dut, trace, policy, DECAY)
        assert (refreshes, stalls) == (0, 0)
        assert violations == len(late)
        assert [k for k, (_, v) in enumerate(reads) if v] == late
        assert wrong_reads(trace, reads) == late, \
            f"{policy}: the data check caught {len(wrong_reads(trace, reads))} of " \
            f"{len(late)} expired reads"


@cocotb.test(skip=TRACE_FILE is not None)
async def lifetime_policy_short_lifetimes(dut):
    """lifetime with every lifetime below the retention: no refresh, no violation."""
    start_clock(dut)
    trace = short_trace()
    assert max(read_ages(trace)) < RETENTION
    reads, (refreshes, stalls, violations) = await run_policy(dut, trace, "lifetime", 1)
    assert (refreshes, stalls, violations) == (0, 0, 0)
    assert wrong_reads(trace, reads) == []


@cocotb.test(skip=TRACE_FILE is not None)
async def decay_off_hides_the_loss(dut):
    """Without decay injection the counter sees the expired reads but the data check does not."""
    start_clock(dut)
    trace = mixed_trace()
    reads, (_, _, violations) = await run_policy(dut, trace, "none", 0)
    assert violations > 0
    assert wrong_reads(trace, reads) == []


@cocotb.test(skip=TRACE_FILE is None)
async def given_trace_matches_model(dut):
    """Replay the trace in ``trace_file`` under each of ``policies``; compare with the model."""
    start_clock(dut)
    with open(TRACE_FILE) as f:
        trace = [Access(*row) for row in json.load(f)]
    for policy in P["policies"]:
        await run_policy(dut, trace, policy, DECAY)
