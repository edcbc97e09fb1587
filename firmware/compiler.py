"""The compiler: a net and a batch as the accelerator programs of a training step.

Issue 16. ``compile_forward(cfg, net, batch, formats, step, rounding)`` and
``compile_backward(..., frac_master=, mu_q=, lr_q=, lr_shift=)`` each return a
``CompiledPass``: the DRAM map of the step's tensors (``SymbolMap``) and one program per
layer (``LayerProgram``), each ending in FINISH and accepted by ``check_program``, to run
one after another. Forward: ``conv{s}`` / ``fc{s}`` for conv slot ``s`` with its fused ReLU,
``pool{i}`` for net layer ``i``. Backward, in the golden order (``FixedNet.backward``):
``{conv}.bp``, ``{conv}.update``, ``pool{i}.bp`` and ``{conv}.relu`` (the backward of the
ReLU fused into that conv). One program per conv lets the host read each FP's and BP's
``amax`` from the counters after it, as delayed scaling needs.

DRAM map (``SymbolMap``)
    Every tensor at an ``ALIGN``-aligned byte address (a 4 KiB page: no tensor's first burst
    is split) in the engine's row layout (``tiling.RowLayout``): activations as ``act`` rows
    (``[N, C, H, W]``), int16 weights as ``wgt`` blocks (``[M, C, K, K]``), master weights
    and velocities as ``mst``: each weight block's ``MST`` rows (``update_lanes`` pairs of
    int32 master, int32 velocity per 64-bit word), as UPDATE loads and stores them.
    Forward (``forward_symbols``): ``images`` (the quantized input), ``act{s}`` (the output
    of conv slot ``s``, after its ReLU when one follows: the engine fuses it, so the values
    before it never leave ``OUT``, and the ReLU mask of the backward pass is ``act{s} >
    0``), ``pool{i}`` and ``pool{i}.argmax`` (net layer ``i``'s max-pool output and its
    argmax codes 0..3 as int16 lanes), ``logits`` (the net's output, in place of its
    ``act{s}``) and ``w{s}`` (slot ``s``'s int16 compute copy). A step (``step_symbols``)
    adds ``d{x}``, the gradient of symbol ``x`` (``dlogits``: the loss gradient the host
    writes; ``dpool8``, ``dact3``, ...: the input gradient a BP or POOL BACKWARD writes),
    ``dz{s}`` (the gradient of slot ``s``'s output before its ReLU, RELU_MASK's result: what
    the slot's BP and UPDATE read; a slot without a ReLU reads its ``d{y}``) and ``mst{s}``
    (slot ``s``'s masters and velocities, updated in place). ``as_dict`` is its
    ``symbols.json``.
Layers
    Conv slots are numbered as the golden model numbers them (``sim/golden/plan.py``): a
    ``Conv`` or ``FC`` takes one, in forward order. A conv runs as ``tiling.layer_program``:
    FP with ``shift = frac_in + frac_w - frac_out``, ``relu`` when a ``ReLU`` follows and the
    key of kind ``activation``; BP with ``shift = frac_grad_out + frac_w - frac_grad_in``
    and kind ``input_grad``, except for the first conv (nothing needs its input gradient);
    UPDATE (WU fused with SGD in ``MST``) with ``g_shift = frac_grad_out + frac_act_in -
    frac_master`` and the keys of kinds ``weight_grad``, ``velocity``, ``master``, as
    ``FixedNet.update``. Keys are ``rng_key(tensor_id(slot, kind), step)``. An ``FC`` on a
    ``[C, H, H]`` input runs as a conv with an ``H x H`` kernel and no padding: the same
    exact sums, and its elements have the FC's indices. A ``MaxPool`` runs as POOL programs
    (forward and backward) and a ReLU's backward as ELTWISE RELU_MASK against ``act{s}``,
    each tiled by images over ``ACT`` / ``OUT`` halves (``_unit_program``). ``RevBlock`` is
    refused (not compiled yet), as is a ``ReLU`` that no conv precedes.
Formats
    ``formats`` is a plain dict of fracs keyed as ``Formats.as_dict()`` writes them:
    ``input``, ``act/{s}`` (conv slot ``s``'s output), ``w/{s}`` (its weights),
    ``grad/loss`` and ``grad/{s}`` (slot ``s``'s input gradient).
Not compiled (the accelerator has no instruction for them yet)
    The int16 compute copies of the new masters (``requantize(master, frac_master -
    frac_w)`` with the next step's ``w/{s}``, key ``weight``) and the masters' amax that
    chooses that format: the host makes both from ``mst{s}``. (An UPDATE whose channel tile's
    batch does not fit on chip, as digits-cnn's convs at batch 16 and 32, is cut along the
    batch by ``tiling``: WU tiles, then the SGD with their sums.)

The random keys come from ``firmware/keys.py``, the code the golden model computes them
with.
"""

