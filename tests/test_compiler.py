"""``firmware/compiler.py`` on the instruction-level model, without a simulator.

Forward: digits-cnn at batch 8 and 32 on the default ``AcceleratorConfig``, both roundings:
the golden ``FixedNet`` (calibrated on the batch, so its formats are realistic) gives the
weights and formats; its images, quantized by ``quantize_input``, and its int16 weights go
into DRAM at the symbol map's addresses; the compiled programs run one after another on
``sim/reference/iss.py``. Every tensor of the pass (each conv's ReLU'd output, the max-pool
output and its argmax codes, the logits) must equal the golden forward's bit for bit, and
each conv's program amax the accumulator amax the golden forward observes for that layer,
at the same frac, and the saturations the golden pass counts. The comparison is shown to
fail with a wrong key (the next step's) or a wrong shift (one frac off).

A whole step: digits-cnn at batch 8, both roundings, and at 16 and 32 (the convs' UPDATE
cut along the batch: WU tiles summed in MST, then the SGD with the sums), from a
calibrated ``FixedNet`` after one ``train_step`` (so the velocities are not zero): the
forward programs, the host's loss gradient from the machine's logits as
``FixedNet._forward_backward`` makes it, then the backward programs. Every gradient
(``dlogits``, each input gradient, the pool-backward output, each RELU_MASK result), each
BP's amax at its frac, the input-gradient and master saturations, and every master and
velocity in ``mst{s}`` must equal those of a copy of the ``FixedNet`` that ran the same
``train_step`` (its compute copies and next formats come after the masters and are the
host's: not compared). One case is made to saturate (a format too fine, masters at the
int32 limits). A g_shift one frac off, UPDATE's velocity and master keys swapped and a
RELU_MASK against the wrong activation each fail the comparison.
"""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest

from edgetrain.errors import ConfigError
from edgetrain.firmware import compiler
from edgetrain.firmware.compiler import (
    ALIGN, compile_backward, compile_forward, forward_symbols, step_symbols)
from edgetrain.firmware.nets import NETS
from edgetrain.firmware.tiling import RowLayout
from edgetrain.hw.accel.isa import Opcode, check_program
from edgetrain.hw.buffers.kinds import Buffer, master_lanes
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.golden import layers as gl
from edgetrain.sim.golden import numerics
from edgetrain.sim.golden.net import FixedNet, lr_fixed
from edgetrain.sim.golden.plan import init_weights, plan_net
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.reference.iss import Machine
from edgetrain.sim.tb.accel_bench import rows_bytes

CFG = AcceleratorConfig()
T = CFG.tm
NET = NETS["digits-cnn"]
CASES = [(8, 0), (32, 3)]          # (batch, step)


def _batch(batch, seed):
    """Random float images and labels."""
    rng = np.random.default_rng([seed, batch])
    return (rng.random((batch, *NET.input_shape)).astype(np.float32),
            rng.integers(0, NET.classes, batch))


def _fixed(rounding, batch, seed):
    """A golden digits-cnn calibrated on a random batch, and that batch's int16 images."""
    x, labels = _batch(batch, seed)
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


FORWARD_SYMBOLS = {"images", "act0", "act1", "act2", "act3", "pool8", "pool8.argmax",
                   "logits", "w0", "w1", "w2", "w3", "w4"}
BACKWARD_SYMBOLS = {"dlogits", "dpool8", "dact3", "dact2", "dact1", "dact0", "dz3", "dz2",
                    "dz1", "dz0", "mst0", "mst1", "mst2", "mst3", "mst4"}


@pytest.mark.parametrize("batch", [8, 32])
@pytest.mark.parametrize("whole_step", [False, True])
def test_symbol_map(batch, whole_step):
    symbols = (step_symbols if whole_step else forward_symbols)(CFG, NET, batch)
    table = json.loads(json.dumps(symbols.as_dict()))
    names = set(table["symbols"])
    assert names == FORWARD_SYMBOLS | (BACKWARD_SYMBOLS if whole_step else set())
    rl, runs = RowLayout(CFG), []
    size = {"act": rl.act_bytes, "wgt": rl.wgt_bytes, "mst": rl.block_bytes}
    for name, s in table["symbols"].items():
        shape = tuple(s["shape"])
        assert s["addr"] % ALIGN == 0, name
        assert s["bytes"] == size[s["layout"]](shape), name
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


# The backward pass and the update ------------------------------------------------------------

BATCH = 8            # at 16 and 32 the digits convs' UPDATE is cut along the batch
GRADS = ("dpool8", "dact3", "dz3", "dact2", "dz2", "dact1", "dz1", "dact0", "dz0")


def _trained(rounding, seed, batch=BATCH):
    """A calibrated golden digits-cnn after one training step (so its velocities are not
    zero), and the float batch of its next step."""
    fixed, _ = _fixed(rounding, batch, seed)
    fixed.train_step(*_batch(batch, seed))
    return fixed, *_batch(batch, seed + 1)


