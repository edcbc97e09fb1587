"""The planner's cycle model: how long a program runs on the accelerator, without a simulator.

EF-Train's analytical model, made exact enough to compare with the RTL: instead of a formula
per layer, the program itself is replayed through the sequencer's rules (``isa.check_program``
replays them without time) with a duration for every instruction:

``fetch``    ``FETCH_CYCLES`` per instruction (one 64-byte burst each, one at a time), into
             queues of ``QUEUE_DEPTH``; the fetch waits while the next one's queue is full.
             It shares the read channel with LOAD: a fetch issued while a LOAD runs gets its
             data after the LOAD's bursts already in flight (``max_outstanding_reads`` of
             them, or what is left of the LOAD), and the LOAD gives up the fetch's beats.
LOAD/STORE   ``TRANSFER_CYCLES`` + one cycle per buffer step (a DRAM beat, or a padding row
             written without one).
COMPUTE      ``COMPUTE_CYCLES`` + the engine's taps: ``out_tiles * red_tiles * batch * out_h *
             out_w * K^2`` (one T x T MAC step each). WU: a block's gradient rows go into MST
             one per cycle while the next block computes, so a block takes the longer of its
             pixels and its ``master_rows_per_block`` rows, and the last block's rows follow.
             UPDATE the same with ``2 * master_rows_per_block`` per block (each row read and
             written back through the SGD unit; not yet compared with the RTL), and with
             ``partial`` (a batch cut's last tile) ``3 R + 2``: the other half's partial
             rows are read and added first (``hw/engine/updater.py``).
POOL         ``UNIT_CYCLES`` + one cycle per input row (forward) or output row (backward).
ELTWISE      ``UNIT_CYCLES`` + the busiest port's accesses per row (a, b and d on ACT or OUT).
FINISH       ends the program once every queue is empty.

A queue starts its head once the head's semaphores are non-zero and the previous instruction
of that queue has finished; an instruction's pushes count at its end. The constants were
fitted to ``edgetrain bench accel`` (8x8, Verilator, session 11); ``predict`` returns the
cycles and each queue's busy cycles, which the benchmark compares with the RTL's counters,
and each instruction's start and end.

``plan_step(cfg, net, batch)`` plans a training step (issue 16's planner, ``edgetrain
plan``): the compiler's programs of the step, each as a ``LayerPlan`` from the same replay:
cycles, MACs and utilization, DRAM bytes from the DMA descriptors, the lifetime of the data
each buffer half holds (from the start of its first write to the end of its last use) and
the refreshes each refresh policy would issue over them (``_refreshes``).
"""

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from edgetrain.errors import ConfigError
from edgetrain.firmware.compiler import compile_backward, compile_forward, step_symbols
from edgetrain.hw.accel.banks import HALVES, half_depth
from edgetrain.hw.accel.beats import beat_addr_bits, beat_ratio
from edgetrain.hw.accel.eltwise import EltwiseOp
from edgetrain.hw.accel.isa import INSN_BYTES, QUEUE_DEPTH, Opcode, Queue, semaphores_of
from edgetrain.hw.accel.pool import PoolMode
from edgetrain.hw.buffers.edram import (
    REFRESH_POLICIES, check_refresh_budget, live_threshold, periodic_interval)
from edgetrain.hw.buffers.kinds import REFRESHED, Buffer, master_rows_per_block
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.engine.descriptor import MODES

__all__ = ["FETCH_CYCLES", "TRANSFER_CYCLES", "COMPUTE_CYCLES", "UNIT_CYCLES", "Prediction",
           "instruction_cycles", "predict", "PLAN_FRAC", "PLAN_SGD", "LayerPlan", "StepPlan",
           "plan_program", "plan_step"]

#: Cycles per fetched instruction (a 64-byte burst through the arbiter).
FETCH_CYCLES = 14
#: Cycles a LOAD or STORE takes beyond one per buffer step (descriptor check, AXI latency).
TRANSFER_CYCLES = 10
#: Cycles a COMPUTE takes beyond its taps (descriptor check overlap, pipeline fill, drain).
COMPUTE_CYCLES = 26
#: Cycles a POOL or ELTWISE takes beyond its row accesses (the descriptor check, the ports).
UNIT_CYCLES = 8


@dataclass
class Prediction:
    """What ``predict`` gives: total ``cycles`` (start to done), per queue the cycles it
    was running an instruction (``busy``), and per instruction the ``(start, end)`` cycles
    of its run (``spans``, in program order; a LOAD's end includes the fetch beats it gave
    up)."""
    cycles: int
    busy: dict
    spans: list = field(default_factory=list, repr=False)


