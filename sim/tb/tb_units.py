"""cocotb testbench of the arithmetic units' Verilog (``units_harness.UnitsHarness``).

Each test streams random beats from ``units_golden`` through one unit with random gaps and
random backpressure and compares every output beat, and the saturation count after every
beat, with ``numerics`` / the max-pool spec. Parameters (``EDGETRAIN_PARAMS``): lanes_rq,
lanes_up, lanes_pool, acc_bits, beats, seed.
"""

import itertools
import json
import os
import random

import cocotb
from amaranth.lib import data
from amaranth.lib.wiring import Flow
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from edgetrain.sim.golden.pool import maxpool2x2
from edgetrain.sim.reference.units import (
    expected_pool,
    expected_pool_backward,
    expected_requant,
    expected_update,
    mismatches,
    pool_window_beats,
    random_pool_tensor,
    random_requant_beats,
    random_update_beats)
from .units_harness import make_units, payload_layouts

PARAMS = json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))
LAYOUTS = payload_layouts(PARAMS)
UNITS = make_units(PARAMS)


def _pack(stream, value):
    return LAYOUTS[stream].const(value).as_bits()


def _unpack(stream, bits):
    return data.Const(LAYOUTS[stream], bits)


def _plain(value):
    return value if isinstance(value, int) else [_plain(v) for v in value]


async def _start(dut):
    """Start the clock, zero every input of the harness and reset it."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for prefix, unit in UNITS.items():
        for name, member in unit.signature.members.items():
            port = f"{prefix}_{name}"
            if member.is_signature:
                ends = ("payload", "valid") if member.flow == Flow.In else ("ready",)
                for end in ends:
                    getattr(dut, f"{port}__{end}").value = 0
            elif member.flow == Flow.In:
                getattr(dut, port).value = 0
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class Observed:
    """Output beats, their transfer cycles and the statistics after every clock edge."""

    def __init__(self):
        self.outputs, self.out_cycles, self.trace = [], [], {}

    def after_beats(self, name, delay):
        return [self.trace[c + delay][name] for c in self.out_cycles]


async def stream_unit(dut, prefix, beats, *, side=(), fields, stats=(), seed, p_valid=0.8,
                      p_ready=0.6):
    """Stream ``beats`` through unit ``prefix``; return ``Observed`` (``fields`` of each
    output beat as lists of ints). ``side`` names per-beat inputs driven with the payload."""
    rnd = random.Random(seed)
    i_name, o_name = f"{prefix}_i", f"{prefix}_o"
    payload_fields = [f for f in beats[0] if f not in side]
    port = lambda name: getattr(dut, f"{prefix}_{name}")  # noqa: E731
    i_valid, i_ready = getattr(dut, f"{i_name}__valid"), getattr(dut, f"{i_name}__ready")
    o_valid, o_ready = getattr(dut, f"{o_name}__valid"), getattr(dut, f"{o_name}__ready")
    o_payload = getattr(dut, f"{o_name}__payload")
    seen, sent, offering, cycle = Observed(), 0, False, 0
    settle = getattr(UNITS[prefix], "stats_delay", 0) + 2
    while len(seen.outputs) < len(beats) or settle > 0:
        if len(seen.outputs) == len(beats):
            settle -= 1
        if not offering and sent < len(beats) and rnd.random() < p_valid:
            beat = beats[sent]
            getattr(dut, f"{i_name}__payload").value = _pack(
                i_name, {f: beat[f] for f in payload_fields})
            for name in side:
                port(name).value = beat[name] & ((1 << len(port(name))) - 1)
            offering = True
        i_valid.value = int(offering)
        take = int(rnd.random() < p_ready)
        o_ready.value = take
        await ReadOnly()
        seen.trace[cycle - 1] = {name: int(port(name).value) for name in stats}
        if offering and int(i_ready.value):
            sent, offering = sent + 1, False
        if take and int(o_valid.value):
            view = _unpack(o_name, int(o_payload.value))
            seen.outputs.append({f: _plain(getattr(view, f)) for f in fields})
            seen.out_cycles.append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
    return seen


def _check_saturations(seen, expected, unit):
    per_beat = list(itertools.accumulate(e["saturations"] for e in expected))
    return [] if seen.after_beats("saturations", unit.stats_delay) == per_beat else [
        "saturations are not counted with the beat they belong to"]


@cocotb.test()
async def requantizer_random_beats(dut):
    await _start(dut)
    beats = random_requant_beats(random.Random(PARAMS["seed"]), PARAMS["beats"],
                                 lanes=PARAMS["lanes_rq"], acc_bits=PARAMS["acc_bits"])
    seen = await stream_unit(dut, "rq", beats, side=("shift", "stochastic", "key", "relu"),
                             fields=("data", "mask"), stats=("saturations", "amax"),
                             seed=PARAMS["seed"])
    expected = [expected_requant(b) for b in beats]
    found = mismatches(expected, seen.outputs, ("data", "mask"))
    found += _check_saturations(seen, expected, UNITS["rq"])
    amax = max(abs(a) for b in beats for a in b["acc"])
    assert seen.trace[max(seen.trace)]["amax"] == amax
    assert not found, found


@cocotb.test()
async def sgd_update_random_beats(dut):
    await _start(dut)
    beats = random_update_beats(random.Random(PARAMS["seed"] + 1), PARAMS["beats"] // 2,
                                lanes=PARAMS["lanes_up"], acc_bits=PARAMS["acc_bits"])
    side = ("g_shift", "mu_q", "lr_q", "lr_shift", "stochastic", "key_g", "key_v", "key_w")
    seen = await stream_unit(dut, "up", beats, side=side, fields=("master", "velocity"),
                             stats=("saturations",), seed=PARAMS["seed"] + 1)
    expected = [expected_update(b) for b in beats]
    found = mismatches(expected, seen.outputs, ("master", "velocity"))
    found += _check_saturations(seen, expected, UNITS["up"])
    assert not found, found


def _pool_tensor(offset, lanes):
    rnd = random.Random(PARAMS["seed"] + offset)
    side = 2 * max(1, int((PARAMS["beats"] // 4) ** 0.5))
    return random_pool_tensor(rnd, batch=1, channels=lanes, height=side, width=side)


@cocotb.test()
async def maxpool_random_windows(dut):
    await _start(dut)
    x = _pool_tensor(2, PARAMS["lanes_pool"])
    seen = await stream_unit(dut, "mp", pool_window_beats(x), fields=("data", "argmax"),
                             seed=PARAMS["seed"] + 2)
    found = mismatches(expected_pool(x), seen.outputs, ("data", "argmax"))
    assert not found, found


@cocotb.test()
async def pool_backward_random_gradients(dut):
    await _start(dut)
    x = _pool_tensor(3, PARAMS["lanes_pool"])
    dy, argmax = maxpool2x2(x)
    beats = [{"grad": [int(v) for v in dy[0, :, oy, ox]],
              "argmax": [int(a) for a in argmax[0, :, oy, ox]]}
             for oy in range(dy.shape[2]) for ox in range(dy.shape[3])]
    seen = await stream_unit(dut, "pb", beats, fields=("window",), seed=PARAMS["seed"] + 3)
    found = mismatches(expected_pool_backward(dy, argmax), seen.outputs, ("window",))
    assert not found, found
