"""``plan_step`` and ``edgetrain plan`` without a simulator: the plan of digits-cnn's training
step has one entry per compiled program, in the order they run; its cycles are ``predict``'s
of each program (compiled here with other formats: the values do not change the
instructions' timing), its DRAM bytes the descriptors' segments summed here, its
utilization the MACs over the array's capacity; a hand-built program's buffer lifetimes and
refreshes follow from the replay's instruction spans. The command writes the JSON and
refuses a bad net or batch with one line."""

import json
import math

import pytest

from edgetrain.cli import main
from edgetrain.firmware.compiler import (
    LayerProgram, compile_backward, compile_forward, step_symbols)
from edgetrain.firmware.nets import NETS
from edgetrain.firmware.planner import plan_program, plan_step, predict
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.isa import Instruction, Opcode
from edgetrain.hw.buffers.edram import live_threshold, periodic_interval
from edgetrain.hw.buffers.kinds import REFRESHED, Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields
from edgetrain.sim.tb.accel_bench import transfer

CFG = AcceleratorConfig()
NET = NETS["digits-cnn"]
BATCH = 8
PROGRAMS = [("conv0", "fp"), ("conv1", "fp"), ("conv2", "fp"), ("conv3", "fp"),
            ("pool8", "pool"), ("fc4", "fp"), ("fc4", "bp"), ("fc4", "update"),
            ("pool8", "pool-bp"),
            *((f"conv{s}", p) for s in (3, 2, 1) for p in ("relu-mask", "bp", "update")),
            ("conv0", "relu-mask"), ("conv0", "update")]


def _compiled():
    """digits-cnn's step at batch 8 compiled with formats and SGD constants of its own."""
    formats = {"input": 14, "grad/loss": 12} | {f"{k}/{s}": 10 + s for k in ("act", "w", "grad")
                                                 for s in range(5)}
    symbols = step_symbols(CFG, NET, BATCH)
    fwd = compile_forward(CFG, NET, BATCH, formats, 3, "stochastic", symbols=symbols)
    bwd = compile_backward(CFG, NET, BATCH, formats, 3, "stochastic", symbols=symbols,
                           frac_master=dict.fromkeys(range(5), 28), mu_q=58982, lr_q=52429,
                           lr_shift=22)
    return fwd.programs + bwd.programs


def _dram_bytes(program):
    """Bytes the LOADs and STOREs of ``program`` move: their DRAM segments, summed."""
    bus = CFG.axi_data_bits // 8
    return sum(n for i in program if i.op in (Opcode.LOAD, Opcode.STORE)
               for _, n in Descriptor(**i.body["dma"]).segments(bus))


def test_plan_of_digits_cnn_step():
    plan, compiled = plan_step(CFG, NET, BATCH), _compiled()
    assert [(p.layer, p.phase) for p in plan.layers] == PROGRAMS
    assert [p.name for p in plan.layers] == [p.name for p in compiled]
    for p, c in zip(plan.layers, compiled):
        pred = predict(CFG, c.program)
        assert (p.cycles, p.busy) == (pred.cycles, pred.busy), p.name
        assert p.dram_bytes == _dram_bytes(c.program), p.name
        assert p.instructions == len(c.program)
        assert max(v["max"] for v in p.lifetimes.values()) <= p.cycles
        if p.phase in ("fp", "bp", "update"):
            assert 0 < p.utilization <= 1 and p.macs > 0, p.name
            assert p.lifetimes["act"]["halves"] == p.tiles, p.name    # one ACT load a tile
            assert p.utilization == p.macs / (p.cycles * CFG.tm * CFG.tn)
        else:
            assert (p.macs, p.utilization) == (0, 0), p.name
        if p.phase in ("fp", "bp"):
            assert p.lifetimes["out"]["halves"] == p.tiles, p.name    # overwritten a tile
    assert plan.step_cycles == sum(predict(CFG, c.program).cycles for c in compiled)
    doc = json.loads(json.dumps(plan.as_dict()))
    assert doc["step_cycles"] == plan.step_cycles
    assert doc["dram_bytes"] == sum(_dram_bytes(c.program) for c in compiled)
    # conv1 FP: 8 images x 16 x 16 channels x 8 x 8 pixels x 9 taps
    assert plan.layers[1].macs == 8 * 16 * 16 * 64 * 9


def _serial_program():
    """LOAD into ACT half 0, COMPUTE (releasing ACT), STORE from OUT half 0, FINISH."""
    lay = LayerShape(n=1, c=8, h=8, w=8, m=8, k=3, pad=1)
    compute = {"halves": 0, "accumulate": 0, "release": 1 << Buffer.ACT.value,
               "desc": descriptor_fields(CFG, "fp", lay)}
    return [Instruction(Opcode.LOAD, transfer(CFG, Buffer.ACT, 0, 0x1000, 1024),
                        push_next=True),
            Instruction(Opcode.COMPUTE, compute, pop_prev=True, push_next=True),
            Instruction(Opcode.STORE, transfer(CFG, Buffer.OUT, 0, 0x8000, 1024, store=True),
                        pop_prev=True, push_prev=True),
            Instruction(Opcode.FINISH, pop_next=True)]