def _transfer(body):
    d = Descriptor(**body["dma"])
    return TRANSFER_CYCLES + max(d.dram_beats, d.n0 * d.n1 * d.n2)


def _compute(cfg, body):
    f = body["desc"]
    mode = MODES[f["mode"]]
    blocks = f["out_tiles"] * f["red_tiles"] * f["kernel"] ** 2
    pixels = f["batch"] * f["out_h"] * f["out_w"]
    rows = master_rows_per_block(cfg)
    if mode == "wu":
        return COMPUTE_CYCLES + blocks * max(pixels, rows) + rows
    if mode == "update":     # each block's rows are read and written back: 2 R port cycles
        port = 3 * rows + 2 if f["partial"] else 2 * rows   # partial rows read and added first
        return COMPUTE_CYCLES + blocks * max(pixels, port) + port
    return COMPUTE_CYCLES + blocks * pixels


def _pool(body):
    rows = body["planes"] * body["h"] * body["w"]
    return UNIT_CYCLES + rows


def _eltwise(body):
    ports = {}
    for name in ("a", "b", "d"):
        buf = body[name]["buffer"]
        ports[buf] = ports.get(buf, 0) + 1
    return UNIT_CYCLES + body["rows"] * max(ports.values())


def instruction_cycles(cfg, insn):
    """Return the cycles ``insn`` keeps its unit busy (see the module docstring)."""
    if insn.op in (Opcode.LOAD, Opcode.STORE):
        return _transfer(insn.body)
    if insn.op is Opcode.COMPUTE:
        return _compute(cfg, insn.body)
    if insn.op is Opcode.POOL:
        return _pool(insn.body)
    if insn.op is Opcode.ELTWISE:
        return _eltwise(insn.body)
    return 0


def _in_flight(cfg, insn):
    """Read beats of LOAD ``insn`` a fetch issued during it waits behind."""
    d = Descriptor(**insn.body["dma"])
    return cfg.max_outstanding_reads * min(d.seg_beats, cfg.max_burst_beats)


def _fetch(cfg, program, t, running, busy, events):
    """Fetch an instruction from cycle ``t``; return the cycle it lands (behind a running
    LOAD's bursts in flight, which then gives up the fetch's beats)."""
    landing = t + FETCH_CYCLES
    if Queue.LOAD in running:
        end, i = running[Queue.LOAD]
        beats = INSN_BYTES // (cfg.axi_data_bits // 8)
        landing += min(end - t, _in_flight(cfg, program[i]))
        running[Queue.LOAD] = (end + beats, i)
        busy["load"] += beats
        heapq.heappush(events, end + beats)
    heapq.heappush(events, landing)
    return landing


def predict(cfg, program):
    """Return the ``Prediction`` of ``program`` (a list of ``Instruction`` that passes
    ``check_program``) on the accelerator of ``cfg``."""
    durations = [instruction_cycles(cfg, insn) for insn in program]
    queues = {q: [] for q in Queue}
    running = {}                        # queue -> (end cycle, index)
    sems = {"l2c": 0, "c2l": 0, "c2s": 0, "s2c": 0}
    busy = dict.fromkeys((q.name.lower() for q in Queue), 0)
    fetched, t = 0, 0
    events, spans = [], [None] * len(program)
    landing = _fetch(cfg, program, 0, running, busy, events)   # when it lands
    while True:
        for q, (end, i) in list(running.items()):
            if end <= t:
                spans[i] = (spans[i][0], end)
                for s in semaphores_of(program[i])[1]:
                    sems[s] += 1
                del running[q]
        if fetched < len(program) and landing <= t:
            q = program[fetched].op.queue
            if len(queues[q]) < QUEUE_DEPTH:
                queues[q].append(fetched)
                fetched += 1
                if fetched < len(program):
                    landing = _fetch(cfg, program, t, running, busy, events)
        started = False
        for q in Queue:
            if q in running or not queues[q]:
                continue
            i = queues[q][0]
            pops = semaphores_of(program[i])[0]
            if all(sems[s] for s in pops):
                for s in pops:
                    sems[s] -= 1
                queues[q].pop(0)
                running[q] = (t + durations[i], i)
                spans[i] = (t, t + durations[i])
                busy[q.name.lower()] += durations[i]
                heapq.heappush(events, t + durations[i])
                started = True
        if fetched == len(program) and not running and not any(queues.values()):
            return Prediction(cycles=t, busy=busy, spans=spans)
        if started:
            continue                    # a zero-length instruction may end now
        while events and events[0] <= t:
            heapq.heappop(events)
        if not events:
            raise ValueError("the program cannot finish: check it with check_program")
        t = heapq.heappop(events)