def _golden_step(fixed, x, labels, monkeypatch):
    """A copy of ``fixed`` after its ``train_step`` on ``x``; the gradients it made
    (``{symbol: tensor}``), what its formats observed (``{key: (amax, frac)}``) and its
    saturations by kind."""
    golden, grads, seen = copy.deepcopy(fixed), {}, {}
    relus = iter(["dz3", "dz2", "dz1", "dz0"])          # relu_backward's calls, in order
    conv_backward, observe = golden._conv_backward, golden.formats.observe
    pool_backward, relu_backward = gl.maxpool_backward, gl.relu_backward

    def conv(lp, x, dy, *args):
        dx = conv_backward(lp, x, dy, *args)
        s = lp.slots[0]
        grads.update({"dlogits": dy} if s == 4 else {})
        if dx is not None:
            grads[{4: "dpool8"}.get(s, f"dact{s - 1}")] = dx
        return dx

    def seen_by(key, amax, frac_at):
        seen.setdefault("/".join(map(str, key)), (int(amax), int(frac_at)))
        observe(key, amax, frac_at)

    with monkeypatch.context() as m:
        m.setattr(golden, "_conv_backward", conv)
        m.setattr(golden.formats, "observe", seen_by)
        m.setattr(gl, "maxpool_backward", lambda dy, arg: grads.setdefault(
            "dact3", pool_backward(dy, arg)))
        m.setattr(gl, "relu_backward", lambda dy, mask: grads.setdefault(
            next(relus), relu_backward(dy, mask)))
        result = golden.train_step(x, labels)
    return golden, grads, seen, result.saturations_by_kind


def _compile_step(fixed, rounding, batch=BATCH, **changes):
    """The forward and backward passes of ``fixed``'s next step on one symbol map;
    ``changes`` replace ``compile_backward``'s SGD arguments."""
    formats, symbols = fixed.formats.as_dict(), step_symbols(CFG, NET, batch)
    lr_q, lr_shift = lr_fixed(fixed.lr, batch)
    sgd = dict(frac_master=dict(fixed.frac_master), mu_q=fixed.mu_q, lr_q=lr_q,
               lr_shift=lr_shift) | changes
    return (compile_forward(CFG, NET, batch, formats, fixed.step, rounding, symbols=symbols),
            compile_backward(CFG, NET, batch, formats, fixed.step, rounding, symbols=symbols,
                             **sgd))


def _run_step(fixed, x, labels, fwd, bwd):
    """Run the forward programs, write the host's loss gradient (``_forward_backward``'s),
    run the backward programs; return the machine and the backward programs' counters."""
    symbols, lanes = fwd.symbols, master_lanes(CFG)
    machine, _ = _run(fixed, fixed.quantize_input(x), fwd)
    for s in fixed.master:
        _put(machine, symbols[f"mst{s}"], ref.pack_master_rows(
            fixed.master[s], fixed.velocity[s], T, lanes), Buffer.MST.row_bits(CFG))
    formats = fixed.formats.as_dict()
    _, grad, _ = gl.softmax_xent(_get(machine, symbols["logits"]), formats["act/4"], labels)
    dy = numerics.quantize_float(grad, formats["grad/loss"])[:, :, None, None]
    _put(machine, symbols["dlogits"], ref.pack_rows(dy, T), 16 * T)
    return machine, [machine.run(p.program) for p in bwd.programs]


def _masters(machine, sym):
    """The (master, velocity) ``[M, C, K, K]`` of ``mst`` symbol ``sym`` in DRAM."""
    size = Buffer.MST.row_bits(CFG) // 8
    raw = bytes(machine.dram[sym.addr:sym.addr + sym.nbytes])
    rows = [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]
    m, c = sym.shape[:2]
    return tuple(a[:m, :c] for a in ref.unpack_master_rows(rows, sym.shape, T,
                                                           master_lanes(CFG)))


def _differ(name, got, want):
    bad = np.count_nonzero(got != want)
    return [f"{name}: {bad} of {want.size} elements differ"] if bad else []


