"""The host's side of training on the accelerator: one driver, any target.

A *target* is where the programs run: ``IssTarget`` (the instruction-level model,
``sim/reference/iss.py``), the generated accelerator in a simulator (``sim/tb/tb_train.py``)
and, later, the board over its UART bridge. It offers four things, all coroutines so that a
cocotb testbench can await the simulator inside them: ``write(addr, data)`` and
``read(addr, nbytes)`` of DRAM, ``run(addr, count)`` of a program image already in DRAM
(PROG_ADDR / PROG_COUNT; returns ``RunCounters``, raises ``ProgramError`` where the hardware
stops) and ``mem_bytes``.

``AccelTrainer`` is the host: it does what EF-Train's ARM core does and no more. Per step it
compiles the step's programs (``firmware/compiler.py``: the keys and shifts change with the
step and the formats), writes the batch's int16 images, runs the forward programs, reads the
logits, computes the softmax cross-entropy gradient and writes it, runs the backward and
update programs, and sets the next step's formats by delayed scaling from the amax counters.
What is still the host's until the accelerator has a pass for it: the masters' amax and the
int16 compute copies (it reads every ``mst{s}`` back, requantizes the new masters with the
next step's weight format and key ``weight``, and writes ``w{s}``), as ``FixedNet`` does in
steps 6 and 7 of its ``train_step``. The host's arithmetic is the golden model's own code
(``sim/golden``), which is why the driver lives in ``sim/`` and not in ``firmware/``.

``train_on_target(options, target, ...)`` is the golden trainer's loop (``sim/golden/train.py``:
the same order of samples, calibration on the first batch, learning-rate drop, evaluation
after every epoch) with every forward, backward and update on the target. With ``check``
(``every`` or ``end``) a ``FixedNet`` trains beside it from the same seed; after each checked
step the masters, velocities, compute copies, formats and the step's loss, hits and
saturations must be equal, or ``CheckMismatch`` names the step, the layer, the tensor and
the first differing index.
"""

import copy
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from edgetrain.errors import EdgetrainError
from edgetrain.firmware.compiler import ALIGN, compile_backward, compile_forward, step_symbols
from edgetrain.hw.accel.isa import INSN_BYTES, program_bytes
from edgetrain.hw.buffers.kinds import Buffer, master_lanes
from edgetrain.sim.golden import layers as gl
from edgetrain.sim.golden.digits import load_digits_split
from edgetrain.sim.golden.net import StepResult, lr_fixed
from edgetrain.sim.golden.numerics import quantize_float, requantize
from edgetrain.sim.golden.storage import stored_activation_bytes
from edgetrain.sim.golden.train import EpochRecord, TrainResult, build_model, check_options
from edgetrain.sim.reference import engine as ref
from edgetrain.sim.reference.iss import Machine, ProgramError

__all__ = ["RunCounters", "IssTarget", "AccelTrainer", "CheckMismatch", "StepMemory",
           "step_memory", "preflight", "digits_subset", "train_on_target", "CHECK_MODES"]

CHECK_MODES = ("every", "end", "none")
#: Bytes of DRAM kept for the program being run (4,096 instructions).
PROGRAM_AREA = 4096 * INSN_BYTES


class CheckMismatch(EdgetrainError):
    """The target's training state differs from the golden trainer's."""


@dataclass(frozen=True)
class RunCounters:
    """What one program counted: ``cycles`` from start to done (None on the instruction-level
    model), the engine's ``macs``, ``busy`` cycles, ``saturations`` and ``amax``, and the
    banks' ``refreshes``."""
    cycles: int | None
    macs: int
    saturations: int
    amax: int
    busy: int | None = None
    refreshes: int | None = None


@dataclass(frozen=True)
class StepMemory:
    """Where a training step lives in DRAM: the tensors' ``symbols``, the program area at
    ``program_at`` and the DRAM size the target needs."""
    symbols: object
    program_at: int
    mem_bytes: int