# The plan of a training step ---------------------------------------------------------------

#: The frac of every format when planning, and the SGD constants (momentum 0.9, lr / batch
#: as ``lr_q / 2**lr_shift``): a program's instructions, so its cycles, do not depend on them.
PLAN_FRAC = 8
PLAN_SGD = {"mu_q": 58982, "lr_q": 1 << 15, "lr_shift": 20}


@dataclass(frozen=True)
class LayerPlan:
    """The plan of one compiled program (``name``, e.g. ``conv3.bp``): the net ``layer`` and
    the ``phase`` it runs (``fp``, ``bp``, ``wu``, ``update``, ``pool``, ``pool-bp``,
    ``relu-mask``, ...), its predicted ``cycles`` and each queue's ``busy`` cycles, the
    ``macs`` of its COMPUTEs (real channels only; taps over padding included) and their
    ``utilization`` of the ``tm x tn`` array, the DRAM bytes its LOADs read and its STOREs
    write, its ``tiles`` (COMPUTE, POOL and ELTWISE instructions) and ``instructions``, the
    ``lifetimes`` of its buffered data per buffer (``halves`` held, ``max`` and ``mean``
    cycles from a half's first write to its last use), ``refreshes`` per refresh policy of
    ``ACT``, ``WGT`` and ``OUT`` (each under that policy) and ``expiring_rows``: the rows
    held at least ``retention_cycles``, which ``none`` and ``lifetime`` lose."""
    name: str
    layer: str
    phase: str
    cycles: int
    busy: dict
    macs: int
    utilization: float
    dram_read: int
    dram_written: int
    tiles: int
    instructions: int
    lifetimes: dict
    refreshes: dict
    expiring_rows: int

    @property
    def dram_bytes(self):
        return self.dram_read + self.dram_written

    def as_dict(self):
        return {"layer": self.layer, "phase": self.phase, "program": self.name,
                "cycles": self.cycles, "busy": self.busy, "macs": self.macs,
                "utilization": self.utilization, "dram_bytes": self.dram_bytes,
                "dram_read": self.dram_read, "dram_written": self.dram_written,
                "tiles": self.tiles, "instructions": self.instructions,
                "lifetimes": self.lifetimes, "refreshes": self.refreshes,
                "expiring_rows": self.expiring_rows}


@dataclass(frozen=True)
class StepPlan:
    """The plan of a training step of ``net`` at ``batch``: one ``LayerPlan`` per program,
    in the order they run (one after another, so the step takes the sum of their cycles)."""
    net: str
    batch: int
    layers: tuple

    @property
    def step_cycles(self):
        return sum(p.cycles for p in self.layers)

    def totals(self):
        """The step's cycles, MACs, DRAM bytes, refreshes per policy and expiring rows."""
        return {"step_cycles": self.step_cycles, "macs": sum(p.macs for p in self.layers),
                "dram_bytes": sum(p.dram_bytes for p in self.layers),
                "refreshes": {k: sum(p.refreshes[k] for p in self.layers)
                              for k in REFRESH_POLICIES},
                "expiring_rows": sum(p.expiring_rows for p in self.layers)}

    def as_dict(self):
        """Return the plan as ``edgetrain plan --json`` writes it."""
        return {"net": self.net, "batch": self.batch,
                "layers": [p.as_dict() for p in self.layers], **self.totals()}


def _phase(units):
    """The phase of a program from its COMPUTE, POOL and ELTWISE instructions ``units``: the
    engine mode, ``pool`` / ``pool-bp`` or the eltwise op, joined by ``+`` when there are
    several (a WU cut along the batch before its UPDATE: ``wu+update``)."""
    phases = []
    for insn in units:
        if insn.op is Opcode.COMPUTE:
            phase = MODES[insn.body["desc"]["mode"]]
        elif insn.op is Opcode.POOL:
            phase = "pool" if PoolMode(insn.body["mode"]) is PoolMode.FORWARD else "pool-bp"
        else:
            phase = EltwiseOp(insn.body["op"]).name.lower().replace("_", "-")
        if phase not in phases:
            phases.append(phase)
    return "+".join(phases)


