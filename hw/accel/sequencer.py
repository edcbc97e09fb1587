"""The sequencer: fetch a program, queue its instructions, run them in token order.

``Sequencer`` owns the instruction fetch (``InstructionFetch``) and three queues (LOAD,
COMPUTE, STORE; ``QUEUE_DEPTH`` instructions each). Each queue's executor takes its head
once the semaphores it pops are non-zero (``hw/accel/isa.py`` says which), hands the body to
its unit, waits for the unit to finish, then pushes its semaphores. The units are reached
through ``UnitSignature`` ports: ``load`` and ``store`` (transfer bodies), ``engine``
(compute bodies), ``pool`` and ``eltwise``.

Control: ``start`` (a pulse while not busy) clears ``status``, the semaphores and the
counters and fetches ``count`` instructions at ``addr``. ``status.done`` rises when FINISH
has run and every queue is empty and every unit idle. An error stops the program:
``status.error`` takes the first ``ErrorCode``, the fetch stops, the queues are emptied and
the sequencer waits for running units to finish, then drops ``busy``; the next ``start``
runs normally. ``clear_units`` pulses with ``start`` (the units' sticky errors).
"""

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.common.axi import AXI4Signature
from .fetch import COUNT_BITS, InstructionFetch
from .isa import (
    QUEUE_DEPTH, SEMAPHORES, TOWARDS_NEXT, TOWARDS_PREV, Opcode, Queue, instruction_layout)

__all__ = ["ErrorCode", "StatusLayout", "UnitSignature", "Sequencer", "queue_counter_layout"]

SEMAPHORE_BITS = 16


class ErrorCode(enum.Enum, shape=4):
    """Why a program stopped (``status.error``); NONE while it runs or after FINISH."""
    NONE = 0
    OPCODE = 1          # an instruction's opcode is not one of ``Opcode``
    DEPS = 2            # a flag names a queue the instruction's queue does not have
    DEADLOCK = 3        # every queue waits for a token no running instruction will give
    NO_FINISH = 4       # every instruction ran and none was FINISH
    FETCH = 5           # the instruction fetch got an AXI error response
    LOAD = 6            # the load DMA refused its descriptor or got an AXI error
    STORE = 7           # the store DMA refused its descriptor or got an AXI error
    ENGINE = 8          # the conv engine refused its descriptor
    POOL = 9            # the pool unit refused its descriptor
    ELTWISE = 10        # the eltwise unit refused its descriptor
    ALIGN = 11          # the program address is not a multiple of 64 bytes


StatusLayout = data.StructLayout({"busy": 1, "done": 1, "error": ErrorCode})


def queue_counter_layout():
    """Per queue: cycles a unit ran an instruction of it, cycles its head waited for tokens."""
    return data.StructLayout({q.name.lower(): data.StructLayout({"busy": 32, "wait": 32})
                              for q in Queue})


class UnitSignature(wiring.Signature):
    """A unit seen from the sequencer: a descriptor stream out, ``busy`` and ``error`` in.

    The unit's contract: ``busy`` is high from the cycle after it accepts a descriptor until
    it is done with it; ``error`` (sticky until the unit's clear) is valid when ``busy``
    falls and says the descriptor was refused or failed.
    """

    def __init__(self, layout):
        super().__init__({"desc": Out(stream.Signature(layout)), "busy": In(1),
                          "error": In(1)})


# Which unit port runs an opcode, the body field it takes, and its error code.
_UNITS = {Opcode.LOAD: ("load", "transfer", ErrorCode.LOAD),
          Opcode.STORE: ("store", "transfer", ErrorCode.STORE),
          Opcode.COMPUTE: ("engine", "compute", ErrorCode.ENGINE),
          Opcode.POOL: ("pool", "pool", ErrorCode.POOL),
          Opcode.ELTWISE: ("eltwise", "eltwise", ErrorCode.ELTWISE)}