def _step_mismatches(fixed, x, labels, passes, monkeypatch):
    """Messages for every gradient, BP amax, saturation count, master and velocity of the
    compiled step that differs from the golden step's."""
    golden, grads, seen, by_kind = _golden_step(fixed, x, labels, monkeypatch)
    machine, counters = _run_step(fixed, x, labels, *passes)
    bwd = passes[1]
    errors = []
    for name in ("dlogits", *GRADS):
        errors += _differ(name, _get(machine, bwd.symbols[name]), grads[name])
    for s in sorted(golden.master, reverse=True):
        master, velocity = _masters(machine, bwd.symbols[f"mst{s}"])
        errors += _differ(f"mst{s} masters", master, golden.master[s])
        errors += _differ(f"mst{s} velocities", velocity, golden.velocity[s])
    for p, c in zip(bwd.programs, counters):
        if p.key is not None and (c.amax, p.frac_acc) != seen[p.key]:
            errors.append(f"{p.name}: amax {c.amax} at frac {p.frac_acc}, golden "
                          f"{seen[p.key]}")
    for kind, suffix in (("input_grad", ".bp"), ("master", ".update")):
        got = [c.saturations for p, c in zip(bwd.programs, counters) if
               p.name.endswith(suffix)]
        if sum(got) != by_kind.get(kind, 0):
            errors.append(f"{kind} saturations {got}, golden {by_kind.get(kind, 0)}")
    return errors


def _saturating(fixed):
    """Make ``fixed``'s next step saturate: conv3's input-gradient format 6 bits too fine,
    every 7th master at an int32 limit."""
    fixed.formats._frac[("grad", 3)] += 6
    for m in fixed.master.values():
        m.flat[::7] = np.where(np.arange(m.flat[::7].size) % 2, np.iinfo(np.int32).max,
                               np.iinfo(np.int32).min)


@pytest.mark.parametrize("rounding, saturating, batch", [
    ("nearest", False, 8), ("stochastic", False, 8), ("stochastic", True, 8),
    ("nearest", False, 16), ("stochastic", False, 32)])
def test_step_equals_golden(rounding, saturating, batch, monkeypatch):
    fixed, x, labels = _trained(rounding, seed=5, batch=batch)
    if saturating:
        _saturating(fixed)
        by_kind = _golden_step(fixed, x, labels, monkeypatch)[3]
        assert by_kind["input_grad"] and by_kind["master"], by_kind
    fwd, bwd = _compile_step(fixed, rounding, batch)
    assert [p.name for p in bwd.programs] == [
        "fc4.bp", "fc4.update", "pool8.bp",
        *(f"conv{s}.{k}" for s in (3, 2, 1) for k in ("relu", "bp", "update")),
        "conv0.relu", "conv0.update"]
    for p in bwd.programs:
        check_program(p.program)
    partial = [p.name for p in bwd.programs if p.name.endswith(".update") and any(
        insn.op is Opcode.COMPUTE and insn.body["desc"]["partial"] for insn in p.program)]
    assert bool(partial) == (batch > 8), partial
    assert all(np.any(v) for v in fixed.velocity.values())
    assert _step_mismatches(fixed, x, labels, (fwd, bwd), monkeypatch) == []


def test_wrong_shift_key_or_mask_fails(monkeypatch):
    """The comparison above catches a g_shift one frac off, UPDATE's velocity and master
    keys swapped, and a RELU_MASK against the activation of the layer before."""
    fixed, x, labels = _trained("stochastic", seed=5)
    frac_master = dict(fixed.frac_master) | {2: fixed.frac_master[2] + 1}
    passes = _compile_step(fixed, "stochastic", frac_master=frac_master)
    errors = _step_mismatches(fixed, x, labels, passes, monkeypatch)
    assert errors and all(e.startswith("mst2 ") for e in errors), errors

    with monkeypatch.context() as m:
        m.setattr(compiler, "_SGD_KINDS", ("weight_grad", "master", "velocity"))
        passes = _compile_step(fixed, "stochastic")
    errors = _step_mismatches(fixed, x, labels, passes, monkeypatch)
    assert errors and all(e.startswith("mst") for e in errors), errors

    backs = compiler._backs
    with monkeypatch.context() as m:
        m.setattr(compiler, "_backs", lambda net, batch: (
            [replace(b, reads=(b.reads[0], "act1")) if b.name == "conv2.relu" else b
             for b in backs(net, batch)[0]], backs(net, batch)[1]))
        passes = _compile_step(fixed, "stochastic")
    errors = _step_mismatches(fixed, x, labels, passes, monkeypatch)
    assert errors and errors[0].startswith("dz2:"), errors


def test_update_refusals():
    fixed, _ = _fixed("nearest", BATCH, seed=1)
    formats = fixed.formats.as_dict()
    sgd = dict(frac_master=dict(fixed.frac_master), mu_q=fixed.mu_q, lr_q=40000, lr_shift=20)
    with pytest.raises(ConfigError, match="batch cut needs the SGD unit"):
        compile_backward(CFG.replace(update_lanes=0), NET, 32, formats, 0, "nearest", **sgd)
    with pytest.raises(ConfigError, match="frac_master has no frac for slot 4"):
        compile_backward(CFG, NET, BATCH, formats, 0, "nearest", **sgd | {"frac_master": {}})
    with pytest.raises(ConfigError, match="no frac for 'grad/loss'"):
        compile_backward(CFG, NET, BATCH, {k: v for k, v in formats.items()
                                           if k != "grad/loss"}, 0, "nearest", **sgd)
