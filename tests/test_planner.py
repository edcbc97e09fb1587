"""``firmware/planner.py`` without a simulator: the cycle model replays the sequencer's rules
(a serial chain takes the sum of its instructions, double buffering overlaps them, a fetch
behind a LOAD's bursts waits), and a program that cannot finish is refused. How close it
comes to the RTL is measured by ``edgetrain bench accel`` (its ``model`` column)."""

import pytest

from edgetrain.firmware import planner
from edgetrain.firmware.tiling import layer_program, operands, tile_layer
from edgetrain.hw.accel.isa import Instruction, Opcode
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields
from edgetrain.sim.tb.accel_bench import transfer

CFG = AcceleratorConfig()


def _compute(lay, mode="fp"):
    return {"halves": 0, "accumulate": 0, "release": 0,
            "desc": descriptor_fields(CFG, mode, lay)}


def test_a_serial_chain_takes_the_sum_of_its_instructions():
    lay = LayerShape(n=1, c=8, h=8, w=8, m=8, k=3, pad=1)
    load = transfer(CFG, Buffer.ACT, 0, 0x1000, 1024)
    store = transfer(CFG, Buffer.OUT, 0, 0x8000, 1024, store=True)
    program = [Instruction(Opcode.LOAD, load, push_next=True),
               Instruction(Opcode.COMPUTE, _compute(lay), pop_prev=True, push_next=True),
               Instruction(Opcode.STORE, store, pop_prev=True, push_prev=True),
               Instruction(Opcode.FINISH, pop_next=True)]
    durations = [planner.instruction_cycles(CFG, insn) for insn in program]
    beats = 1024 // (CFG.axi_data_bits // 8)
    assert durations == [planner.TRANSFER_CYCLES + beats, planner.COMPUTE_CYCLES + 9 * 64,
                         planner.TRANSFER_CYCLES + beats, 0]
    got = planner.predict(CFG, program)
    # Nothing overlaps: each instruction waits for the one before, and each is fetched
    # (FETCH_CYCLES, behind the LOAD's bursts for the one fetched during it) before it runs.
    fetches = len(program) * planner.FETCH_CYCLES
    assert sum(durations) < got.cycles <= sum(durations) + fetches + beats
    assert got.busy["compute"] == durations[1] and got.busy["store"] == durations[2]
    assert got.busy["load"] > durations[0]       # it gave up beats to a fetch


@pytest.mark.parametrize("mode", ["fp", "bp", "wu", "update"])
def test_double_buffering_overlaps_and_serial_does_not(mode):
    lay = LayerShape(n=8, c=32, h=8, w=8, m=32, k=3, pad=1)
    at = {name: 0x100000 * (i + 1) for i, name in enumerate(operands(mode))}
    tiles = tile_layer(CFG, mode, lay)
    assert len(tiles) > 2
    fast = planner.predict(CFG, layer_program(CFG, mode, lay, at, tiles=tiles))
    slow = planner.predict(CFG, layer_program(CFG, mode, lay, at, tiles=tiles, serial=True))
    assert max(fast.busy.values()) <= fast.cycles <= sum(fast.busy.values())
    assert (slow.busy["compute"], slow.busy["store"]) == (fast.busy["compute"],
                                                          fast.busy["store"])
    if mode == "update":       # UPDATE always runs at d = 1
        assert slow.cycles == fast.cycles
    else:
        assert fast.cycles < slow.cycles


def test_a_program_that_cannot_finish_is_refused():
    lay = LayerShape(n=1, c=8, h=8, w=8, m=8, k=3, pad=1)
    program = [Instruction(Opcode.COMPUTE, _compute(lay), pop_prev=True),
               Instruction(Opcode.FINISH)]
    with pytest.raises(ValueError, match="cannot finish"):
        planner.predict(CFG, program)