class Sequencer(wiring.Component):
    """Run programs of ``hw/accel/isa.py`` instructions (see the module docstring)."""

    def __init__(self, *, config):
        self._cfg = config
        self._layout = instruction_layout(config)
        body = self._layout["body"].shape
        units = {name: Out(UnitSignature(body[field].shape))
                 for name, field, _ in _UNITS.values()}
        super().__init__({
            "start": In(1), "addr": In(config.axi_addr_bits), "count": In(COUNT_BITS),
            "status": Out(StatusLayout), "clear_units": Out(1),
            "counters": Out(queue_counter_layout()),
            "m_axi": Out(AXI4Signature(addr_bits=config.axi_addr_bits,
                                       data_bits=config.axi_data_bits)),
            **units,
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.fetch = fetch = InstructionFetch(addr_bits=cfg.axi_addr_bits,
                                                      data_bits=cfg.axi_data_bits)
        wiring.connect(m, wiring.flipped(self.m_axi), fetch.m_axi)
        flush = Signal()
        queues = {q: ResetInserter(flush)(fifo.SyncFIFO(width=self._layout.size,
                                                        depth=QUEUE_DEPTH))
                  for q in Queue}
        for q, f in queues.items():
            m.submodules[f"queue_{q.name.lower()}"] = f
        run = _Control(m, self, fetch, flush)
        sems = {name: Signal(SEMAPHORE_BITS, name=f"sem_{name}") for name in SEMAPHORES}
        incs = {name: Signal(name=f"inc_{name}") for name in SEMAPHORES}
        decs = {name: Signal(name=f"dec_{name}") for name in SEMAPHORES}
        self._route(m, fetch, queues, run)
        executors = {q: self._executor(m, q, queues[q], sems, incs, decs, run) for q in Queue}
        for name, sem in sems.items():
            with m.If(self.start & ~self.status.busy):
                m.d.sync += sem.eq(0)
            with m.Else():
                m.d.sync += sem.eq(sem + incs[name] - decs[name])
        run.finish(m, queues, executors)
        return m

    def _route(self, m, fetch, queues, run):
        """Put each fetched instruction into its queue; refuse bad opcodes and flags."""
        insn = self._layout(fetch.insn.payload[:self._layout.size])
        op, deps = insn.op.as_value(), insn.deps
        known = Signal()
        m.d.comb += known.eq((op >= Opcode.LOAD.value) & (op <= Opcode.FINISH.value))
        to = {Queue.LOAD: op == Opcode.LOAD.value, Queue.STORE: op == Opcode.STORE.value}
        to[Queue.COMPUTE] = known & ~to[Queue.LOAD] & ~to[Queue.STORE]
        bad_deps = ((to[Queue.LOAD] & (deps.pop_prev | deps.push_prev)) |
                    (to[Queue.STORE] & (deps.pop_next | deps.push_next)))
        room = Signal()
        for q, f in queues.items():
            m.d.comb += f.w_data.eq(fetch.insn.payload[:self._layout.size])
            with m.If(to[q]):
                m.d.comb += room.eq(f.w_rdy)
        ok = known & ~bad_deps & ~run.stopping
        m.d.comb += fetch.insn.ready.eq(run.stopping | (ok & room))
        for q, f in queues.items():
            m.d.comb += f.w_en.eq(fetch.insn.valid & ok & to[q])
        with m.If(fetch.insn.valid & ~run.stopping):
            with m.If(~known):
                run.fail(m, ErrorCode.OPCODE)
            with m.Elif(bad_deps):
                run.fail(m, ErrorCode.DEPS)
        m.d.comb += run.route_blocked.eq(fetch.insn.valid & ok & ~room)

    def _executor(self, m, q, queue, sems, incs, decs, run):
        """Build queue ``q``'s executor; return its ``_Executor`` record."""
        insn = self._layout(queue.r_data)
        prev, nxt = TOWARDS_PREV.get(q), TOWARDS_NEXT.get(q)
        need = [(insn.deps.pop_prev, prev[0]) if prev else None,
                (insn.deps.pop_next, nxt[0]) if nxt else None]
        tokens_ok = Signal(name=f"{q.name.lower()}_tokens_ok")
        m.d.comb += tokens_ok.eq(1)
        for flag, sem in filter(None, need):
            with m.If(flag & (sems[sem] == 0)):
                m.d.comb += tokens_ok.eq(0)
        ex = _Executor(q, Signal(name=f"{q.name.lower()}_head"),
                       Signal(name=f"{q.name.lower()}_waiting"),
                       Signal(name=f"{q.name.lower()}_finish"))
        units = [(op, *_UNITS[op]) for op in Opcode if op.queue is q and op in _UNITS]
        counters = getattr(self.counters, q.name.lower())
        with m.If(self.start & ~self.status.busy):
            m.d.sync += [counters.busy.eq(0), counters.wait.eq(0)]
        with m.FSM(name=f"exec_{q.name.lower()}") as fsm:
            with m.State("HEAD"):
                with m.If(queue.r_rdy & ~run.stopping):
                    with m.If(tokens_ok):
                        for flag, sem in filter(None, need):
                            m.d.comb += decs[sem].eq(flag)
                        with m.If(insn.op == Opcode.FINISH):
                            m.d.comb += [queue.r_en.eq(1), ex.finish.eq(1)]
                        with m.Else():
                            m.next = "ISSUE"
                    with m.Else():
                        m.d.sync += counters.wait.eq(counters.wait + 1)
            with m.State("ISSUE"):
                self._issue(m, insn, units, run)
            with m.State("RUN"):
                self._complete(m, q, insn, queue, units, incs, run, counters)
        m.d.comb += [ex.head.eq(fsm.ongoing("HEAD")),
                     ex.waiting.eq(fsm.ongoing("HEAD") & queue.r_rdy & ~tokens_ok)]
        return ex

    def _issue(self, m, insn, units, run):
        """Offer the head's body to its unit; go to RUN once it is taken."""
        with m.If(run.stopping):
            m.next = "HEAD"
        for op, port_name, field, _ in units:
            port = getattr(self, port_name)
            m.d.comb += port.desc.payload.eq(getattr(insn.body, field))
            with m.If((insn.op == op) & ~run.stopping):
                m.d.comb += port.desc.valid.eq(1)
                with m.If(port.desc.ready):
                    m.next = "RUN"

    def _complete(self, m, q, insn, queue, units, incs, run, counters):
        """Wait for the unit; then fail with its error or push the tokens and pop the head."""
        busy, error = Signal(name=f"{q.name.lower()}_unit_busy"), Signal(
            name=f"{q.name.lower()}_unit_error")
        for op, port_name, _, code in units:
            port = getattr(self, port_name)
            with m.If(insn.op == op):
                m.d.comb += [busy.eq(port.busy), error.eq(port.error)]
                with m.If(~busy & error):
                    run.fail(m, code)
        m.d.sync += counters.busy.eq(counters.busy + 1)
        with m.If(~busy):
            m.next = "HEAD"
            with m.If(~error & ~run.stopping):
                prev, nxt = TOWARDS_PREV.get(q), TOWARDS_NEXT.get(q)
                if prev:
                    m.d.comb += incs[prev[1]].eq(insn.deps.push_prev)
                if nxt:
                    m.d.comb += incs[nxt[1]].eq(insn.deps.push_next)
                m.d.comb += queue.r_en.eq(1)


class _Executor:
    """What the control logic sees of one executor."""

    def __init__(self, queue, head, waiting, finish):
        self.queue, self.head, self.waiting, self.finish = queue, head, waiting, finish


class _Control:
    """Start, stop and status of one program: the first error wins, then everything drains."""

    def __init__(self, m, seq, fetch, flush):
        self.seq, self.fetch, self.flush = seq, fetch, flush
        self.stopping = Signal()        # an error was seen: drain, then drop busy
        self.route_blocked = Signal()   # the fetched instruction waits for room in its queue
        self._code = Signal(ErrorCode)
        self._set = Signal()
        status = seq.status
        begin = seq.start & ~status.busy
        misaligned = seq.addr[:6] != 0
        m.d.comb += [fetch.start.eq(begin & ~misaligned), fetch.addr.eq(seq.addr),
                     fetch.count.eq(seq.count), fetch.abort.eq(self.stopping),
                     seq.clear_units.eq(begin), flush.eq(begin | self.stopping)]
        with m.If(begin):
            m.d.sync += [status.busy.eq(~misaligned), status.done.eq(0),
                         status.error.eq(ErrorCode.NONE), self.stopping.eq(misaligned)]
            with m.If(misaligned):
                m.d.sync += status.error.eq(ErrorCode.ALIGN)
        with m.If(fetch.busy & fetch.error & ~self.stopping):
            self.fail(m, ErrorCode.FETCH)
        with m.If(self._set & ~self.stopping & status.busy):
            m.d.sync += [status.error.eq(self._code), self.stopping.eq(1)]

    def fail(self, m, code):
        """Stop the program with ``code`` (in the current ``m.If`` context).

        Of two failures in one cycle the one built later wins; the program stops either way.
        """
        m.d.comb += [self._set.eq(1), self._code.eq(code)]

    def finish(self, m, queues, executors):
        """Raise done after FINISH; detect deadlock and a missing FINISH; drop busy."""
        status, fetch = self.seq.status, self.fetch
        finished = Signal()
        empty = Signal()
        idle = Signal()
        m.d.comb += [empty.eq(1), idle.eq(1)]
        for q, f in queues.items():
            with m.If(f.r_rdy):
                m.d.comb += empty.eq(0)
            with m.If(~executors[q].head):
                m.d.comb += idle.eq(0)
        with m.If(self.seq.start & ~status.busy):
            m.d.sync += finished.eq(0)
        with m.Elif(executors[Queue.COMPUTE].finish):
            m.d.sync += finished.eq(1)
        fetched_all = ~fetch.busy
        stuck = Signal()
        m.d.comb += stuck.eq(idle & (fetched_all | self.route_blocked))
        with m.If(status.busy & ~self.stopping):
            with m.If(finished & fetched_all & empty & idle):
                m.d.sync += [status.busy.eq(0), status.done.eq(1)]
            with m.Elif(stuck & ~empty & self._all_blocked(executors, queues)):
                self.fail(m, ErrorCode.DEADLOCK)
            with m.Elif(stuck & empty & fetched_all & ~finished):
                self.fail(m, ErrorCode.NO_FINISH)
        with m.If(self.stopping & idle & ~fetch.busy):
            m.d.sync += [status.busy.eq(0), self.stopping.eq(0)]

    @staticmethod
    def _all_blocked(executors, queues):
        """Every queue is empty or its head waits for a token."""
        blocked = 1
        for q, ex in executors.items():
            blocked = blocked & (~queues[q].r_rdy | ex.waiting)
        return blocked
