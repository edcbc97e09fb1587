"""The compiler: a net and a batch as the accelerator programs of a training step.

This is its forward pass (issue 16). ``compile_forward(cfg, net, batch, formats, step,
rounding)`` returns a ``ForwardPass``: the DRAM map of the step's tensors (``SymbolMap``) and
one program per layer (``LayerProgram``: ``conv{s}`` / ``fc{s}`` for conv slot ``s`` with
its fused ReLU, ``pool{i}`` for net layer ``i``), each ending in FINISH and accepted by
``check_program``, to run one after another. One program per conv lets the host read each
conv's ``amax`` from the counters after it, as delayed scaling needs.

DRAM map (``SymbolMap``)
    Every tensor at an ``ALIGN``-aligned byte address (a 4 KiB page: no tensor's first burst
    is split) in the engine's row layout (``tiling.RowLayout``): activations as ``act`` rows
    (``[N, C, H, W]``), int16 weights as ``wgt`` blocks (``[M, C, K, K]``). Names:
    ``images`` (the quantized input), ``act{s}`` (the output of conv slot ``s``, after its
    ReLU when one follows: the engine fuses it, so the values before it never leave ``OUT``,
    and the ReLU mask of the backward pass is ``act{s} > 0``), ``pool{i}`` and
    ``pool{i}.argmax`` (net layer ``i``'s max-pool output and its argmax codes 0..3 as int16
    lanes), ``logits`` (the net's output, in place of its ``act{s}``) and ``w{s}`` (slot
    ``s``'s int16 compute copy). ``as_dict`` is its ``symbols.json``.
Layers
    Conv slots are numbered as the golden model numbers them (``sim/golden/plan.py``): a
    ``Conv`` or ``FC`` takes one, in forward order. A conv runs as ``tiling.layer_program`` in
    FP with ``shift = frac_in + frac_w - frac_out``, ``relu`` when a ``ReLU`` follows, and
    stochastic rounding's key ``rng_key(tensor_id(slot, "activation"), step)``. An ``FC`` on a
    ``[C, H, H]`` input runs as a conv with an ``H x H`` kernel and no padding: the same
    exact sums, and its ``[N, M, 1, 1]`` output elements have the FC's indices. A
    ``MaxPool`` runs as a POOL program (``_pool_program``). ``RevBlock`` is refused (not
    compiled yet), as is a ``ReLU`` that no conv precedes.
Formats
    ``formats`` is a plain dict of fracs keyed as ``Formats.as_dict()`` writes them:
    ``input``, ``act/{s}`` (conv slot ``s``'s output) and ``w/{s}`` (its weights).

The random keys are the golden model's (``sim/golden/numerics.py``, which firmware may not
import): ``tensor_id`` and ``rng_key`` below restate its rule, and the tests hold the two
equal.
"""

from dataclasses import dataclass, field, replace

import numpy as np

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import FC, Conv, MaxPool, ReLU
from edgetrain.firmware.tiling import RowLayout, layer_program
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.beats import beat_row
from edgetrain.hw.accel.isa import Instruction, Opcode, check_program
from edgetrain.hw.accel.pool import PoolMode
from edgetrain.hw.accel.rowunit import count_bits
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.dma.program import dram_pattern
from edgetrain.hw.engine.descriptor import LayerShape

__all__ = ["ALIGN", "TENSOR_KINDS", "tensor_id", "rng_key", "Symbol", "SymbolMap",
           "LayerProgram", "ForwardPass", "forward_symbols", "compile_forward"]

#: Byte alignment of every tensor in DRAM.
ALIGN = 0x1000

#: The tensor kinds of a conv slot, in ``numerics.TENSOR_KINDS`` order (8 ids per slot).
TENSOR_KINDS = ("activation", "input_grad", "weight_grad", "velocity", "master", "weight",
                "aux0", "aux1")

ROUNDINGS = ("nearest", "stochastic")


def _mix32(x):
    """Jenkins' six-step 32-bit integer hash (``numerics.mix32``) of the int ``x``."""
    m = 0xFFFFFFFF
    x &= m
    x = (x + 0x7ED55D16 + (x << 12)) & m
    x = x ^ 0xC761C23C ^ (x >> 19)
    x = (x + 0x165667B1 + (x << 5)) & m
    x = ((x + 0xD3A2646C) ^ (x << 9)) & m
    x = (x + 0xFD7046C5 + (x << 3)) & m
    return x ^ 0xB55A4F09 ^ (x >> 16)


