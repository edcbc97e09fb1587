"""eDRAM-style on-chip buffers: rows that forget after a retention time unless refreshed.

An ``EDRAMBuffer`` answers the same ``MemoryPortSignature`` port as ``SRAMBuffer``, so an
engine or a DMA uses either. Its rows are BRAM-backed and never really decay; what decays is
the *claim* that a row holds valid data. Each bank has a ``RefreshController`` that tracks, per
row, whether the row is live (written and not yet released) and when its data was last
written, and issues refreshes (a read and a write-back of the row, two bank cycles, which
stall a requester of the bank when they take it from a request) according to a policy:

``none``      no refresh (plain SRAM control logic).
``periodic``  every row, live or not, once per retention period (the conventional baseline).
``live``      only live rows, once their age reaches ``live_threshold``: in a cycle no
              request addresses the bank (hidden), or at once when a row is urgent.
``lifetime``  no refresh: the schedule promises that data dies before it expires.

Under every policy a read of data whose age reached the retention time is a *violation*
(counted). With ``decay_injection`` such a read returns the row XOR a non-zero hash of the
address and the cycle, so a schedule that relies on expired data fails a bit-exact comparison.

Timing contract (what ``edgetrain.sim.reference.decay.EDRAMModel`` reproduces exactly)
    Cycle 0 is the first cycle after reset. ``now`` counts cycles. In each bank and cycle:

    * A refresh *preempts* requests under ``periodic`` always, and under ``live`` when any
      live, unexpired row of the bank is at least ``urgent_threshold = retention - 2 *
      rows`` cycles old; otherwise it uses only cycles in which no request addresses the
      bank (it is *hidden*).
    * If a refreshed row waits for its write-back: the write-back happens now if the refresh
      preempts or no request addresses the bank (bank busy), else it waits. A request that
      writes that row cancels the write-back (the row is fresh).
    * Otherwise a refresh *candidate* is looked for: ``periodic`` has one at every
      ``(retention - 2) // rows`` cycles (cycle 0 included), row ``k mod rows`` at the k-th tick;
      ``live`` picks the lowest-numbered row that is live, not expired and at least
      ``live_threshold`` cycles old. It is read now if the refresh preempts or no request
      addresses the bank (bank busy), else it waits. Its age restarts at its write-back,
      unless it had already expired when it was read (expired data stays expired).
    * A request to a busy bank waits (``ready`` low, one stall cycle counted); otherwise it is
      accepted. So ``periodic`` reads a row and writes it back in the next cycle, and under
      ``live`` a request waits only for urgent refreshes: the refreshes of the slack between
      the two thresholds hide in the cycles the requesters leave the bank idle (with banks
      interleaved by row, most of them). An accepted write makes the row live with age 0;
      an accepted read with ``r_last`` releases it, and a cycle with ``release`` high
      releases every row but one written in that cycle (a program declaring a whole buffer
      half dead after its last use). Releases take effect at the end of the cycle; a
      refresh read already issued still writes back. A row has expired when its age is
      ``>= retention`` or it was never written since reset.

    Counters count events of cycles before the current one.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.errors import ConfigError
from edgetrain.hw.common.rng import mix32_comb
from .memport import MemoryPortSignature

__all__ = ["EDRAMBuffer", "RefreshController", "REFRESH_CYCLES", "REFRESH_POLICIES",
           "check_refresh_budget", "check_bank", "live_threshold", "urgent_threshold",
           "periodic_interval",
           "time_bits", "decay_pattern_expr"]

#: The refresh policies, in the order of the ``runtime`` policy input's index.
REFRESH_POLICIES = ("none", "periodic", "live", "lifetime")

#: Bank cycles one refresh occupies: read the row, then write it back.
REFRESH_CYCLES = 2
#: The fraction of a bank's refresh sweep a ``live`` refresh may wait for idle bank cycles
#: (``live_threshold``). Measured (``EDRAMModel``, then the accelerator): on engine-like FP /
#: WU read streams and the digits schedules' traces a quarter sweep leaves no stall (the
#: engine's stall cycles on the compute set of ``edgetrain bench accel`` went from 10-38% to
#: 0) for 5-9% more refreshes (``edgetrain bench refresh``); longer slacks cost refreshes.
HIDING_SLACK = 0.25
COUNTER_BITS = 32


def check_refresh_budget(*, rows, retention_cycles, where="eDRAM buffer"):
    """Raise ``ConfigError`` unless one bank of ``rows`` rows can be kept alive.

    The worst case of the ``live`` policy is every row due at once: the last one waits
    ``REFRESH_CYCLES * (rows - 1) + 1`` cycles, so a sweep needs
    ``retention_cycles >= REFRESH_CYCLES * rows + 1``.
    """
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ConfigError(f"{where}: rows per bank must be a positive integer, not {rows!r}")
    if not isinstance(retention_cycles, int) or isinstance(retention_cycles, bool):
        raise ConfigError(f"{where}: retention_cycles must be an integer, not "
                          f"{retention_cycles!r}")
    need = REFRESH_CYCLES * rows + 1
    if retention_cycles < need:
        raise ConfigError(f"{where}: retention_cycles {retention_cycles} is shorter than one "
                          f"refresh sweep of {rows} rows ({REFRESH_CYCLES} cycles each + 1 = "
                          f"{need}); raise retention_cycles to >= {need} or use more banks")


def check_bank(*, policy, rows, retention_cycles, where="eDRAM buffer"):
    """Raise ``ConfigError`` unless a bank of ``rows`` rows works under ``policy``.

    Policies that may refresh need the refresh budget (``check_refresh_budget``); the others
    only need positive sizes.
    """
    if policy in ("periodic", "live", "runtime"):
        check_refresh_budget(rows=rows, retention_cycles=retention_cycles, where=where)
        return
    for name, value in (("rows per bank", rows), ("retention_cycles", retention_cycles)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}: {name} must be a positive integer, not {value!r}")


def urgent_threshold(rows, retention_cycles):
    """Return the age at which a ``live`` refresh takes the bank from a request.

    From then on refreshes take the bank (a pending write-back first, then the due rows
    lowest first, each read and written back), so even when every row of the bank reaches
    it at once the last one is written back at most ``REFRESH_CYCLES * rows - 1`` cycles
    later, before it expires.
    """
    return retention_cycles - REFRESH_CYCLES * rows


def live_threshold(rows, retention_cycles):
    """Return the age from which the ``live`` policy refreshes a row in an idle bank cycle.

    It is ``urgent_threshold`` less ``HIDING_SLACK`` of a sweep of the bank (``REFRESH_CYCLES
    * rows`` cycles), or less what the retention leaves: a refreshed row must stay below it
    for at least a sweep, so that no row is refreshed twice while an urgent one waits. The
    slack is the time a refresh may wait for an idle bank cycle; every row refreshed in it
    is refreshed that much earlier, so a longer slack costs refreshes.
    """
    urgent = urgent_threshold(rows, retention_cycles)
    sweep = REFRESH_CYCLES * rows
    return urgent - max(0, min(int(sweep * HIDING_SLACK), urgent - sweep))


def periodic_interval(rows, retention_cycles):
    """Return the cycles between two refreshes of the ``periodic`` policy (one bank).

    A row is read every ``rows * interval`` cycles and written back (its age restarts) in
    the next cycle, which must stay below the retention.
    """
    return (retention_cycles - 2) // rows


def time_bits(retention_cycles):
    """Return the width of the cycle counter and row time stamps (at least 16)."""
    return max(16, retention_cycles.bit_length() + 1)


def decay_pattern_expr(m, *, addr, now, data_bits):
    """Return the non-zero XOR pattern a decayed read of ``addr`` at cycle ``now`` gets.

    Chunk ``k`` (32 bits each, lowest first) is ``mix32(((addr & 0xFFFF) << 16 |
    (now & 0xFFFF)) ^ k)``; the chunks are truncated to ``data_bits`` and bit 0 is forced to 1.
    """
    seed = Signal(32, name="decay_seed")
    m.d.comb += seed.eq(Cat(now[:16], addr[:16]))
    chunks = [mix32_comb(m, seed ^ k, name=f"decay_mix{k}")
              for k in range((data_bits + 31) // 32)]
    return Cat(*chunks)[:data_bits] | 1


class RefreshController(wiring.Component):
    """Track the rows of one bank and schedule their refreshes.

    Parameters (keyword-only): ``rows``, ``retention_cycles``, ``policy`` (a name from
    ``REFRESH_POLICIES``, or ``"runtime"``: then the ``policy`` input selects it by index).

    Members
        ``addr``, ``accept_read``, ``accept_last``, ``accept_write`` (in): the request the
        bank accepted this cycle (row within the bank; the accepts must be low while ``busy``).
        ``release`` (in): every row of the bank but one written this cycle is released.
        ``demand`` (in): a request addresses the bank this cycle (accepted or not); a
        ``live`` refresh that is not urgent waits for a cycle without one.
        ``busy`` (out): a request to the bank must wait this cycle (a refresh read or
        write-back that takes the bank from a request); it does not depend on ``demand``.
        ``expired`` (out): the data of row ``addr`` has expired (valid every cycle).
        ``rf_addr``, ``rf_read``, ``rf_write`` (out): the refresh read issued this cycle, or
        the write-back of the row a refresh read earlier (pending until then).
        ``now`` (out): cycles since reset (wrapping). ``refreshes`` (out): refreshes issued.
    """

    def __init__(self, *, rows, retention_cycles, policy):
        if policy not in (*REFRESH_POLICIES, "runtime"):
            raise ConfigError(f"refresh policy {policy!r} does not exist; choose from "
                              f"{', '.join(REFRESH_POLICIES)} (or 'runtime')")
        check_bank(policy=policy, rows=rows, retention_cycles=retention_cycles)
        self._rows, self._retention, self._policy = rows, retention_cycles, policy
        row_bits = max(1, (rows - 1).bit_length())
        members = {
            "addr": In(row_bits), "accept_read": In(1), "accept_last": In(1),
            "accept_write": In(1), "demand": In(1), "release": In(1),
            "busy": Out(1), "expired": Out(1),
            "rf_addr": Out(row_bits), "rf_read": Out(1), "rf_write": Out(1),
            "now": Out(time_bits(retention_cycles)), "refreshes": Out(COUNTER_BITS),
        }
        if policy == "runtime":
            members["policy"] = In(2)
        super().__init__(members)

    rows = property(lambda self: self._rows)
    retention_cycles = property(lambda self: self._retention)

    def _policy_is(self, name):
        if self._policy == "runtime":
            return self.policy == REFRESH_POLICIES.index(name)
        return Const(int(self._policy == name), 1)

    def elaborate(self, platform):
        m = Module()
        rows, tbits = self._rows, time_bits(self._retention)
        live = Signal(rows)
        lost = Signal(rows, init=(1 << rows) - 1)
        stamps = [Signal(tbits, name=f"stamp{i}") for i in range(rows)]
        m.d.sync += self.now.eq(self.now + 1)

        ages = [Signal(tbits, name=f"age{i}") for i in range(rows)]
        expired = Signal(rows)
        for i in range(rows):
            m.d.comb += [ages[i].eq(self.now - stamps[i]),
                         expired[i].eq(lost[i] | (ages[i] >= self._retention))]
        m.d.comb += self.expired.eq(expired.bit_select(self.addr, 1))

        cand_valid, cand_row, preempt = self._candidate(m, live, expired, ages)
        # A row read for a refresh waits in the read port's register for its write-back
        # (``pending``); a request that writes that row meanwhile cancels it (the row is
        # fresh, and the old data must not land on it).
        pending = Signal()
        wb_row = Signal.like(self.rf_addr)
        cancel = pending & self.accept_write & (self.addr == wb_row)
        with m.If(self.rf_read):
            m.d.sync += [pending.eq(1), wb_row.eq(cand_row)]
        with m.Elif(self.rf_write | cancel):
            m.d.sync += pending.eq(0)
        m.d.comb += [
            self.rf_read.eq(~pending & cand_valid & (preempt | ~self.demand)),
            self.rf_addr.eq(Mux(pending, wb_row, cand_row)),
            self.rf_write.eq(pending & (preempt | ~self.demand)),
            self.busy.eq(preempt & (pending | cand_valid)),
        ]
        m.d.sync += self.refreshes.eq(self.refreshes + self.rf_read)
        self._track_rows(m, live, lost, stamps, expired, wb_row)
        return m

    def _may_be(self, name):
        return self._policy in (name, "runtime")

    def _candidate(self, m, live, expired, ages):
        """Return (valid, row, preempt) of this cycle's refresh candidate under the policy;
        ``preempt``: it takes the bank from a request (else it waits for an idle cycle)."""
        valid, row, preempt = Signal(), Signal(range(self._rows)), Signal(init=1)
        if self._may_be("periodic"):
            tick, ptr = self._periodic_sweep(m)
            with m.If(self._policy_is("periodic")):
                m.d.comb += [valid.eq(tick), row.eq(ptr)]
        if self._may_be("live"):
            due, due_row, urgent = self._due_rows(m, live, expired, ages)
            with m.If(self._policy_is("live")):
                m.d.comb += [valid.eq(due.any()), row.eq(due_row), preempt.eq(urgent)]
        return valid, row, preempt

    def _periodic_sweep(self, m):
        """Return (tick, row): every ``periodic_interval`` cycles the next row in turn."""
        rows = self._rows
        interval = periodic_interval(rows, self._retention)
        timer = Signal(range(interval), init=0)
        ptr = Signal(range(rows), init=0)
        tick = Signal()
        m.d.comb += tick.eq(timer == 0)
        with m.If(tick):
            m.d.sync += [timer.eq(interval - 1), ptr.eq(Mux(ptr == rows - 1, 0, ptr + 1))]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return tick, ptr

    def _due_rows(self, m, live, expired, ages):
        """Return (due mask, lowest due row, any row urgent) of the live, unexpired rows old
        enough for a refresh (``live_threshold``) or for an urgent one (``urgent_threshold``)."""
        rows = self._rows
        threshold = live_threshold(rows, self._retention)
        urgent_at = urgent_threshold(rows, self._retention)
        due, urgent = Signal(rows), Signal(rows)
        for i in range(rows):
            kept = live[i] & ~expired[i]
            m.d.comb += [due[i].eq(kept & (ages[i] >= threshold)),
                         urgent[i].eq(kept & (ages[i] >= urgent_at))]
        due_row = Signal(range(rows))
        for i in reversed(range(rows)):
            with m.If(due[i]):
                m.d.comb += due_row.eq(i)
        return due, due_row, urgent.any()

    def _track_rows(self, m, live, lost, stamps, expired, wb_row):
        """Update each row's live bit, expiry and time stamp from accepts and refreshes."""
        for i in range(self._rows):
            here = self.addr == i
            with m.If(self.accept_write & here):
                m.d.sync += [live[i].eq(1), lost[i].eq(0), stamps[i].eq(self.now)]
            with m.Else():
                # Expiry is sticky: ages wrap at 2**time_bits, which must not revive data.
                m.d.sync += lost[i].eq(expired[i])
                with m.If(self.accept_read & self.accept_last & here | self.release):
                    m.d.sync += live[i].eq(0)
                with m.If(self.rf_write & (wb_row == i)):
                    m.d.sync += stamps[i].eq(self.now)


