"""The accelerator's instruction set: binary layouts, and their encoding on the host.

An instruction is a 512-bit record (``INSN_BYTES`` = 64 bytes, little-endian) in DRAM; a
program is a run of them. Every instruction starts with the same header (``HEADER``):

``op``     the ``Opcode`` (3 bits; 0 and 7 are not opcodes, so zeroed or stray memory is
           refused instead of run).
``deps``   the dependency flags ``pop_prev``, ``pop_next``, ``push_prev``, ``push_next``.

then the opcode's ``body``. The queues are LOAD -> COMPUTE -> STORE: an instruction's
*previous* queue is the one before its own and its *next* the one after (LOAD has no
previous queue, STORE no next). Four counting semaphores connect them, as in VTA (apache
tvm-vta ``hw_spec.h``): ``l2c`` (LOAD ``push_next`` -> COMPUTE ``pop_prev``), ``c2l``
(COMPUTE ``push_prev`` -> LOAD ``pop_next``), ``c2s`` (COMPUTE ``push_next`` -> STORE
``pop_prev``) and ``s2c`` (STORE ``push_prev`` -> COMPUTE ``pop_next``). An instruction
waits until every semaphore it pops is non-zero, takes one from each, runs to completion,
then adds one to every semaphore it pushes. The hardware obeys the tokens; the program
carries them (``check_program`` finds a program that can never finish).

Bodies (the union ``body`` of ``instruction_layout``):

``LOAD`` / ``STORE`` (``transfer``)
    ``buffer`` (a ``Buffer``) and ``dma``, a ``ReshapeDMA`` descriptor whose buffer rows are
    that buffer's bus-beat rows (``{half, row, slot}``, ``hw/accel/beats.py``).
``COMPUTE`` (``compute``)
    ``halves``: the half of each buffer the engine uses (bit ``b.value`` for ``Buffer b``),
    ``accumulate``: a WU adds its gradients to the ``MST`` rows instead of writing them (a
    WU cut along the batch: every tile but the first of a channel tile), ``release``: the
    data of these buffers' halves (bit ``b.value``) are dead once the COMPUTE ends (an
    eDRAM-style half stops refreshing them), and ``desc``, the engine descriptor of the
    half-depth engine (``engine_config``). An UPDATE whose ``desc`` has ``partial`` (the
    last tile of a batch cut) also reads the *other* ``MST`` half, at its master rows: the
    gradient sums that the WU COMPUTEs before it left there, added before the SGD.
``POOL`` (``pool``), ``ELTWISE`` (``eltwise``)
    the descriptors of the pool and eltwise units (``hw/accel/pool.py``,
    ``hw/accel/eltwise.py``).
``FINISH``
    no body: once every queue is empty and every unit idle, the accelerator raises ``done``.
"""

from dataclasses import dataclass

from amaranth.hdl import Shape
from amaranth.lib import data, enum

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.dma.descriptor import descriptor_layout
from edgetrain.hw.engine.descriptor import DescriptorLayout
from .banks import half_depth
from .beats import beat_depth

__all__ = ["INSN_BITS", "INSN_BYTES", "Opcode", "Queue", "DepsLayout", "HEADER",
           "engine_config", "instruction_layout", "Instruction", "encode",
           "decode", "program_bytes", "program_from_bytes", "QUEUE_DEPTH", "SEMAPHORES",
           "TOWARDS_PREV", "TOWARDS_NEXT", "semaphores_of", "Replay", "replay",
           "check_program"]

INSN_BITS = 512
INSN_BYTES = INSN_BITS // 8

#: Instructions each queue holds between fetch and execution.
QUEUE_DEPTH = 4

#: The counting semaphores: (name, pushing queue, popping queue).
SEMAPHORES = ("l2c", "c2l", "c2s", "s2c")


class Opcode(enum.Enum, shape=3):
    """What an instruction does (0 and 7 are refused as unknown opcodes)."""
    LOAD = 1
    STORE = 2
    COMPUTE = 3
    POOL = 4
    ELTWISE = 5
    FINISH = 6

    @property
    def queue(self):
        """The queue that executes this opcode."""
        return {Opcode.LOAD: Queue.LOAD, Opcode.STORE: Queue.STORE}.get(self, Queue.COMPUTE)


class Queue(enum.Enum, shape=2):
    """The three instruction queues, in dependency order."""
    LOAD = 0
    COMPUTE = 1
    STORE = 2


DepsLayout = data.StructLayout({"pop_prev": 1, "pop_next": 1, "push_prev": 1,
                                "push_next": 1})

HEADER = data.StructLayout({"op": Opcode, "deps": DepsLayout})


def engine_config(cfg):
    """Return the config of the engine inside the accelerator: each buffer is one half."""
    return cfg.replace(**{b.depth_field: half_depth(cfg, b) for b in Buffer if b.depth_field})