def step_memory(cfg, net, batch):
    """The DRAM map of a training step of ``net`` at ``batch`` on ``cfg``."""
    symbols = step_symbols(cfg, net, batch)
    program_at = -(-symbols.end // ALIGN) * ALIGN
    return StepMemory(symbols, program_at, program_at + PROGRAM_AREA)


class IssTarget:
    """The instruction-level model as a target: exact results, no time."""

    name = "iss"

    def __init__(self, cfg, mem_bytes):
        self.machine, self.mem_bytes = Machine(cfg, mem_bytes), mem_bytes

    async def write(self, addr, data):
        self.machine.dram[addr:addr + len(data)] = data

    async def read(self, addr, nbytes):
        return bytes(self.machine.dram[addr:addr + nbytes])

    async def run(self, addr, count):
        c = self.machine.run(addr=addr, count=count)
        return RunCounters(cycles=None, macs=c.macs, saturations=c.saturations, amax=c.amax)


def _rows_bytes(rows, row_bits):
    nbytes = row_bits // 8
    return b"".join(int(r).to_bytes(nbytes, "little") for r in rows)


def _format_keys(formats):
    """``{as_dict() string: key}`` of a ``Formats``: the compiler names keys as strings."""
    return {"/".join(map(str, k)) if isinstance(k, tuple) else str(k): k for k in formats.keys()}


_KINDS = {".bp": "input_grad", ".update": "master"}


def _kind(name):
    """The saturation kind a program's requantizations count as (golden ``StepNumerics``)."""
    return next((k for suffix, k in _KINDS.items() if name.endswith(suffix)), "activation")


def _phase(name):
    """``fp``, ``bp``, ``update``, ``pool`` or ``relu`` of a compiled program's name."""
    base, _, suffix = name.partition(".")
    if base.startswith("pool"):
        return "pool" if not suffix else "pool-bp"
    return {"": "fp", "bp": "bp", "update": "update", "relu": "relu-mask"}[suffix]


@dataclass
class StepStats:
    """What the target counted over a step, per phase: cycles, MACs, busy, refreshes."""
    phases: dict = field(default_factory=dict)

    def add(self, name, c):
        p = self.phases.setdefault(_phase(name), {"cycles": 0, "macs": 0, "refreshes": 0,
                                                   "programs": 0})
        p["programs"] += 1
        p["macs"] += c.macs
        if c.cycles is not None:
            p["cycles"] += c.cycles
            p["refreshes"] += c.refreshes or 0


class AccelTrainer:
    """The host of one net on one target; ``model`` (a fresh ``FixedNet``) gives the initial
    masters, compute copies and formats, and is not used after ``load``."""

    def __init__(self, cfg, plan, model, target, memory, batch):
        self.cfg, self.plan, self.target, self.memory, self.batch = cfg, plan, target, memory, batch
        self.net, self.symbols = plan.net, memory.symbols
        self.rounding, self.lr, self.mu_q, self.step = model.rounding, model.lr, model.mu_q, 0
        self.frac_master = dict(model.frac_master)
        self.formats = copy.deepcopy(model.formats)
        self._keys = _format_keys(self.formats)
        self._initial = model
        self._last = self.plan.layers[-1].act_out
        self.stats, self._counting = StepStats(), False

    # DRAM ---------------------------------------------------------------------------------

    async def _put(self, name, rows, row_bits):
        sym = self.symbols[name]
        data = _rows_bytes(rows, row_bits)
        if len(data) != sym.nbytes:
            raise AssertionError(f"{name}: {len(data)} bytes for a {sym.nbytes}-byte symbol")
        await self.target.write(sym.addr, data)

    async def _get_act(self, name):
        """The ``[N, C, H, W]`` int16 tensor of activation symbol ``name``."""
        sym, t = self.symbols[name], self.cfg.tm
        n, c, h, w = sym.shape
        raw = np.frombuffer(await self.target.read(sym.addr, sym.nbytes), dtype="<i2")
        rows = raw.reshape(n, -(-c // t), h, w, t).transpose(0, 1, 4, 2, 3)
        return rows.reshape(n, -1, h, w)[:, :c].astype(np.int16)

    async def _get_masters(self, slot):
        """(master, velocity) of ``slot`` from ``mst{slot}``."""
        sym, t = self.symbols[f"mst{slot}"], self.cfg.tm
        size = Buffer.MST.row_bits(self.cfg) // 8
        raw = await self.target.read(sym.addr, sym.nbytes)
        rows = [int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)]
        m, c = sym.shape[:2]
        return tuple(a[:m, :c].astype(np.int32) for a in
                     ref.unpack_master_rows(rows, sym.shape, t, master_lanes(self.cfg)))

    async def _put_weights(self, weights):
        t = self.cfg.tm
        for s, w in weights.items():
            await self._put(f"w{s}", ref.pack_weight_rows(w, t), 16 * t * t)

    async def load(self):
        """Write the initial masters, velocities and compute copies."""
        m, t = self._initial, self.cfg.tm
        for s in m.master:
            await self._put(f"mst{s}", ref.pack_master_rows(
                m.master[s], m.velocity[s], t, master_lanes(self.cfg)),
                Buffer.MST.row_bits(self.cfg))
        await self._put_weights(m.weights)
        self._initial = None

    async def _run(self, p, num, *, observe=True):
        image = program_bytes(self.cfg, p.program)
        if len(image) > PROGRAM_AREA:
            raise AssertionError(f"{p.name}: {len(p.program)} instructions exceed the "
                                 f"program area ({PROGRAM_AREA // INSN_BYTES})")
        await self.target.write(self.memory.program_at, image)
        try:
            c = await self.target.run(self.memory.program_at, len(p.program))
        except ProgramError as e:
            raise EdgetrainError(f"step {num.step}: program {p.name}: {e}") from None
        if observe and p.key is not None:
            self.formats.observe(self._keys[p.key], c.amax, p.frac_acc)
        num.count_saturations(_kind(p.name), c.saturations)
        if self._counting:
            self.stats.add(p.name, c)
        return c

    # Passes -------------------------------------------------------------------------------

    def _compile(self, rounding, step):
        formats = self.formats.as_dict()
        fwd = compile_forward(self.cfg, self.net, self.batch, formats, step, rounding,
                              symbols=self.symbols)
        lr_q, lr_shift = lr_fixed(self.lr, self.batch)
        bwd = compile_backward(self.cfg, self.net, self.batch, formats, step, rounding,
                               symbols=self.symbols, frac_master=self.frac_master,
                               mu_q=self.mu_q, lr_q=lr_q, lr_shift=lr_shift)
        return fwd, bwd

    async def _forward(self, fwd, images, num, *, observe=True):
        t = self.cfg.tm
        await self._put("images", ref.pack_rows(images, t), 16 * t)
        for p in fwd.programs:
            await self._run(p, num, observe=observe)
        return await self._get_act("logits")

    async def _forward_backward(self, x, labels, num, *, update):
        fwd, bwd = self._compile(self.rounding, num.step)
        images = quantize_float(x, self.formats["input"])
        logits = await self._forward(fwd, images, num)
        loss, grad, correct = gl.softmax_xent(logits, self.formats[self._last], labels)
        dy = quantize_float(grad, self.formats[("grad", "loss")])[:, :, None, None]
        await self._put("dlogits", ref.pack_rows(dy, self.cfg.tm), 16 * self.cfg.tm)
        for p in bwd.programs:
            if update or not p.name.endswith(".update"):
                await self._run(p, num)
        return loss, correct

    async def calibrate(self, x, labels, *, max_passes=None):
        """``FixedNet.calibrate`` on the target: forward and backward (no update) until the
        formats stop changing; return the passes."""
        max_passes = max_passes or 2 * len(self.plan.layers) + 2
        for n in range(1, max_passes + 1):
            num = gl.StepNumerics(rounding=self.rounding, step=self.step)
            await self._forward_backward(x, labels, num, update=False)
            if not self.formats.advance():
                return n
        return max_passes

    async def train_step(self, x, labels):
        """One training step on float images ``x``; return its ``StepResult`` and the new
        (masters, velocities, compute copies) by slot."""
        num = gl.StepNumerics(rounding=self.rounding, step=self.step)
        self._counting = True
        loss, correct = await self._forward_backward(x, labels, num, update=True)
        self._counting = False
        state = {}
        for s in self.frac_master:
            master, velocity = await self._get_masters(s)
            self.formats.observe(("w", s), gl.amax(master), self.frac_master[s])
            state[s] = [master, velocity]
        self.formats.advance()
        weights = {}
        for s, (master, _) in state.items():
            shift = self.frac_master[s] - self.formats[("w", s)]
            q, n = requantize(master, shift, rounding=self.rounding,
                              key=num.key(s, "weight"))
            num.count_saturations("weight", n)
            weights[s] = q
            state[s].append(q)
        await self._put_weights(weights)
        self.step += 1
        return StepResult(loss, correct, num.saturations, num.wraps,
                          dict(num.saturations_by_kind)), state

    async def evaluate(self, x, labels):
        """``FixedNet.evaluate`` on the target: the forward pass (nearest rounding) over
        batches of the training batch size (the last one padded with zero images)."""
        fwd, _ = self._compile("nearest", self.step)
        num = gl.StepNumerics(rounding="nearest", step=self.step)
        images = quantize_float(x, self.formats["input"])
        logits = []
        for i in range(0, len(images), self.batch):
            chunk = images[i:i + self.batch]
            pad = np.zeros((self.batch - len(chunk), *chunk.shape[1:]), chunk.dtype)
            out = await self._forward(fwd, np.concatenate([chunk, pad]), num, observe=False)
            logits.append(out[:len(chunk)])
        loss, _, correct = gl.softmax_xent(np.concatenate(logits), self.formats[self._last],
                                           labels)
        return loss, correct


def digits_subset(train=None, test=None):
    """The digits split, or its first ``train`` training and ``test`` test samples."""
    d = load_digits_split()
    return replace(d, x_train=d.x_train[:train], y_train=d.y_train[:train],
                   x_test=d.x_test[:test], y_test=d.y_test[:test])


def preflight(cfg, plan, options):
    """Compile the first step of ``plan`` as ``options`` say, so that a net or batch the
    compiler refuses is refused before a simulator is built; return its ``StepMemory``."""
    memory = step_memory(cfg, plan.net, options.batch)
    host = AccelTrainer(cfg, plan, build_model(plan, options), None, memory, options.batch)
    host._compile(options.rounding, 0)
    return memory


# Checking against the golden trainer ---------------------------------------------------------

def _slot_layer(plan):
    """``{slot: layer name}`` as the compiler names the programs (conv{s} / fc{s})."""
    names = {}
    for lp in plan.layers:
        for s in getattr(lp, "slots", ()):
            names[s] = f"{type(lp.layer).__name__.lower()}{s}"
    return names


def _first_difference(got, want):
    at = np.argwhere(np.asarray(got) != np.asarray(want))
    if not len(at):
        return None
    i = tuple(int(v) for v in at[0])
    return f"first at index {i}: {int(got[i])} on the target, {int(want[i])} golden " \
           f"({len(at)} of {np.size(want)} differ)"


def compare_step(step, plan, result, state, formats, golden, golden_result):
    """Raise ``CheckMismatch`` for the first difference between the target's step and the
    golden ``FixedNet``'s."""
    names = _slot_layer(plan)
    for s in sorted(state, reverse=True):
        for tensor, got, want in zip(("masters", "velocities", "compute copies"), state[s],
                                     (golden.master[s], golden.velocity[s], golden.weights[s])):
            diff = _first_difference(got, want)
            if diff:
                raise CheckMismatch(f"step {step}: {names.get(s, s)} (slot {s}) {tensor} "
                                    f"differ, {diff}")
    got, want = formats.as_dict(), golden.formats.as_dict()
    for k in want:
        if got.get(k) != want[k]:
            raise CheckMismatch(f"step {step}: format {k} is frac {got.get(k)} on the "
                                f"target, {want[k]} golden")
    for what in ("loss", "correct", "saturations", "wraps", "saturations_by_kind"):
        a, b = getattr(result, what), getattr(golden_result, what)
        if a != b:
            raise CheckMismatch(f"step {step}: the step's {what} is {a} on the target, "
                                f"{b} golden")


# The training loop ---------------------------------------------------------------------------

@dataclass
class AccelTrainResult(TrainResult):
    """``TrainResult`` plus what the target counted (``backend``, steps run, cycles)."""
    backend: str = ""
    steps: int = 0
    checked_steps: int = 0
    phases: dict = field(default_factory=dict)
    wall_seconds: float = 0.0

    def to_json(self):
        out = super().to_json() | {"backend": self.backend, "steps": self.steps,
                                   "checked_steps": self.checked_steps,
                                   "wall_seconds": self.wall_seconds}
        cycles = sum(p["cycles"] for p in self.phases.values())
        if cycles:
            macs_per_cycle = self.options["macs_per_cycle"]
            out |= {"cycles_per_step": cycles / max(self.steps, 1),
                    "utilization": {ph: p["macs"] / (p["cycles"] * macs_per_cycle)
                                    for ph, p in self.phases.items() if p["cycles"]},
                    "refreshes": sum(p["refreshes"] for p in self.phases.values()),
                    "phases": self.phases}
        return out


async def train_on_target(options, cfg, target, memory, *, data=None, steps=None,
                          check="none", on_step=None, on_epoch=None):
    """Train as ``options`` say with every program on ``target``; ``steps`` stops early
    (the epoch it ends in is evaluated); ``check`` compares with a golden ``FixedNet``."""
    if check not in CHECK_MODES:
        raise EdgetrainError(f"--check must be one of {', '.join(CHECK_MODES)}, "
                             f"not {check!r}")
    plan = check_options(options, cfg)
    data = data or load_digits_split()
    b = options.batch
    per_epoch = len(data.y_train) // b
    total = min(steps or options.epochs * per_epoch, options.epochs * per_epoch)
    host = AccelTrainer(cfg, plan, build_model(plan, options), target, memory, b)
    golden = build_model(plan, options) if check != "none" else None
    await host.load()
    result = AccelTrainResult(
        net=plan.net.name, numerics="fixed16", stored_activation_bytes=stored_activation_bytes(
            plan, b), options={**asdict(options), "net": plan.net.name,
                               "macs_per_cycle": cfg.tm * cfg.tn},
        backend=target.name)
    rng = np.random.default_rng(options.seed)
    start, done = time.perf_counter(), 0
    for epoch in range(1, options.epochs + 1):
        if done >= total:
            break
        order = rng.permutation(len(data.y_train))
        if epoch == 1:
            first = order[:b]
            result.calibration_passes = await host.calibrate(data.x_train[first],
                                                             data.y_train[first])
            if golden is not None:
                passes = golden.calibrate(data.x_train[first], data.y_train[first])
                got, want = host.formats.as_dict(), golden.formats.as_dict()
                bad = [k for k in want if got.get(k) != want[k]]
                if passes != result.calibration_passes or bad:
                    raise CheckMismatch(
                        f"calibration: {result.calibration_passes} passes on the target, "
                        f"{passes} golden" + "".join(f"; format {k} is frac {got.get(k)} on "
                                                     f"the target, {want[k]} golden"
                                                     for k in bad[:1]))
        host.lr = options.lr_at(epoch)
        if golden is not None:
            golden.lr = host.lr
        epoch_start, n = time.perf_counter(), min(per_epoch, total - done)
        loss = correct = sat = wraps = 0
        by_kind = {}
        for i in range(n):
            idx = order[i * b:(i + 1) * b]
            x, y = data.x_train[idx], data.y_train[idx]
            r, state = await host.train_step(x, y)
            done += 1
            if golden is not None:
                gr = golden.train_step(x, y)
                if check == "every" or done == total:
                    compare_step(done - 1, plan, r, state, host.formats, golden, gr)
                    result.checked_steps += 1
            loss, correct, sat, wraps = loss + r.loss, correct + r.correct, \
                sat + r.saturations, wraps + r.wraps
            for k, v in r.saturations_by_kind.items():
                by_kind[k] = by_kind.get(k, 0) + v
            if on_step:
                on_step(done, total, r.loss)
        test_loss, test_correct = await host.evaluate(data.x_test, data.y_test)
        if golden is not None:
            want = golden.evaluate(data.x_test, data.y_test)
            if (test_loss, test_correct) != want:
                raise CheckMismatch(f"epoch {epoch}: test loss and hits {test_loss}, "
                                    f"{test_correct} on the target, {want[0]}, {want[1]} golden")
        result.history.append(EpochRecord(
            epoch, loss / n, correct / (n * b), test_loss, test_correct / len(data.y_test),
            sat, wraps, time.perf_counter() - epoch_start, by_kind))
        if on_epoch:
            on_epoch(result.history[-1])
    result.steps, result.formats = done, host.formats.as_dict()
    result.phases, result.wall_seconds = host.stats.phases, time.perf_counter() - start
    return result