class EDRAMBuffer(wiring.Component):
    """A buffer of ``depth`` rows of ``data_bits`` whose rows expire unless refreshed.

    Parameters (keyword-only)
        ``depth``: rows in total; ``banks``: a power of two dividing ``depth`` (row ``a`` lives
        in bank ``a % banks``; each bank refreshes independently, so only requests to a
        refreshing bank stall). ``retention_cycles``: cycles after which unrefreshed data
        expires; must cover one refresh sweep of a bank (see ``check_refresh_budget``).
        ``policy``: one of ``REFRESH_POLICIES``, or ``"runtime"``. ``decay_injection``: build
        the corruption of expired reads. ``runtime_control``: add the ``policy`` and ``decay``
        inputs so one build covers all policies (implied by ``policy="runtime"``).

    Members
        ``port``: a ``MemoryPortSignature`` port (flipped: the buffer answers it).
        ``release`` (in): release every row (but one written in the same cycle): its data
        is dead, ``live`` stops refreshing it.
        ``refreshes``, ``stall_cycles``, ``violations`` (out, 32 bits): refreshes issued,
        cycles a request waited, reads accepted of expired data.
        ``policy`` (in, runtime control only): index into ``REFRESH_POLICIES``, held
        constant from reset. ``decay`` (in, runtime control only): enable the corruption.
    """

    def __init__(self, *, depth, data_bits, retention_cycles, policy, banks=1,
                 decay_injection=False, runtime_control=False):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ConfigError(f"eDRAM buffer depth must be a positive integer, not {depth!r}")
        if not isinstance(data_bits, int) or data_bits < 1:
            raise ConfigError(f"data_bits must be a positive integer, not {data_bits!r}")
        if (not isinstance(banks, int) or banks < 1 or banks & (banks - 1)
                or depth % banks):
            raise ConfigError(f"banks must be a power of two dividing depth {depth}, not "
                              f"{banks!r}")
        if policy not in (*REFRESH_POLICIES, "runtime"):
            raise ConfigError(f"refresh policy {policy!r} does not exist; choose from "
                              f"{', '.join(REFRESH_POLICIES)}")
        check_bank(policy=policy, rows=depth // banks, retention_cycles=retention_cycles,
                   where=f"eDRAM buffer of {depth} rows in {banks} bank(s)")
        runtime_control = runtime_control or policy == "runtime"
        self._depth, self._data_bits, self._banks = depth, data_bits, banks
        self._retention, self._decay = retention_cycles, bool(decay_injection)
        self._policy = "runtime" if runtime_control else policy
        members = {
            "port": In(MemoryPortSignature(addr_bits=max(1, (depth - 1).bit_length()),
                                           data_bits=data_bits)),
            "release": In(1),
            "refreshes": Out(COUNTER_BITS), "stall_cycles": Out(COUNTER_BITS),
            "violations": Out(COUNTER_BITS),
        }
        if runtime_control:
            members.update(policy=In(2), decay=In(1))
        super().__init__(members)

    @classmethod
    def for_buffer(cls, config, buffer, *, data_bits=None, **kwargs):
        """Return the ``Buffer`` ``buffer`` (one of ``REFRESHED``) of ``AcceleratorConfig``
        ``config``: its depth, policy and rows (``data_bits``: the buffer's row width
        unless given)."""
        data_bits = buffer.row_bits(config) if data_bits is None else data_bits
        return cls(depth=buffer.depth(config), data_bits=data_bits,
                   retention_cycles=config.retention_cycles, policy=config.policy(buffer),
                   banks=config.edram_banks, decay_injection=config.decay_injection,
                   **kwargs)

    depth = property(lambda self: self._depth)
    banks = property(lambda self: self._banks)
    retention_cycles = property(lambda self: self._retention)

    def elaborate(self, platform):
        m = Module()
        port, nbanks = self.port, self._banks
        bank_bits = (nbanks - 1).bit_length()
        sel = port.addr[:bank_bits] if bank_bits else Const(0, 1)
        row = port.addr[bank_bits:] if bank_bits else port.addr

        busy, expired, rdata, nows, refreshes = [], [], [], [], []
        for b in range(nbanks):
            ctl, bank_read, bank_expired = self._bank(m, b, row, sel)
            busy.append(ctl.busy)
            expired.append(bank_expired)
            rdata.append(bank_read)
            nows.append(ctl.now)
            refreshes.append(ctl.refreshes)

        request = port.r_en | port.w_en
        accept_read = Signal()
        m.d.comb += [
            port.ready.eq(~Array(busy)[sel]),
            accept_read.eq(port.r_en & port.ready),
        ]
        read_sel = Signal.like(sel)
        violated = Signal()
        m.d.comb += violated.eq(accept_read & Array(expired)[sel])
        with m.If(accept_read):
            m.d.sync += read_sel.eq(sel)
        m.d.sync += [
            self.stall_cycles.eq(self.stall_cycles + (request & ~port.ready)),
            self.violations.eq(self.violations + violated),
        ]
        m.d.comb += self.refreshes.eq(sum(refreshes)[:COUNTER_BITS])
        mask = self._decay_mask(m, violated, accept_read, nows[0])
        m.d.comb += port.r_data.eq(Array(rdata)[read_sel] ^ mask)
        return m

    def _bank(self, m, b, row, sel):
        """Add bank ``b``: its memory and controller. Return (controller, read data, expired)."""
        port, rows = self.port, self._depth // self._banks
        ctl = RefreshController(rows=rows, retention_cycles=self._retention,
                                policy=self._policy)
        mem = memory.Memory(shape=self._data_bits, depth=rows, init=[])
        m.submodules[f"refresh{b}"], m.submodules[f"bank{b}"] = ctl, mem
        rd, rf, wr = mem.read_port(), mem.read_port(), mem.write_port()
        if self._policy == "runtime":
            m.d.comb += ctl.policy.eq(self.policy)
        mine = (sel == b) & ~ctl.busy
        m.d.comb += [
            ctl.addr.eq(row),
            ctl.demand.eq((sel == b) & (port.r_en | port.w_en)),
            ctl.accept_read.eq(mine & port.r_en),
            ctl.accept_last.eq(port.r_last),
            ctl.accept_write.eq(mine & port.w_en),
            ctl.release.eq(self.release),
            rd.addr.eq(row), rd.en.eq(mine & port.r_en),
            rf.addr.eq(ctl.rf_addr), rf.en.eq(ctl.rf_read),
            wr.addr.eq(Mux(ctl.rf_write, ctl.rf_addr, row)),
            wr.data.eq(Mux(ctl.rf_write, rf.data, port.w_data)),
            wr.en.eq(ctl.rf_write | (mine & port.w_en)),
        ]
        return ctl, rd.data, ctl.expired

    def _decay_mask(self, m, violated, accept_read, now):
        """Return the XOR mask of the read data (0 unless decay injection is built and on)."""
        mask = Signal(self._data_bits)
        if not self._decay:
            return mask
        enabled = self.decay if self._policy == "runtime" else 1
        pattern = decay_pattern_expr(m, addr=self.port.addr, now=now,
                                     data_bits=self._data_bits)
        with m.If(accept_read):
            m.d.sync += mask.eq(Mux(violated & enabled, pattern, 0))
        return mask