def _bodies(cfg):
    from .eltwise import eltwise_layout
    from .pool import pool_layout

    buf_bits = max(1, (max(beat_depth(cfg, b) for b in Buffer) - 1).bit_length())
    transfer = data.StructLayout({
        "buffer": Buffer,
        "dma": descriptor_layout(addr_bits=cfg.axi_addr_bits, buf_addr_bits=buf_bits)})
    compute = data.StructLayout({"halves": len(Buffer), "accumulate": 1,
                                 "release": len(Buffer),
                                 "desc": DescriptorLayout(engine_config(cfg))})
    return {"transfer": transfer, "compute": compute, "pool": pool_layout(cfg),
            "eltwise": eltwise_layout(cfg)}


_BODY_OF = {Opcode.LOAD: "transfer", Opcode.STORE: "transfer", Opcode.COMPUTE: "compute",
            Opcode.POOL: "pool", Opcode.ELTWISE: "eltwise", Opcode.FINISH: None}


def instruction_layout(cfg):
    """Return the ``StructLayout`` of one instruction (at most ``INSN_BITS`` bits)."""
    layout = data.StructLayout({"op": Opcode, "deps": DepsLayout,
                                "body": data.UnionLayout(_bodies(cfg))})
    if layout.size > INSN_BITS:
        raise ConfigError(f"an instruction of this config needs {layout.size} bits, more than "
                          f"{INSN_BITS}: lower axi_addr_bits, the buffer depths or the limits")
    return layout


@dataclass(frozen=True)
class Instruction:
    """One instruction on the host: ``op``, dependency flags and the body's fields.

    ``body`` is the dict of the opcode's body layout (``None`` for FINISH); nested layouts
    (``dma``, ``desc``) are nested dicts; ``Buffer`` fields take ``Buffer`` members.
    """
    op: Opcode
    body: dict = None
    pop_prev: bool = False
    pop_next: bool = False
    push_prev: bool = False
    push_next: bool = False

    @property
    def deps(self):
        return {k: int(getattr(self, k)) for k in ("pop_prev", "pop_next", "push_prev",
                                                   "push_next")}

    def check(self):
        """Raise ``ConfigError`` if a flag names a queue this opcode's queue does not have."""
        q = self.op.queue
        if q is Queue.LOAD and (self.pop_prev or self.push_prev):
            raise ConfigError(f"{self.op.name} has no previous queue: pop_prev/push_prev "
                              f"must be 0")
        if q is Queue.STORE and (self.pop_next or self.push_next):
            raise ConfigError(f"{self.op.name} has no next queue: pop_next/push_next must be 0")
        if (self.body is None) != (_BODY_OF[self.op] is None):
            raise ConfigError(f"{self.op.name} " + ("takes no body" if self.body is not None
                                                     else "needs a body"))


def encode(cfg, insn, layout=None):
    """Return ``insn`` as the integer of its ``INSN_BITS``-bit record.

    Raises ``ConfigError`` naming the field when a value does not fit it (``Layout.const``
    alone would cut it to the field's width).
    """
    insn.check()
    layout = layout or instruction_layout(cfg)
    fields = {"op": insn.op, "deps": insn.deps}
    if insn.body is not None:
        fields["body"] = {_BODY_OF[insn.op]: insn.body}
    _check_fits(layout, fields, insn.op.name)
    try:
        return layout.const(fields).as_value().value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{insn.op.name} instruction does not encode: {e}") from None


def _check_fits(layout, values, where):
    """Raise ``ConfigError`` unless every integer in ``values`` fits its field of ``layout``."""
    for name, field in layout:
        if name not in values:
            continue
        value = values[name]
        if isinstance(field.shape, data.Layout):
            if isinstance(value, dict):
                _check_fits(field.shape, value, f"{where} {name}")
            continue
        if type(value) is not int:          # enum members, bools: the layout checks them
            continue
        shape = Shape.cast(field.shape)
        # a signed field takes its values or their two's-complement bit patterns
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        if not lo <= value < 1 << shape.width:
            raise ConfigError(f"{where} {name} = {value} does not fit its "
                              f"{'signed ' if shape.signed else ''}{shape.width}-bit field: "
                              f"the value is wrong, or the config's limits are too small "
                              f"for it")


def decode(cfg, value, layout=None):
    """Return the ``Instruction`` encoded in ``value``; ``ConfigError`` for a bad opcode."""
    layout = layout or instruction_layout(cfg)
    view = layout.from_bits(value & ((1 << layout.size) - 1))
    op_bits = value & 0b111
    if op_bits not in {op.value for op in Opcode}:
        raise ConfigError(f"opcode {op_bits} is not an instruction")
    op = Opcode(op_bits)
    deps = {k: bool(getattr(view.deps, k)) for k in ("pop_prev", "pop_next", "push_prev",
                                                    "push_next")}
    name = _BODY_OF[op]
    body = None if name is None else _as_dict(getattr(view.body, name))
    return Instruction(op=op, body=body, **deps)


