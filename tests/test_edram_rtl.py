# amaranth: UnusedElaboratable=no
"""eDRAM buffer: construction checks and Amaranth-simulator runs of fixed-policy builds."""

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers import Buffer
from edgetrain.hw.buffers.edram import EDRAMBuffer, RefreshController
from edgetrain.hw.config import REFRESH_POLICIES, AcceleratorConfig
from edgetrain.sim.reference.decay import EDRAMModel, random_trace


@pytest.mark.parametrize("kwargs, message", [
    (dict(retention_cycles=16), "retention_cycles 16 is shorter than one refresh sweep"),
    (dict(depth=0), "depth must be a positive integer, not 0"),
    (dict(policy="sometimes"), "refresh policy 'sometimes' does not exist"),
    (dict(banks=3), "banks must be a power of two"),
])
def test_bad_buffer_fails_at_construction(kwargs, message):
    args = dict(depth=16, data_bits=16, retention_cycles=64, policy="live", banks=2)
    with pytest.raises(ConfigError, match=message):
        EDRAMBuffer(**{**args, **kwargs})


def test_non_refreshing_policies_need_no_refresh_budget():
    buf = EDRAMBuffer(depth=16, data_bits=8, retention_cycles=5, policy="lifetime")
    Fragment.get(buf, None)
    with pytest.raises(ConfigError, match="retention_cycles must be a positive integer"):
        EDRAMBuffer(depth=16, data_bits=8, retention_cycles=0, policy="none")


def test_bad_controller_and_config_fail_at_construction():
    with pytest.raises(ConfigError, match="rows per bank must be a positive integer, not 0"):
        RefreshController(rows=0, retention_cycles=64, policy="live")
    with pytest.raises(ConfigError, match=r"act buffer \(input_depth 1024, 8 banks\).* shorter "
                                          r"than one refresh sweep"):
        AcceleratorConfig(retention_cycles=200)
    with pytest.raises(ConfigError, match="refresh policy 'eager' does not exist"):
        AcceleratorConfig(refresh=("eager", "none", "live"))
    with pytest.raises(ConfigError, match="edram_banks must be a positive integer"):
        AcceleratorConfig(edram_banks=0)
    # The default configuration fits: 128 rows per bank need 257 <= 1675 cycles.
    AcceleratorConfig()
    buf = EDRAMBuffer.for_buffer(AcceleratorConfig(input_depth=64), Buffer.ACT)
    assert (buf.depth, buf.banks, buf.retention_cycles) == (64, 8, 1675)
    assert len(buf.port.w_data) == Buffer.ACT.row_bits(AcceleratorConfig())
    Fragment.get(buf, None)


def replay(dut, trace):
    """Run ``trace`` on ``dut`` in the Amaranth simulator; return what the port saw."""
    seen = {}

    async def testbench(ctx):
        port, t, i, pending, reads, accepted = dut.port, 0, 0, False, [], []
        while True:
            acc = trace[i] if i < len(trace) and trace[i].time <= t else None
            release = bool(acc and acc.release)
            ctx.set(dut.release, release)
            acc = None if release else acc
            ctx.set(port.addr, acc.addr if acc else 0)
            ctx.set(port.w_en, bool(acc and acc.write))
            ctx.set(port.r_en, bool(acc and not acc.write))
            ctx.set(port.r_last, bool(acc and acc.last))
            ctx.set(port.w_data, acc.data if acc and acc.write else 0)
            if pending:
                reads.append(ctx.get(port.r_data))
                pending = False
            if release:
                accepted.append(t)
                i += 1
            elif acc is None and i == len(trace):
                seen.update(reads=reads, accepted=accepted, counters=(
                    ctx.get(dut.refreshes), ctx.get(dut.stall_cycles), ctx.get(dut.violations)))
                return
            if acc is not None and ctx.get(port.ready):
                accepted.append(t)
                pending, i = not acc.write, i + 1
            await ctx.tick()
            t += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return seen


@pytest.mark.parametrize("policy", REFRESH_POLICIES)
def test_fixed_policy_build_matches_model(policy):
    params = dict(depth=8, data_bits=24, retention_cycles=40, banks=1)
    trace = random_trace(depth=8, data_bits=24, lifetimes=(3, 120), allocations=60, seed=7)
    seen = replay(EDRAMBuffer(policy=policy, decay_injection=True, **params), trace)
    model = EDRAMModel(policy=policy, decay=True, **params).run(trace)
    assert seen["accepted"] == model.accepted
    assert seen["reads"] == [r.data for r in model.reads]
    assert seen["counters"] == (model.refreshes, model.stall_cycles, model.violations)
    if policy in ("periodic", "live"):
        assert model.violations == 0 and model.refreshes > 0
    else:
        assert model.violations > 0 and model.refreshes == 0


@pytest.mark.parametrize("policy", REFRESH_POLICIES)
def test_release_pulses_match_the_model(policy):
    """``release`` clears every live bit (a row written in that cycle stays live): the RTL
    equals the model cycle for cycle, and ``live`` refreshes fewer rows for it."""
    params = dict(depth=8, data_bits=24, retention_cycles=40, banks=2)
    trace = random_trace(depth=8, data_bits=24, lifetimes=(3, 120), allocations=60, seed=8,
                         releases=12)
    seen = replay(EDRAMBuffer(policy=policy, decay_injection=True, **params), trace)
    model = EDRAMModel(policy=policy, decay=True, **params).run(trace)
    assert seen["accepted"] == model.accepted
    assert seen["reads"] == [r.data for r in model.reads]
    assert seen["counters"] == (model.refreshes, model.stall_cycles, model.violations)
    if policy == "live":
        kept = EDRAMModel(policy=policy, **params).run([a for a in trace if not a.release])
        assert model.refreshes < kept.refreshes
        assert model.violations > kept.violations == 0   # released rows read later decay


def test_a_row_written_in_the_release_cycle_stays_live():
    """Row 2 written a cycle before a release, row 1 in its cycle: ``live`` then refreshes
    row 1 only."""
    dut = RefreshController(rows=4, retention_cycles=40, policy="live")
    counts = []

    async def testbench(ctx):
        for row, release in ((2, False), (1, True)):
            ctx.set(dut.addr, row)
            ctx.set(dut.accept_write, 1)
            ctx.set(dut.release, release)
            await ctx.tick()
        ctx.set(dut.accept_write, 0)
        ctx.set(dut.release, 0)
        for _ in range(36):          # past the live threshold, before the retention
            await ctx.tick()
        counts.append(ctx.get(dut.refreshes))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert counts == [1]
