"""``firmware/compiler.py`` on the instruction-level model, without a simulator.

digits-cnn's forward pass at batch 8 and 32 on the default ``AcceleratorConfig``, both
roundings: the golden ``FixedNet`` (calibrated on the batch, so its formats are realistic)
gives the weights and formats; its images, quantized by ``quantize_input``, and its int16
weights go into DRAM at the symbol map's addresses; the compiled programs run one after
another on ``sim/reference/iss.py``. Every tensor of the pass (each conv's ReLU'd output,
the max-pool output and its argmax codes, the logits) must equal the golden forward's bit
for bit, and each conv's program amax the accumulator amax the golden forward observes for
that layer, at the same frac, and the saturations the golden pass counts. The comparison is
shown to fail with a wrong key (the next step's) or a wrong shift (one frac off).
"""

import json

import numpy as np
import pytest

from edgetrain.errors import ConfigError
from edgetrain.firmware import compiler
from edgetrain.firmware.compiler import ALIGN, compile_forward, forward_symbols
from edgetrain.firmware.nets import NETS
from edgetrain.firmware.tiling import RowLayout
from edgetrain.hw.accel.isa import check_program
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.golden import layers as gl
from edgetrain.sim.golden import numerics
from edgetrain.sim.golden.net import FixedNet
from edgetrain.sim.golden.plan import init_weights, plan_net
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.reference.iss import Machine
from edgetrain.sim.tb.accel_bench import rows_bytes

CFG = AcceleratorConfig()
T = CFG.tm
NET = NETS["digits-cnn"]
CASES = [(8, 0), (32, 3)]          # (batch, step)


def _fixed(rounding, batch, seed):
    """A golden digits-cnn calibrated on a random batch, and that batch's int16 images."""
    rng = np.random.default_rng([seed, batch])
    x = rng.random((batch, *NET.input_shape)).astype(np.float32)
    labels = rng.integers(0, NET.classes, batch)
    plan = plan_net(NET)
    fixed = FixedNet(plan, init_weights(plan, seed), rounding=rounding, lr=0.05,
                     momentum=0.9)
    fixed.calibrate(x, labels)
    return fixed, fixed.quantize_input(x)


def _golden(fixed, images, step, monkeypatch):
    """The golden forward at ``step``: logits, tape, ``{format key: (amax, frac)}`` and the
    saturations."""
    seen = {}
    monkeypatch.setattr(fixed.formats, "observe", lambda key, amax, frac_at: seen.setdefault(
        "/".join(map(str, key)), (int(amax), int(frac_at))))
    tape = []
    num = gl.StepNumerics(rounding=fixed.rounding, step=step)
    logits = fixed.forward(images, num, observe=True, tape=tape)
    monkeypatch.undo()
    return logits, tape, seen, num.saturations


def _wanted(fixed, tape, logits):
    """``{symbol: tensor}`` the pass must leave in DRAM, from the golden tape (act3, which
    the tape keeps only as its ReLU mask, is compared as ``act3 > 0``)."""
    return {"act0": tape[2]["input"][0], "act1": tape[4]["input"][0],
            "act2": tape[6]["input"][0], "act3 > 0": tape[7]["mask"][0],
            "pool8": tape[9]["input"][0], "pool8.argmax": tape[8]["argmax"][0],
            "logits": logits}


def _put(machine, sym, rows, row_bits):
    image = rows_bytes(rows, row_bits)
    assert len(image) == sym.nbytes, sym.name
    machine.dram[sym.addr:sym.addr + len(image)] = image