def _as_dict(view):
    """A nested dict of ints (and enum members) from a const ``data.View``."""
    if not isinstance(view, data.Const):
        return view
    out = {}
    for name, _field in view.shape():
        member = getattr(view, name)
        out[name] = _as_dict(member)
    return out


def program_bytes(cfg, program):
    """Return the DRAM image of ``program`` (a list of ``Instruction``)."""
    layout = instruction_layout(cfg)
    return b"".join(encode(cfg, insn, layout).to_bytes(INSN_BYTES, "little")
                    for insn in program)


def program_from_bytes(cfg, image):
    """Return the list of ``Instruction`` in a DRAM image made by ``program_bytes``."""
    if len(image) % INSN_BYTES:
        raise ConfigError(f"a program image is a multiple of {INSN_BYTES} bytes, not "
                          f"{len(image)}")
    layout = instruction_layout(cfg)
    return [decode(cfg, int.from_bytes(image[i:i + INSN_BYTES], "little"), layout)
            for i in range(0, len(image), INSN_BYTES)]


# Per queue: (semaphore popped, semaphore pushed) towards the previous and the next queue.
TOWARDS_PREV = {Queue.COMPUTE: ("l2c", "c2l"), Queue.STORE: ("c2s", "s2c")}
TOWARDS_NEXT = {Queue.LOAD: ("c2l", "l2c"), Queue.COMPUTE: ("s2c", "c2s")}


def semaphores_of(insn):
    """Return ``(pops, pushes)``: the semaphore names ``insn`` takes and gives."""
    insn.check()
    q = insn.op.queue
    prev, nxt = TOWARDS_PREV.get(q), TOWARDS_NEXT.get(q)
    pops = [pair[0] for flag, pair in ((insn.pop_prev, prev), (insn.pop_next, nxt)) if flag]
    pushes = [pair[1] for flag, pair in ((insn.push_prev, prev), (insn.push_next, nxt))
              if flag]
    return pops, pushes


def check_program(program, *, queue_depth=QUEUE_DEPTH):
    """Raise ``ConfigError`` unless ``program`` runs to its end on the hardware.

    Replays what the sequencer does (``replay``). The program must end with its only FINISH
    and leave every semaphore at zero (left-over tokens are a compiler bug).
    """
    finishes = [i for i, insn in enumerate(program) if insn.op is Opcode.FINISH]
    if finishes != [len(program) - 1]:
        raise ConfigError(f"a program ends with its only FINISH (FINISH at {finishes}, "
                          f"{len(program)} instructions)")
    for i, insn in enumerate(program):
        try:
            insn.check()
        except ConfigError as e:
            raise ConfigError(f"instruction {i}: {e}") from None
    ran = replay(program, queue_depth=queue_depth)
    _report_stuck(program, ran.queues, ran.sems, ran.fetched)


@dataclass
class Replay:
    """What ``replay`` leaves: the instructions in the order they ran (``order``), what each
    queue still holds, the semaphores and how many instructions were fetched."""
    order: list
    queues: dict
    sems: dict
    fetched: int


def replay(program, *, queue_depth=QUEUE_DEPTH):
    """Run the sequencer's rules on ``program`` without time: instructions enter their queue
    in program order (the fetch waits while that queue holds ``queue_depth``), each queue
    runs its head once the semaphores it pops are non-zero. Return the ``Replay``; where it
    stopped is a deadlock when a queue still holds an instruction."""
    queues = {q: [] for q in Queue}
    sems = dict.fromkeys(SEMAPHORES, 0)
    order, fetched, progress = [], 0, True
    while progress:
        progress = False
        if fetched < len(program):
            q = program[fetched].op.queue
            if len(queues[q]) < queue_depth:
                queues[q].append(fetched)
                fetched, progress = fetched + 1, True
        for q in Queue:
            if queues[q]:
                pops, pushes = semaphores_of(program[queues[q][0]])
                if all(sems[s] for s in pops):
                    for s in pops:
                        sems[s] -= 1
                    for s in pushes:
                        sems[s] += 1
                    order.append(queues[q].pop(0))
                    progress = True
    return Replay(order=order, queues=queues, sems=sems, fetched=fetched)


def _report_stuck(program, queues, sems, fetched):
    waiting = [(queues[q][0], q) for q in Queue if queues[q]]
    if waiting:
        i, q = min(waiting)
        pops, _ = semaphores_of(program[i])
        missing = [s for s in pops if not sems[s]]
        raise ConfigError(f"deadlock: instruction {i} ({program[i].op.name}, {q.name} queue) "
                          f"waits for a {'/'.join(missing)} token that no instruction gives"
                          + (f"; fetch stopped at instruction {fetched}"
                             if fetched < len(program) else ""))
    left = {s: n for s, n in sems.items() if n}
    if left:
        raise ConfigError(f"tokens left when the program ends: "
                          + ", ".join(f"{s}={n}" for s, n in left.items())
                          + ": every push needs a matching pop")
