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
             written back through the SGD unit; not yet compared with the RTL).
POOL         ``UNIT_CYCLES`` + one cycle per input row (forward) or output row (backward).
ELTWISE      ``UNIT_CYCLES`` + the busiest port's accesses per row (a, b and d on ACT or OUT).
FINISH       ends the program once every queue is empty.

A queue starts its head once the head's semaphores are non-zero and the previous instruction
of that queue has finished; an instruction's pushes count at its end. The constants were
fitted to ``edgetrain bench accel`` (8x8, Verilator, session 11); ``predict`` returns the
cycles and each queue's busy cycles, which the benchmark compares with the RTL's counters.
"""

import heapq
from dataclasses import dataclass

from edgetrain.hw.accel.isa import INSN_BYTES, QUEUE_DEPTH, Opcode, Queue, semaphores_of
from edgetrain.hw.buffers.kinds import master_rows_per_block
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.engine.descriptor import MODES

__all__ = ["FETCH_CYCLES", "TRANSFER_CYCLES", "COMPUTE_CYCLES", "UNIT_CYCLES", "Prediction",
           "instruction_cycles", "predict"]

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
    """What ``predict`` gives: total ``cycles`` (start to done) and per queue the cycles it
    was running an instruction (``busy``)."""
    cycles: int
    busy: dict


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
        return COMPUTE_CYCLES + blocks * max(pixels, 2 * rows) + 2 * rows
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
    events = []
    landing = _fetch(cfg, program, 0, running, busy, events)   # when it lands
    while True:
        for q, (end, i) in list(running.items()):
            if end <= t:
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
                busy[q.name.lower()] += durations[i]
                heapq.heappush(events, t + durations[i])
                started = True
        if fetched == len(program) and not running and not any(queues.values()):
            return Prediction(cycles=t, busy=busy)
        if started:
            continue                    # a zero-length instruction may end now
        while events and events[0] <= t:
            heapq.heappop(events)
        if not events:
            raise ValueError("the program cannot finish: check it with check_program")
        t = heapq.heappop(events)