from dataclasses import dataclass, field, replace

from edgetrain.errors import ConfigError
from edgetrain.firmware.keys import rng_key, tensor_id
from edgetrain.firmware.nets import FC, Conv, MaxPool, ReLU
from edgetrain.firmware.tiling import RowLayout, Transfers, layer_program
from edgetrain.hw.accel.banks import half_depth
from edgetrain.hw.accel.eltwise import EltwiseOp
from edgetrain.hw.accel.isa import Instruction, Opcode, check_program
from edgetrain.hw.accel.pool import PoolMode
from edgetrain.hw.accel.rowunit import count_bits
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.engine.descriptor import LayerShape

__all__ = ["ALIGN", "Symbol", "SymbolMap",
           "LayerProgram", "CompiledPass", "forward_symbols", "compile_forward",
           "step_symbols", "compile_backward"]

#: Byte alignment of every tensor in DRAM.
ALIGN = 0x1000

ROUNDINGS = ("nearest", "stochastic")


# The DRAM map --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Symbol:
    """One tensor in DRAM: ``addr`` and ``nbytes``, its logical ``shape`` and its row
    ``layout`` (``act``: activation rows, ``wgt``: weight blocks, ``mst``: the ``MST`` rows
    of each weight block, master and velocity)."""
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
        """Place tensor ``name`` of ``shape`` in ``layout`` (``act`` / ``wgt`` / ``mst``);
        return it."""
        if name in self._symbols:
            raise ConfigError(f"symbol {name!r} is placed twice")
        size = {"act": self.rl.act_bytes, "wgt": self.rl.wgt_bytes,
                "mst": self.rl.block_bytes}[layout](shape)
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

    A conv's FP or BP program also names its ``slot``, the format ``key`` its accumulator's
    amax (the counters' ``amax`` after the run) is observed for, and ``frac_acc``, the frac
    that accumulator carries: the host calls ``formats.observe(key, amax, frac_acc)``. An
    UPDATE names its ``slot`` only (the counters do not give the masters' amax).
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
class CompiledPass:
    """The DRAM map and the programs of a pass (forward, or backward and update), to run
    in order."""
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
    from ``row`` of ``buffer``'s ``half`` (one run of ``Transfers.rows``)."""
    return Transfers(cfg).rows(buffer, half, row, [addr], nbytes, store=store)


def _operand(buffer, half, row):
    """The start of a run of rows for the pool and eltwise units."""
    return {"buffer": buffer, "half": half, "row": row}


def _image_tiles(cfg, n, what, act_rows, out_rows, count):
    """``(n0, nb)`` tiles of ``n`` images for a POOL / ELTWISE program whose image needs
    ``act_rows`` rows of an ``ACT`` half, ``out_rows`` of an ``OUT`` half and ``count`` in
    the unit's count field."""
    fit = min(half_depth(cfg, Buffer.ACT) // act_rows, half_depth(cfg, Buffer.OUT) // out_rows,
              ((1 << count_bits(cfg)) - 1) // count)
    if fit < 1:
        raise ConfigError(f"one image of the {what} ({act_rows} ACT rows, {out_rows} OUT "
                          f"rows) does not fit one buffer half: raise input_depth / "
                          f"output_depth")
    return [(n0, min(fit, n - n0)) for n0 in range(0, n, fit)]


@dataclass(frozen=True)
class _UnitTile:
    """One tile of a POOL / ELTWISE program: its LOAD bodies (into an ``ACT`` half), the
    unit's instruction ``op`` with ``body`` (``ACT`` to ``OUT``) and its STORE bodies."""
    loads: tuple
    op: Opcode
    body: dict
    stores: tuple


def _unit_program(tiles):
    """The instructions of ``tiles``: tile ``i`` in half ``i % 2`` of ``ACT`` and ``OUT``,
    tile ``i + 2`` loading while tile ``i`` runs and ``i - 1`` stores (``tiling``'s
    ping-pong tokens at ``d = 2``), then FINISH."""
    n, d = len(tiles), 2

    def loads(i):
        last = len(tiles[i].loads) - 1
        return [Instruction(Opcode.LOAD, body, pop_next=j == 0 and i >= d, push_next=j == last)
                for j, body in enumerate(tiles[i].loads)]

    program = [insn for i in range(min(d, n)) for insn in loads(i)]
    for i, tile in enumerate(tiles):
        program.append(Instruction(tile.op, tile.body, pop_prev=True, pop_next=i >= d,
                                   push_prev=i + d < n, push_next=True))
        if i + d < n:
            program += loads(i + d)
        last = len(tile.stores) - 1
        program += [Instruction(Opcode.STORE, body, pop_prev=j == 0,
                                push_prev=j == last and (i + d < n or i == n - 1))
                    for j, body in enumerate(tile.stores)]
    program.append(Instruction(Opcode.FINISH, pop_next=True))
    check_program(program)
    return program


def _planes(symbols, sym):
    """``(n, planes per image, h, w, bytes per row)`` of activation symbol ``sym``."""
    n, c, h, w = sym.shape
    return n, -(-c // symbols.rl.t), h, w, symbols.rl.act_row


def _pool_program(cfg, step, symbols):
    """POOL FORWARD per tile of images: ``x`` into ``ACT``, ``y`` then its argmax rows in
    ``OUT``, each stored to its symbol."""
    x, y, arg = symbols[step.x], symbols[step.y], symbols[step.argmax]
    n, planes, h, w, row = _planes(symbols, x)
    full, pooled = planes * h * w, planes * h * w // 4
    tiles = []
    for i, (n0, nb) in enumerate(_image_tiles(cfg, n, "max-pool", full, 2 * pooled, planes)):
        at, size = n0 * pooled * row, nb * pooled * row
        body = {"mode": PoolMode.FORWARD, "src": _operand(Buffer.ACT, i % 2, 0),
                "dst": _operand(Buffer.OUT, i % 2, 0),
                "idx": _operand(Buffer.OUT, i % 2, nb * pooled),
                "planes": nb * planes, "h": h, "w": w}
        tiles.append(_UnitTile(
            (_transfer(cfg, Buffer.ACT, i % 2, 0, x.addr + n0 * full * row, nb * full * row),),
            Opcode.POOL, body,
            (_transfer(cfg, Buffer.OUT, i % 2, 0, y.addr + at, size, store=True),
             _transfer(cfg, Buffer.OUT, i % 2, nb * pooled, arg.addr + at, size,
                       store=True))))
    return LayerProgram(step.name, step.layers, (step.x,), (step.y, arg.name),
                        _unit_program(tiles))


def _named(name, build, step):
    """``build(step)``, a ``ConfigError`` it raises naming program ``name``."""
    try:
        return build(step)
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}") from None


def _check_pass(cfg, batch, step, rounding):
    if rounding not in ROUNDINGS:
        raise ConfigError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")
    if rounding == "stochastic" and not cfg.stochastic_rounding:
        raise ConfigError("stochastic rounding needs an accelerator built with "
                          "stochastic_rounding = true")
    if not isinstance(step, int) or step < 0:
        raise ConfigError(f"step must be a non-negative integer, not {step!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"batch must be a positive integer, not {batch!r}")


def compile_forward(cfg, net, batch, formats, step, rounding, *, symbols=None):
    """Return the ``CompiledPass`` of ``net`` on ``batch`` images at training ``step``.

    ``formats`` maps ``input``, ``act/{s}`` and ``w/{s}`` to fracs (``Formats.as_dict()``);
    ``rounding`` is ``nearest`` or ``stochastic``; ``symbols`` defaults to
    ``forward_symbols(cfg, net, batch)``. Raises ``ConfigError`` for a layer the compiler
    does not take, a missing frac, or a layer the buffers or fields cannot hold.
    """
    _check_pass(cfg, batch, step, rounding)
    steps, _ = _logits(*_steps(net, batch))
    symbols = forward_symbols(cfg, net, batch) if symbols is None else symbols
    def build(s):
        if s.slot is None:
            return _pool_program(cfg, s, symbols)
        return _conv_program(cfg, s, symbols, formats, step, rounding)
    return CompiledPass(symbols, tuple(_named(s.name, build, s) for s in steps))


# The backward pass and the update -----------------------------------------------------------

#: The tensor kinds of UPDATE's keys ``key`` (of the weight gradient), ``key_v``, ``key_w``.
_SGD_KINDS = ("weight_grad", "velocity", "master")


@dataclass(frozen=True)
class _Back:
    """One program of the backward pass: ``kind`` (``bp``, ``update``, ``pool`` or ``relu``)
    undoing forward step ``fwd``; the symbols it reads, in operand order (``bp``: ``dy``,
    weights; ``update``: ``x``, ``dy``, master rows; ``pool``: ``dy``, argmax; ``relu``: the
    gradient, the activation whose ``> 0`` is the mask) and writes (``dst``; UPDATE: the
    master rows, in place), and ``grad``, the format key of the gradient it reads."""
    name: str
    kind: str
    fwd: _Step
    reads: tuple
    dst: str
    grad: str


def _backs(net, batch):
    """The ``_Back`` s of ``net``'s backward pass in the golden order, and ``{symbol:
    (shape, layout)}`` of the tensors it adds to the forward's."""
    steps, shapes = _logits(*_steps(net, batch))
    weighted = [any(s.slot is not None for s in steps[:i]) for i in range(len(steps))]
    g, key = "dlogits", "grad/loss"
    added, backs = {g: (shapes["logits"], "act")}, []
    for st, before in zip(reversed(steps), reversed(weighted)):
        if st.slot is None:                   # a max-pool: its input gradient, if any needs it
            if before:
                backs.append(_Back(f"{st.name}.bp", "pool", st, (g, st.argmax), f"d{st.x}",
                                   key))
                added[f"d{st.x}"], g = (shapes[st.x], "act"), f"d{st.x}"
            continue
        s = st.slot
        if st.relu:
            backs.append(_Back(f"{st.name}.relu", "relu", st, (g, st.y), f"dz{s}", key))
            added[f"dz{s}"], g = (shapes[st.y], "act"), f"dz{s}"
        if before:
            backs.append(_Back(f"{st.name}.bp", "bp", st, (g, f"w{s}"), f"d{st.x}", key))
            added[f"d{st.x}"] = (shapes[st.x], "act")
        lay = st.shape
        backs.append(_Back(f"{st.name}.update", "update", st, (st.x, g, f"mst{s}"), f"mst{s}",
                           key))
        added[f"mst{s}"] = ((lay.m, lay.c, lay.k, lay.k), "mst")
        g, key = f"d{st.x}", f"grad/{s}"
    return backs, added


def step_symbols(cfg, net, batch, *, base=ALIGN):
    """Return the ``SymbolMap`` of a training step of ``net`` at ``batch``: the forward's
    (``forward_symbols``), then the backward's (module docstring)."""
    symbols = forward_symbols(cfg, net, batch, base=base)
    for name, (shape, layout) in _backs(net, batch)[1].items():
        symbols.add(name, shape, layout)
    return symbols


def _bp_program(cfg, back, symbols, formats, key_step, rounding):
    st, s = back.fwd, back.fwd.slot
    dy, w = back.reads
    frac_acc = _frac(formats, back.grad) + _frac(formats, f"w/{s}")
    at = {"dy": symbols[dy].addr, "w": symbols[w].addr, "dx": symbols[back.dst].addr}
    program = layer_program(cfg, "bp", st.shape, at,
                            shift=frac_acc - _frac(formats, f"grad/{s}"),
                            stochastic=rounding == "stochastic",
                            key=rng_key(tensor_id(s, "input_grad"), key_step))
    return LayerProgram(back.name, st.layers, back.reads, (back.dst,), program, s, f"grad/{s}",
                        frac_acc)


def _update_program(cfg, back, symbols, formats, sgd, key_step, rounding):
    """WU fused with SGD in ``MST``: ``g_shift = frac_grad_out + frac_act_in - frac_master``
    and the keys of ``_SGD_KINDS``, as ``FixedNet.update`` runs it."""
    st, s = back.fwd, back.fwd.slot
    x, dy, mst = back.reads
    try:
        frac_master = int(sgd["frac_master"][s])
    except KeyError:
        raise ConfigError(f"frac_master has no frac for slot {s}: give every conv slot's "
                          f"master frac") from None
    key, key_v, key_w = (rng_key(tensor_id(s, kind), key_step) for kind in _SGD_KINDS)
    at = {"x": symbols[x].addr, "dy": symbols[dy].addr, "mst": symbols[mst].addr}
    program = layer_program(cfg, "update", st.shape, at,
                            shift=_frac(formats, back.grad) + _frac(formats, st.act_in)
                            - frac_master, stochastic=rounding == "stochastic", key=key,
                            key_v=key_v, key_w=key_w, mu_q=sgd["mu_q"], lr_q=sgd["lr_q"],
                            lr_shift=sgd["lr_shift"])
    return LayerProgram(back.name, st.layers, back.reads, (back.dst,), program, s)


def _pool_backward_program(cfg, back, symbols):
    """POOL BACKWARD per tile of images: ``dy`` and the argmax rows into ``ACT``, ``dx`` in
    ``OUT``."""
    (dy, arg), dx = (symbols[name] for name in back.reads), symbols[back.dst]
    n, planes, h, w, row = _planes(symbols, dx)
    full, pooled = planes * h * w, planes * h * w // 4
    tiles = []
    for i, (n0, nb) in enumerate(_image_tiles(cfg, n, "max-pool backward", 2 * pooled, full,
                                              planes)):
        at, size = n0 * pooled * row, nb * pooled * row
        body = {"mode": PoolMode.BACKWARD, "src": _operand(Buffer.ACT, i % 2, 0),
                "idx": _operand(Buffer.ACT, i % 2, nb * pooled),
                "dst": _operand(Buffer.OUT, i % 2, 0), "planes": nb * planes, "h": h, "w": w}
        tiles.append(_UnitTile(
            (_transfer(cfg, Buffer.ACT, i % 2, 0, dy.addr + at, size),
             _transfer(cfg, Buffer.ACT, i % 2, nb * pooled, arg.addr + at, size)),
            Opcode.POOL, body,
            (_transfer(cfg, Buffer.OUT, i % 2, 0, dx.addr + n0 * full * row, nb * full * row,
                       store=True),)))
    return LayerProgram(back.name, back.fwd.layers, back.reads, (back.dst,),
                        _unit_program(tiles))


def _relu_mask_program(cfg, back, symbols):
    """ELTWISE RELU_MASK per tile of images: the gradient and the stored activation into
    ``ACT``, the gradient where the activation is ``> 0`` (else 0) in ``OUT``."""
    (g, act), dz = (symbols[name] for name in back.reads), symbols[back.dst]
    n, planes, h, w, row = _planes(symbols, dz)
    rows = planes * h * w
    tiles = []
    for i, (n0, nb) in enumerate(_image_tiles(cfg, n, "ReLU mask", 2 * rows, rows, rows)):
        at, size = n0 * rows * row, nb * rows * row
        body = {"op": EltwiseOp.RELU_MASK, "a": _operand(Buffer.ACT, i % 2, 0),
                "b": _operand(Buffer.ACT, i % 2, nb * rows),
                "d": _operand(Buffer.OUT, i % 2, 0), "rows": nb * rows}
        tiles.append(_UnitTile(
            (_transfer(cfg, Buffer.ACT, i % 2, 0, g.addr + at, size),
             _transfer(cfg, Buffer.ACT, i % 2, nb * rows, act.addr + at, size)),
            Opcode.ELTWISE, body,
            (_transfer(cfg, Buffer.OUT, i % 2, 0, dz.addr + at, size, store=True),)))
    return LayerProgram(back.name, back.fwd.layers, back.reads, (back.dst,),
                        _unit_program(tiles))


def compile_backward(cfg, net, batch, formats, step, rounding, *, frac_master, mu_q, lr_q,
                     lr_shift, symbols=None):
    """Return the ``CompiledPass`` of ``net``'s backward pass and update on ``batch`` images
    at training ``step``.

    ``formats`` maps the keys of ``compile_forward`` and ``grad/loss``, ``grad/{s}`` to fracs
    (``Formats.as_dict()``); ``frac_master`` maps each conv slot to its master frac; ``mu_q``,
    ``lr_q`` and ``lr_shift`` are the SGD's momentum and ``lr / batch`` (``lr_fixed``);
    ``symbols`` defaults to ``step_symbols(cfg, net, batch)``. Raises ``ConfigError`` as
    ``compile_forward`` does, and for an UPDATE that needs a batch cut in a build without
    the SGD unit (``update_lanes`` 0).
    """
    _check_pass(cfg, batch, step, rounding)
    symbols = step_symbols(cfg, net, batch) if symbols is None else symbols
    sgd = {"frac_master": frac_master, "mu_q": mu_q, "lr_q": lr_q, "lr_shift": lr_shift}
    build = {
        "bp": lambda b: _bp_program(cfg, b, symbols, formats, step, rounding),
        "update": lambda b: _update_program(cfg, b, symbols, formats, sgd, step, rounding),
        "pool": lambda b: _pool_backward_program(cfg, b, symbols),
        "relu": lambda b: _relu_mask_program(cfg, b, symbols)}
    return CompiledPass(symbols, tuple(_named(b.name, build[b.kind], b)
                                       for b in _backs(net, batch)[0]))