@pytest.mark.parametrize("retention", [CFG.retention_cycles, 40, 420, 10_000])
def test_lifetimes_and_refreshes_of_a_serial_program(retention):
    """ACT lives from its LOAD's start to the COMPUTE's end (released there), OUT from the
    COMPUTE's start to its STORE's end; 64 rows each (1,024 bytes of 16-byte rows)."""
    cfg = CFG.replace(retention_cycles=retention, **(
        {"edram_banks": 1, "refresh": ("none",) * 3} if retention == 40 else {}))
    program = _serial_program()
    spans = predict(cfg, program).spans
    p = plan_program(cfg, LayerProgram("conv0", (0,), (), (), program))
    assert spans[1][0] == spans[0][1] and spans[2][0] == spans[1][1]   # a serial chain
    assert spans[3] == (p.cycles, p.cycles)
    act, out = spans[1][1] - spans[0][0], spans[2][1] - spans[1][0]
    assert p.lifetimes == {"act": {"halves": 1, "max": act, "mean": act},
                           "out": {"halves": 1, "max": out, "mean": out}}
    assert p.tiles == 1 and p.dram_bytes == 2048
    if retention == 40:       # a 512-row bank cannot be swept in 40 cycles
        assert p.refreshes["periodic"] is p.refreshes["live"] is None
    else:
        rows = {b: half_depth(cfg, b) // cfg.edram_banks for b in REFRESHED}
        assert p.refreshes["periodic"] == sum(
            2 * cfg.edram_banks * math.ceil(p.cycles / periodic_interval(r, retention))
            for r in rows.values())
        assert p.refreshes["live"] == 64 * sum(         # ACT's released by the COMPUTE
            life // (live_threshold(rows[b], retention) + 1)
            for b, life in ((Buffer.ACT, act), (Buffer.OUT, out)))
    assert (p.refreshes["none"], p.refreshes["lifetime"]) == (0, 0)
    assert p.expiring_rows == 64 * ((act >= retention) + (out >= retention))


def test_rows_held_as_long_as_the_retention_expire():
    program = _serial_program()
    spans = predict(CFG, program).spans
    act, out = spans[1][1] - spans[0][0], spans[2][1] - spans[1][0]
    assert act > out
    p = plan_program(CFG.replace(retention_cycles=act),
                     LayerProgram("conv0", (0,), (), (), program))
    assert p.expiring_rows == 64                 # ACT's rows, read at the retention's age


def _two_tile_program(late_bytes):
    """Tile 0 (ACT and OUT half 0, a 1x1 conv) as in ``_serial_program``; tile 1 loads
    ``late_bytes`` into ACT half 1 meanwhile and computes into OUT half 0 again once tile 0's
    STORE is done and its own load too."""
    def compute(act_half, **deps):
        lay = LayerShape(n=1, c=8, h=8, w=8, m=8, k=1 + 2 * act_half, pad=act_half)
        body = {"halves": act_half << Buffer.ACT.value, "accumulate": 0,
                "release": 1 << Buffer.ACT.value, "desc": descriptor_fields(CFG, "fp", lay)}
        return Instruction(Opcode.COMPUTE, body, pop_prev=True, push_next=True, **deps)

    def store():
        return Instruction(Opcode.STORE, transfer(CFG, Buffer.OUT, 0, 0x8000, 1024,
                                                  store=True), pop_prev=True, push_prev=True)
    return [Instruction(Opcode.LOAD, transfer(CFG, Buffer.ACT, 0, 0x1000, 1024),
                        push_next=True),
            compute(0), store(),
            Instruction(Opcode.LOAD, transfer(CFG, Buffer.ACT, 1, 0x10000, late_bytes),
                        push_next=True),
            compute(1, pop_next=True), store(), Instruction(Opcode.FINISH, pop_next=True)]


def test_live_refreshes_follow_releases():
    """The ``live`` policy refreshes ACT until the COMPUTE releases it, and OUT until its
    STORE has read it (not until the next COMPUTE overwrites it): 8-row banks, retention
    100, a row refreshed every 81 cycles it is live."""
    cfg = CFG.replace(retention_cycles=100, edram_banks=64)
    late = 4096
    program = _two_tile_program(late)
    sp = predict(cfg, program).spans
    (l0, c0, s0, l1, c1, s1, _) = sp
    assert c1[0] - s0[1] > 100                   # tile 1 overwrites OUT half 0 late
    period = live_threshold(8, 100) + 1
    lives = [(64, c0[1] - l0[0]), (late // 16, c1[1] - l1[0]),
             (64, s0[1] - c0[0]), (64, s1[1] - c1[0])]
    p = plan_program(cfg, LayerProgram("conv0", (0,), (), (), program))
    assert p.refreshes["live"] == sum(rows * (live // period) for rows, live in lives)
    assert p.lifetimes["out"] == {"halves": 2, "max": max(lives[2][1], lives[3][1]),
                                  "mean": (lives[2][1] + lives[3][1]) / 2}


def test_plan_command_writes_json(tmp_path, capsys):
    path = tmp_path / "plan.json"
    assert main(["plan", "--net", "digits-cnn", "--batch", "8", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    plan = plan_step(CFG, NET, BATCH)
    assert [(r["layer"], r["phase"]) for r in doc["layers"]] == PROGRAMS
    assert [r["cycles"] for r in doc["layers"]] == [p.cycles for p in plan.layers]
    assert [r["dram_bytes"] for r in doc["layers"]] == [p.dram_bytes for p in plan.layers]
    assert doc["step_cycles"] == plan.step_cycles
    out = capsys.readouterr().out
    assert f"step: {plan.step_cycles} cycles" in out and "conv3  relu-mask" in out


@pytest.mark.parametrize("args, message", [
    (["--net", "digits-revnet"], "RevBlock is not compiled yet"),
    (["--net", "lenet"], "unknown net 'lenet'"),
    (["--batch", "0"], "must be a positive integer, not '0'"),
])
def test_plan_command_refuses_bad_input(args, message, capsys):
    assert main(["plan", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