def tensor_id(slot, kind):
    """Return the 8-bit id of tensor ``kind`` (of ``TENSOR_KINDS``) of conv ``slot``."""
    if not 0 <= slot < 32:
        raise ConfigError(f"conv slot must be in 0..31, not {slot!r}")
    if kind not in TENSOR_KINDS:
        raise ConfigError(f"tensor kind must be one of {', '.join(TENSOR_KINDS)}, not "
                          f"{kind!r}")
    return 8 * slot + TENSOR_KINDS.index(kind)


def rng_key(tid, step):
    """Return the 32-bit stochastic-rounding key of tensor ``tid`` at training ``step``."""
    return _mix32(((int(tid) & 0xFF) << 24) | (int(step) & 0xFFFFFF))


# The DRAM map --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Symbol:
    """One tensor in DRAM: ``addr`` and ``nbytes``, its logical ``shape`` and its row
    ``layout`` (``act``: activation rows, ``wgt``: weight blocks)."""
    name: str
    addr: int
    nbytes: int
    shape: tuple
    layout: str

    def as_dict(self):
        return {"addr": self.addr, "bytes": self.nbytes, "shape": list(self.shape),
                "layout": self.layout}


class SymbolMap:
    """The tensors of a step in DRAM, one after another from ``base`` at ``ALIGN`` bytes."""

    def __init__(self, cfg, *, base=ALIGN):
        if base < 0 or base % ALIGN:
            raise ConfigError(f"symbol map base must be a non-negative multiple of "
                              f"{ALIGN:#x}, not {base!r}")
        self.cfg, self.rl = cfg, RowLayout(cfg)
        self.base, self.end = base, base
        self._symbols = {}

    def add(self, name, shape, layout):
        """Place tensor ``name`` of ``shape`` in ``layout`` (``act`` / ``wgt``); return it."""
        if name in self._symbols:
            raise ConfigError(f"symbol {name!r} is placed twice")
        size = {"act": self.rl.act_bytes, "wgt": self.rl.wgt_bytes}[layout](shape)
        sym = Symbol(name, self.end, size, tuple(shape), layout)
        self._symbols[name] = sym
        self.end += -(-size // ALIGN) * ALIGN
        return sym

    def __getitem__(self, name):
        try:
            return self._symbols[name]
        except KeyError:
            raise ConfigError(f"no symbol {name!r} in the DRAM map") from None

    def __contains__(self, name):
        return name in self._symbols

    def __iter__(self):
        return iter(self._symbols.values())

    def as_dict(self):
        """Return the map as ``symbols.json`` holds it."""
        return {"tm": self.rl.t, "align": ALIGN, "base": self.base, "end": self.end,
                "symbols": {s.name: s.as_dict() for s in self}}


# The layers of a forward pass ----------------------------------------------------------------

@dataclass(frozen=True)
class _Step:
    """One program of the forward pass: net layers ``layers`` (a conv with its fused ReLU, or
    a pool); a conv's ``slot``, engine ``shape`` and input format key ``act_in``; the
    symbols it reads (``x``) and writes (``y``, a pool's ``argmax``)."""
    name: str
    layers: tuple
    slot: int | None
    shape: LayerShape | None
    relu: bool
    x: str
    y: str
    act_in: str | None = None
    argmax: str | None = None


def _conv_shape(batch, layer, in_shape):
    c, h, w = in_shape
    if isinstance(layer, Conv):
        return LayerShape(batch, c, h, w, layer.out_channels, layer.kernel, layer.stride,
                          layer.pad)
    if h != w:
        raise ConfigError(f"FC on a {h}x{w} input: the engine's kernels are square; make "
                          f"the input square")
    return LayerShape(batch, c, h, w, layer.out_features, h)


def _steps(net, batch):
    """The ``_Step`` s of ``net``'s forward pass at ``batch`` and the shape of each output."""
    shapes, steps, out_shapes = net.shapes(), [], {"images": (batch, *net.input_shape)}
    slot, cur, act = 0, "images", "input"
    i = 0
    while i < len(shapes):
        ls = shapes[i]
        if isinstance(ls.layer, (Conv, FC)):
            relu = i + 1 < len(shapes) and isinstance(shapes[i + 1].layer, ReLU)
            layers = (i, i + 1) if relu else (i,)
            y = f"act{slot}"
            kind = "conv" if isinstance(ls.layer, Conv) else "fc"
            steps.append(_Step(f"{kind}{slot}", layers, slot,
                               _conv_shape(batch, ls.layer, ls.in_shape), relu, cur, y, act))
            out_shapes[y] = (batch, *shapes[layers[-1]].out_shape)
            cur, act, slot = y, f"act/{slot}", slot + 1
            i += len(layers)
        elif isinstance(ls.layer, MaxPool):
            y = f"pool{i}"
            steps.append(_Step(y, (i,), None, None, False, cur, y, argmax=f"{y}.argmax"))
            out_shapes[y] = out_shapes[f"{y}.argmax"] = (batch, *ls.out_shape)
            cur, i = y, i + 1
        elif isinstance(ls.layer, ReLU):
            raise ConfigError(f"net {net.name!r} layer {i}: a ReLU runs fused into the conv "
                              f"before it, and no Conv or FC precedes this one")
        else:
            raise ConfigError(f"net {net.name!r} layer {i}: {type(ls.layer).__name__} is not "
                              f"compiled yet; the compiler takes Conv, FC, ReLU and MaxPool")
    return steps, out_shapes


def _logits(steps, out_shapes):
    """Rename the net's output symbol ``logits``."""
    last = steps[-1]
    out_shapes["logits"] = out_shapes.pop(last.y)
    steps[-1] = replace(last, y="logits")
    return steps, out_shapes


def forward_symbols(cfg, net, batch, *, base=ALIGN):
    """Return the ``SymbolMap`` of ``net``'s forward pass at ``batch`` (module docstring)."""
    steps, out_shapes = _logits(*_steps(net, batch))
    symbols = SymbolMap(cfg, base=base)
    for name, shape in out_shapes.items():
        symbols.add(name, shape, "act")
    for s in steps:
        if s.slot is not None:
            lay = s.shape
            symbols.add(f"w{s.slot}", (lay.m, lay.c, lay.k, lay.k), "wgt")
    return symbols


# Programs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerProgram:
    """One program of a pass: its ``name``, the net ``layers`` it runs, the symbols it
    reads and writes, and ``program`` (a list of ``Instruction``, ending in FINISH).

    A conv's program also names its ``slot``, the format ``key`` its accumulator's amax
    (the counters' ``amax`` after the run) is observed for, and ``frac_acc``, the frac that
    accumulator carries: the host calls ``formats.observe(key, amax, frac_acc)``.
    """
    name: str
    layers: tuple
    reads: tuple
    writes: tuple
    program: list = field(repr=False)
    slot: int | None = None
    key: str | None = None
    frac_acc: int | None = None


@dataclass(frozen=True)
class ForwardPass:
    """The DRAM map and the programs of a forward pass, to run in order."""
    symbols: SymbolMap
    programs: tuple


def _frac(formats, key):
    try:
        return int(formats[key])
    except KeyError:
        raise ConfigError(f"formats has no frac for {key!r}: give every key of "
                          f"Formats.as_dict() the pass needs") from None


def _conv_program(cfg, step, symbols, formats, key_step, rounding):
    s = step.slot
    frac_acc = _frac(formats, step.act_in) + _frac(formats, f"w/{s}")
    at = {"x": symbols[step.x].addr, "w": symbols[f"w{s}"].addr, "y": symbols[step.y].addr}
    program = layer_program(cfg, "fp", step.shape, at,
                            shift=frac_acc - _frac(formats, f"act/{s}"),
                            stochastic=rounding == "stochastic",
                            key=rng_key(tensor_id(s, "activation"), key_step), relu=step.relu)
    return LayerProgram(step.name, step.layers, (step.x, f"w{s}"), (step.y,), program, s,
                        f"act/{s}", frac_acc)


def _transfer(cfg, buffer, half, row, addr, nbytes, *, store=False):
    """A LOAD / STORE body moving ``nbytes`` at DRAM ``addr`` to / from consecutive rows
    from ``row`` of ``buffer``'s ``half``."""
    bus = cfg.axi_data_bits // 8
    beats = np.arange(addr, addr + nbytes, bus, dtype=np.int64)
    desc = Descriptor(**dram_pattern(beats, bus, cfg.axi_addr_bits),
                      buf_addr=beat_row(cfg, buffer, half, row), n0=beats.size,
                      store=int(store))
    return {"buffer": buffer, "dma": vars(desc)}


def _pool_images(cfg, planes, h, w):
    """Images per POOL tile: ``x`` in an ``ACT`` half, ``y`` and its argmax in an ``OUT``
    half, ``planes`` per image of ``h x w`` rows."""
    rows = planes * h * w
    fit = min(half_depth(cfg, Buffer.ACT) // rows, half_depth(cfg, Buffer.OUT) // (rows // 2),
              ((1 << count_bits(cfg)) - 1) // planes)
    if fit < 1:
        raise ConfigError(f"a max-pool image of {rows} rows does not fit one buffer half: "
                          f"raise input_depth / output_depth")
    return fit


def _pool_program(cfg, step, symbols):
    """LOAD / POOL / STORE per tile of images: tile ``i`` in half ``i % 2`` of ``ACT`` (its
    ``x``) and ``OUT`` (``y``, then the argmax rows), tile ``i + 2`` loading while tile ``i``
    pools and ``i - 1`` stores (``tiling``'s ping-pong tokens at ``d = 2``)."""
    x, y, arg = symbols[step.x], symbols[step.y], symbols[step.argmax]
    n, c, h, w = x.shape
    planes, row = -(-c // cfg.tm), symbols.rl.act_row
    per_tile = _pool_images(cfg, planes, h, w)
    tiles = [(n0, min(per_tile, n - n0)) for n0 in range(0, n, per_tile)]
    full, pooled, d = planes * h * w, planes * h * w // 4, 2

    def load(i):
        n0, nb = tiles[i]
        return Instruction(Opcode.LOAD, _transfer(cfg, Buffer.ACT, i % 2, 0,
                                                  x.addr + n0 * full * row, nb * full * row),
                           pop_next=i >= d, push_next=True)

    program = [load(i) for i in range(min(d, len(tiles)))]
    for i, (n0, nb) in enumerate(tiles):
        out = {"buffer": Buffer.OUT, "half": i % 2}
        body = {"mode": PoolMode.FORWARD, "src": {"buffer": Buffer.ACT, "half": i % 2,
                                                   "row": 0},
                "dst": out | {"row": 0}, "idx": out | {"row": nb * pooled},
                "planes": nb * planes, "h": h, "w": w}
        program.append(Instruction(Opcode.POOL, body, pop_prev=True, pop_next=i >= d,
                                   push_prev=i + d < len(tiles), push_next=True))
        if i + d < len(tiles):
            program.append(load(i + d))
        at, size = n0 * pooled * row, nb * pooled * row
        program += [
            Instruction(Opcode.STORE, _transfer(cfg, Buffer.OUT, i % 2, 0, y.addr + at, size,
                                                store=True), pop_prev=True),
            Instruction(Opcode.STORE, _transfer(cfg, Buffer.OUT, i % 2, nb * pooled,
                                                arg.addr + at, size, store=True),
                        push_prev=i + d < len(tiles) or i == len(tiles) - 1)]
    program.append(Instruction(Opcode.FINISH, pop_next=True))
    check_program(program)
    return LayerProgram(step.name, step.layers, (step.x,), (step.y, arg.name), program)


def compile_forward(cfg, net, batch, formats, step, rounding, *, symbols=None):
    """Return the ``ForwardPass`` of ``net`` on ``batch`` images at training ``step``.

    ``formats`` maps ``input``, ``act/{s}`` and ``w/{s}`` to fracs (``Formats.as_dict()``);
    ``rounding`` is ``nearest`` or ``stochastic``; ``symbols`` defaults to
    ``forward_symbols(cfg, net, batch)``. Raises ``ConfigError`` for a layer the compiler
    does not take, a missing frac, or a layer the buffers or fields cannot hold.
    """
    if rounding not in ROUNDINGS:
        raise ConfigError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")
    if rounding == "stochastic" and not cfg.stochastic_rounding:
        raise ConfigError("stochastic rounding needs an accelerator built with "
                          "stochastic_rounding = true")
    if not isinstance(step, int) or step < 0:
        raise ConfigError(f"step must be a non-negative integer, not {step!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"batch must be a positive integer, not {batch!r}")
    steps, _ = _logits(*_steps(net, batch))
    symbols = forward_symbols(cfg, net, batch) if symbols is None else symbols
    programs = tuple(_conv_program(cfg, s, symbols, formats, step, rounding)
                     if s.slot is not None else _pool_program(cfg, s, symbols) for s in steps)
    return ForwardPass(symbols, programs)