def _get(machine, sym):
    """The ``[N, C, H, W]`` int16 tensor of activation symbol ``sym`` from DRAM."""
    n, c, h, w = sym.shape
    raw = np.frombuffer(bytes(machine.dram[sym.addr:sym.addr + sym.nbytes]), dtype="<i2")
    rows = raw.reshape(n, -(-c // T), h, w, T).transpose(0, 1, 4, 2, 3)
    return rows.reshape(n, -1, h, w)[:, :c]


def _run(fixed, images, fwd):
    """Run ``fwd``'s programs in order; return the machine and each program's counters."""
    machine = Machine(CFG, fwd.symbols.end)
    _put(machine, fwd.symbols["images"], ref.pack_rows(images, T), 16 * T)
    for s, w in fixed.weights.items():
        _put(machine, fwd.symbols[f"w{s}"], ref.pack_weight_rows(w, T), 16 * T * T)
    return machine, [machine.run(p.program) for p in fwd.programs]


def _mismatches(fixed, images, step, fwd, monkeypatch):
    """Messages for every tensor and amax of ``fwd`` that differs from the golden pass."""
    logits, tape, seen, saturations = _golden(fixed, images, step, monkeypatch)
    machine, counters = _run(fixed, images, fwd)
    got = {name: _get(machine, fwd.symbols[name]) for name in
           ("act0", "act1", "act2", "act3", "pool8", "pool8.argmax", "logits")}
    got["act3 > 0"] = got.pop("act3") > 0
    errors = []
    for name, want in _wanted(fixed, tape, logits).items():
        bad = np.count_nonzero(got[name] != want)
        if bad:
            errors.append(f"{name}: {bad} of {want.size} elements differ")
    for p, c in zip(fwd.programs, counters):
        if p.key is not None and (c.amax, p.frac_acc) != seen[p.key]:
            errors.append(f"{p.name}: amax {c.amax} at frac {p.frac_acc}, golden "
                          f"{seen[p.key]}")
    if sum(c.saturations for c in counters) != saturations:
        errors.append(f"saturations {[c.saturations for c in counters]}, golden {saturations}")
    return errors


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("batch, step", CASES)
def test_forward_equals_golden(rounding, batch, step, monkeypatch):
    fixed, images = _fixed(rounding, batch, seed=batch)
    fwd = compile_forward(CFG, NET, batch, fixed.formats.as_dict(), step, rounding)
    assert [p.name for p in fwd.programs] == ["conv0", "conv1", "conv2", "conv3", "pool8",
                                              "fc4"]
    for p in fwd.programs:
        check_program(p.program)
    assert _mismatches(fixed, images, step, fwd, monkeypatch) == []


@pytest.mark.parametrize("batch, step", CASES)
def test_wrong_key_or_shift_fails(batch, step, monkeypatch):
    """The comparison above catches a key of the wrong step and a shift one bit off."""
    fixed, images = _fixed("stochastic", batch, seed=batch)
    formats = fixed.formats.as_dict()
    wrong_key = compile_forward(CFG, NET, batch, formats, step + 1, "stochastic")
    errors = _mismatches(fixed, images, step, wrong_key, monkeypatch)
    assert errors and errors[0].startswith("act0:"), errors
    wrong_shift = compile_forward(CFG, NET, batch, formats | {"act/2": formats["act/2"] + 1},
                                  step, "stochastic")
    errors = _mismatches(fixed, images, step, wrong_shift, monkeypatch)
    assert errors and errors[0].startswith("act2:"), errors


def test_keys_are_the_golden_keys():
    for slot in range(32):
        for kind in numerics.TENSOR_KINDS:
            tid = compiler.tensor_id(slot, kind)
            assert tid == numerics.tensor_id(slot, kind)
            for step in (0, 1, 3, 0xFFFFFF, 1 << 24, 123_456_789):
                assert compiler.rng_key(tid, step) == numerics.rng_key(tid, step)
    assert compiler.TENSOR_KINDS == numerics.TENSOR_KINDS


@pytest.mark.parametrize("batch", [8, 32])
def test_symbol_map(batch):
    symbols = forward_symbols(CFG, NET, batch)
    table = json.loads(json.dumps(symbols.as_dict()))
    names = set(table["symbols"])
    assert names == {"images", "act0", "act1", "act2", "act3", "pool8", "pool8.argmax",
                     "logits", "w0", "w1", "w2", "w3", "w4"}
    rl, runs = RowLayout(CFG), []
    for name, s in table["symbols"].items():
        shape = tuple(s["shape"])
        assert s["addr"] % ALIGN == 0, name
        assert s["bytes"] == (rl.wgt_bytes if s["layout"] == "wgt" else rl.act_bytes)(shape)
        runs.append((s["addr"], s["addr"] + s["bytes"]))
    runs.sort()
    assert all(a[1] <= b[0] for a, b in zip(runs, runs[1:])), "symbols overlap"
    assert runs[-1][1] <= table["end"]
    assert table["symbols"]["logits"]["shape"] == [batch, 10, 1, 1]
    assert table["symbols"]["w4"]["shape"] == [10, 16, 4, 4]


def test_refusals():
    formats = {"input": 14} | {f"{k}/{s}": 10 for k in ("act", "w") for s in range(7)}
    with pytest.raises(ConfigError, match="RevBlock is not compiled yet"):
        compile_forward(CFG, NETS["digits-revnet"], 8, formats, 0, "nearest")
    with pytest.raises(ConfigError, match="no frac for 'w/0'"):
        compile_forward(CFG, NET, 8, {"input": 14, "act/0": 10}, 0, "nearest")
    with pytest.raises(ConfigError, match="rounding must be one of"):
        compile_forward(CFG, NET, 8, formats, 0, "even")