def _macs(insn):
    """The MACs a COMPUTE makes on real channels, one per output and input channel, pixel
    and tap (taps over padding included), as the engine's counter counts them
    (``sim/reference/engine.py`` ``useful_macs``; a stride-2 BP, which skips its dilation
    zeros there, would count them here)."""
    f = insn.body["desc"]
    return f["batch"] * f["out_ch"] * f["red_ch"] * f["out_h"] * f["out_w"] * f["kernel"] ** 2


#: The buffers a COMPUTE reads and writes in each engine mode (WU reads ``MST`` only when it
#: adds into it).
_ENGINE_USE = {"fp": ((Buffer.ACT, Buffer.WGT), (Buffer.OUT,)),
               "bp": ((Buffer.ACT, Buffer.WGT), (Buffer.OUT,)),
               "wu": ((Buffer.ACT, Buffer.OUT), (Buffer.MST,)),
               "update": ((Buffer.ACT, Buffer.OUT, Buffer.MST), (Buffer.MST,))}


def _transfer_half(cfg, body):
    """``(buffer, half, bank rows)`` of a LOAD / STORE body."""
    buffer, d = Buffer(body["buffer"]), Descriptor(**body["dma"])
    half = d.buf_addr >> (beat_addr_bits(cfg, buffer) - 1)
    return buffer, half, -(-d.n0 * d.n1 * d.n2 // beat_ratio(cfg, buffer))


def _uses(cfg, insn):
    """``(reads, writes, releases)`` of ``insn``: the ``(buffer, half)`` s it reads and
    writes, and those whose data die when it ends (a COMPUTE's release bits)."""
    body = insn.body
    if insn.op in (Opcode.LOAD, Opcode.STORE):
        held = [_transfer_half(cfg, body)[:2]]
        return ([], held, []) if insn.op is Opcode.LOAD else (held, [], [])
    if insn.op is Opcode.COMPUTE:
        def half(b):
            return b, body["halves"] >> b.value & 1
        reads, writes = _ENGINE_USE[MODES[body["desc"]["mode"]]]
        reads = reads + ((Buffer.MST,) if body["accumulate"] else ())
        return ([half(b) for b in reads], [half(b) for b in writes],
                [half(b) for b in Buffer if body["release"] >> b.value & 1])
    if insn.op is Opcode.POOL:
        backward = PoolMode(body["mode"]) is PoolMode.BACKWARD
        names = (("src", "idx"), ("dst",)) if backward else (("src",), ("dst", "idx"))
    elif insn.op is Opcode.ELTWISE:
        names = (("a", "b"), ("d",))
    else:
        return [], [], []
    reads, writes = ({(Buffer(body[n]["buffer"]), body[n]["half"]) for n in group}
                     for group in names)
    return list(reads), list(writes), []


@dataclass
class _Held:
    """The data of one buffer half from its first write (``start``): the end of its last
    use (``used``), whether anything has read it, the rows loaded into it and stored from
    it, and the end of its last STORE (a STORE's reads release the rows they read)."""
    start: int
    used: int
    read: bool = False
    loaded: int = 0
    stored: int = 0
    stored_end: int | None = None


class _Holdings:
    """What each buffer half holds over a program's replay: ``done`` lists ``(buffer, life,
    live, rows)`` per held half, ``life`` from its first write to its last use and ``live``
    to its release (a COMPUTE's release bit, its STORE, or the next write or the program's
    end: what the ``live`` policy keeps refreshing)."""

    def __init__(self, cfg, program, prediction):
        self.open, self.done = {}, []
        for insn, (start, end) in zip(program, prediction.spans):
            self._run(cfg, insn, start, end)
        for key in list(self.open):
            self._close(key, prediction.cycles)

    def _close(self, key, at):
        held = self.open.pop(key, None)
        if held is not None:
            live = at if held.stored_end is None else held.stored_end
            self.done.append((key[0], held.used - held.start, live - held.start,
                              max(held.loaded, held.stored)))

    def _run(self, cfg, insn, start, end):
        reads, writes, releases = _uses(cfg, insn)
        rows = (_transfer_half(cfg, insn.body)[2]
                if insn.op in (Opcode.LOAD, Opcode.STORE) else 0)
        for key in reads:
            if key not in self.open:             # nothing this program put there
                continue
            held = self.open[key]
            held.used, held.read = max(held.used, end), True
            if insn.op is Opcode.STORE:
                held.stored, held.stored_end = held.stored + rows, end
        for key in writes:
            if key not in reads and key in self.open and self.open[key].read:
                self._close(key, start)          # overwritten: the data before are dead
            held = self.open.setdefault(key, _Held(start, end))
            held.used, held.loaded = max(held.used, end), held.loaded + rows
        for key in releases:
            self._close(key, end)


def _lifetimes(done):
    """Per buffer that held data: the halves held and their lifetimes' max and mean."""
    out = {}
    for buffer in Buffer:
        lives = [life for b, life, _, _ in done if b is buffer]
        if lives:
            out[buffer.port_name] = {"halves": len(lives), "max": max(lives),
                                     "mean": round(sum(lives) / len(lives), 1)}
    return out


def _refreshes(cfg, done, cycles):
    """``({policy: refreshes of ACT, WGT and OUT under it}, expiring rows)``.

    ``periodic`` refreshes each bank of both halves every ``periodic_interval`` cycles from
    cycle 0; ``live`` a held row once per ``live_threshold + 1`` cycles of its live span
    (each row of a half taken to live the half's whole span, refreshed in idle bank cycles);
    ``none`` and ``lifetime`` never. Both are ``None`` when a bank of some buffer cannot be
    refreshed in the retention time (``check_refresh_budget``): the config refuses them."""
    banks, retention = cfg.edram_banks, cfg.retention_cycles
    counts = dict.fromkeys(REFRESH_POLICIES, 0)
    bank_rows = {b: max(1, half_depth(cfg, b) // banks) for b in REFRESHED}
    try:
        for rows in bank_rows.values():
            check_refresh_budget(rows=rows, retention_cycles=retention)
    except ConfigError:
        counts["periodic"] = counts["live"] = None
    else:
        counts["periodic"] = sum(HALVES * banks * -(-cycles // periodic_interval(rows, retention))
                                 for rows in bank_rows.values())
        counts["live"] = sum(n * (live // (live_threshold(bank_rows[b], retention) + 1))
                             for b, _, live, n in done if b in REFRESHED)
    expiring = sum(n for b, life, _, n in done if b in REFRESHED and life >= retention)
    return counts, expiring


def plan_program(cfg, layer_program):
    """Return the ``LayerPlan`` of ``layer_program`` (a compiler ``LayerProgram``)."""
    program, name = layer_program.program, layer_program.name
    pred = predict(cfg, program)
    bus = cfg.axi_data_bits // 8
    moved = {op: sum(Descriptor(**i.body["dma"]).dram_beats * bus for i in program
                     if i.op is op) for op in (Opcode.LOAD, Opcode.STORE)}
    units = [i for i in program if i.op in (Opcode.COMPUTE, Opcode.POOL, Opcode.ELTWISE)]
    macs = sum(_macs(i) for i in units if i.op is Opcode.COMPUTE)
    done = _Holdings(cfg, program, pred).done
    refreshes, expiring = _refreshes(cfg, done, pred.cycles)
    return LayerPlan(name, name.split(".")[0], _phase(units), pred.cycles, pred.busy, macs,
                     macs / (pred.cycles * cfg.tm * cfg.tn), moved[Opcode.LOAD],
                     moved[Opcode.STORE], len(units), len(program), _lifetimes(done),
                     refreshes, expiring)


def plan_step(cfg, net, batch, *, rounding="stochastic"):
    """Return the ``StepPlan`` of a training step of ``net`` (a ``Net``) at ``batch`` on the
    accelerator of ``cfg``: the compiler's forward, backward and update programs, each
    planned by ``plan_program``. Formats and SGD constants are ``PLAN_FRAC`` and
    ``PLAN_SGD`` (the cycles do not depend on them). Raises ``ConfigError`` for what the
    compiler refuses."""
    formats = defaultdict(lambda: PLAN_FRAC)
    symbols = step_symbols(cfg, net, batch) if isinstance(batch, int) and batch > 0 else None
    fwd = compile_forward(cfg, net, batch, formats, 0, rounding, symbols=symbols)
    bwd = compile_backward(cfg, net, batch, formats, 0, rounding, symbols=symbols,
                           frac_master=defaultdict(lambda: 2 * PLAN_FRAC), **PLAN_SGD)
    return StepPlan(net.name, batch,
                    tuple(plan_program(cfg, p) for p in fwd.programs + bwd.programs))
