"""Reference behaviour of the eDRAM-style buffer: retention, refresh policies and decay.

``EDRAMModel`` replays a trace of port requests cycle by cycle exactly as
``edgetrain.hw.buffers.edram.EDRAMBuffer`` executes it (the timing contract is in that module's
docstring) and predicts every read's data, which reads are violations, and the final
``refreshes``, ``stall_cycles`` and ``violations`` counters. ``decay_pattern`` is the XOR
garbage an expired read returns when decay injection is on.

A trace is a list of ``Access``: request ``i`` is presented at cycle
``max(access.time, accept_cycle[i-1] + 1)`` and held until the buffer accepts it. An
``Access`` with ``release`` is no request: the ``release`` input is high in that cycle
(which has no request), and it counts as accepted then.
"""

import heapq
import random
from dataclasses import dataclass, field

from edgetrain.hw.buffers.edram import (
    REFRESH_POLICIES,
    check_bank,
    live_threshold,
    periodic_interval,
    time_bits,
    urgent_threshold)
from edgetrain.hw.buffers.lanes import pack_lanes
from edgetrain.sim.golden.numerics import mix32

__all__ = ["Access", "ReadOutcome", "TraceOutcome", "EDRAMModel", "decay_pattern",
           "random_trace", "read_ages"]


def decay_pattern(addr, now, data_bits):
    """Return the non-zero XOR pattern of a decayed read of ``addr`` at cycle ``now``."""
    seed = ((addr & 0xFFFF) << 16) | (now & 0xFFFF)
    value = pack_lanes([mix32(seed ^ k) for k in range((data_bits + 31) // 32)], 32)
    return (value & ((1 << data_bits) - 1)) | 1


@dataclass(frozen=True)
class Access:
    """One port request: earliest cycle, write (else read), row address, data, ``r_last``;
    or, with ``release``, a cycle with the buffer's ``release`` input high instead."""
    time: int
    write: bool
    addr: int
    data: int = 0
    last: bool = False
    release: bool = False


@dataclass(frozen=True)
class ReadOutcome:
    index: int        # position of the read in the trace
    cycle: int        # cycle it was accepted
    data: int         # r_data one cycle later
    violated: bool    # the row's data had expired


@dataclass
class TraceOutcome:
    reads: list = field(default_factory=list)
    accepted: list = field(default_factory=list)
    refreshes: int = 0
    stall_cycles: int = 0
    violations: int = 0
    cycles: int = 0


class _Bank:
    """Row state and refresh scheduling of one bank (see the hardware timing contract)."""

    def __init__(self, rows, retention, policy):
        self.rows, self.retention, self.policy = rows, retention, policy
        self.interval = periodic_interval(rows, retention)
        self.threshold = live_threshold(rows, retention)
        self.urgent = urgent_threshold(rows, retention)
        self.live = [False] * rows
        self.lost = [True] * rows
        self.stamp = [0] * rows
        self.pending = None  # the row a refresh read, until its write-back
        self.refreshes = 0
        self._due = []      # (due cycle, row, stamp) of live rows, by due cycle
        self._ready = []    # (row, stamp) of rows whose due cycle passed, by row
        self._urgent = []   # (urgent cycle, row, stamp) of live rows, by urgent cycle

    def expired(self, row, t):
        return self.lost[row] or t - self.stamp[row] >= self.retention

    def _track(self, row):
        stamp = self.stamp[row]
        heapq.heappush(self._due, (stamp + self.threshold, row, stamp))
        heapq.heappush(self._urgent, (stamp + self.urgent, row, stamp))

    def _kept(self, row, stamp, t):
        """Whether the entry (``row``, ``stamp``) still stands for live, unexpired data."""
        return self.live[row] and self.stamp[row] == stamp and not self.expired(row, t)

    def _any_urgent(self, t):
        while self._urgent:
            at, row, stamp = self._urgent[0]
            if self._kept(row, stamp, t):
                return at <= t
            heapq.heappop(self._urgent)
        return False

    def _live_candidate(self, t):
        while self._due and self._due[0][0] <= t:
            _, row, stamp = heapq.heappop(self._due)
            heapq.heappush(self._ready, (row, stamp))
        while self._ready:
            row, stamp = self._ready[0]
            if self._kept(row, stamp, t):
                return row
            heapq.heappop(self._ready)
        return None

    def refresh_step(self, t, demand=False):
        """Run the refresh side of cycle ``t``, in which a request addresses the bank if
        ``demand``; return True if such a request must wait."""
        if self.policy not in ("periodic", "live"):
            return False
        waits = demand and self.policy == "live" and not self._any_urgent(t)
        if self.pending is not None:
            if waits:
                return False
            row, self.pending = self.pending, None
            self.lost[row] = self.expired(row, t)
            self.stamp[row] = t
            if self.live[row] and not self.lost[row]:
                self._track(row)
            return True
        row = None
        if self.policy == "periodic" and t % self.interval == 0:
            row = (t // self.interval) % self.rows
        elif self.policy == "live":
            row = self._live_candidate(t)
        if row is None or waits:
            return False
        self.lost[row] = self.expired(row, t)
        self.refreshes += 1
        self.pending = row
        return True

    def next_event(self, t):
        """Return the first cycle >= ``t`` at which the refresh side may act."""
        if self.pending is not None or self._ready:
            return t
        if self.policy == "periodic":
            return -(-t // self.interval) * self.interval
        if self.policy == "live" and self._due:
            return max(t, self._due[0][0])
        return None

    def write(self, row, t):
        self.live[row], self.lost[row], self.stamp[row] = True, False, t
        if self.pending == row:
            self.pending = None
        self._track(row)

    def read(self, row, t, last):
        violated = self.expired(row, t)
        if last:
            self.live[row] = False
        return violated

    def release(self):
        self.live = [False] * self.rows


class EDRAMModel:
    """Cycle-exact model of ``EDRAMBuffer`` with the same parameters."""

    def __init__(self, *, depth, data_bits, retention_cycles, policy, banks=1, decay=False):
        if policy not in REFRESH_POLICIES:
            raise ValueError(f"refresh policy {policy!r} does not exist; choose from "
                             f"{', '.join(REFRESH_POLICIES)}")
        check_bank(policy=policy, rows=depth // banks, retention_cycles=retention_cycles)
        self.depth, self.data_bits, self.banks = depth, data_bits, banks
        self.retention, self.policy, self.decay = retention_cycles, policy, decay
        self.time_mask = (1 << time_bits(retention_cycles)) - 1

    def run(self, accesses):
        """Replay ``accesses``; return a ``TraceOutcome``."""
        banks = [_Bank(self.depth // self.banks, self.retention, self.policy)
                 for _ in range(self.banks)]
        data = [0] * self.depth
        out = TraceOutcome()
        t = 0
        for i, acc in enumerate(accesses):
            bank, row = banks[acc.addr % self.banks], acc.addr // self.banks
            t = self._advance(banks, t, acc.time)
            if acc.release:
                for b in banks:
                    b.refresh_step(t)
                    b.release()
                out.accepted.append(t)
                t += 1
                continue
            while True:
                busy = [b.refresh_step(t, demand=b is bank) for b in banks]
                if not busy[acc.addr % self.banks]:
                    break
                out.stall_cycles += 1
                t += 1
            out.accepted.append(t)
            if acc.write:
                bank.write(row, t)
                data[acc.addr] = acc.data
            else:
                violated = bank.read(row, t, acc.last)
                value = data[acc.addr]
                if violated and self.decay:
                    value ^= decay_pattern(acc.addr, t & self.time_mask, self.data_bits)
                out.violations += violated
                out.reads.append(ReadOutcome(i, t, value, violated))
            t += 1
        out.refreshes = sum(b.refreshes for b in banks)
        out.cycles = t
        return out

    @staticmethod
    def _advance(banks, t, until):
        """Run the refresh side of every cycle in [t, until); return max(t, until)."""
        while t < until:
            events = [e for e in (b.next_event(t) for b in banks) if e is not None]
            nxt = min(events, default=until)
            if nxt >= until:
                return until
            t = nxt
            for b in banks:
                b.refresh_step(t)
            t += 1
        return t


def random_trace(*, depth, data_bits, lifetimes, allocations, seed, gap=(1, 6),
                 releases=0):
    """Return a random trace of row lifetimes drawn from ``lifetimes`` (a (lo, hi) range).

    Each allocation writes a free row, reads it 0 to 3 times and releases it with ``r_last``
    about ``lifetime`` cycles after the write; an allocation without reads is released by a
    later overwrite. Requests get distinct cycles, allocations start ``gap`` cycles apart.
    ``releases`` release pulses (``Access.release``) go in at random places: rows they
    release early are then read after their release (and may have expired).
    """
    rng = random.Random(seed)
    taken, accesses = set(), []
    free_at = {a: 0 for a in range(depth)}
    t = 0

    def slot(want):
        while want in taken:
            want += 1
        taken.add(want)
        return want

    for _ in range(allocations):
        t += rng.randint(*gap)
        ready = [a for a, f in free_at.items() if f < t]
        if not ready:
            continue
        addr = rng.choice(ready)
        w = slot(t)
        accesses.append(Access(w, True, addr, rng.getrandbits(data_bits)))
        nreads = rng.choice((0, 1, 1, 2, 3))
        if nreads == 0:
            free_at[addr] = w
            continue
        lifetime = rng.randint(*lifetimes)
        times = sorted(rng.randint(w + 1, w + lifetime) for _ in range(nreads - 1))
        r = w
        for k, want in enumerate([*times, w + lifetime]):
            r = slot(max(want, r + 1))
            accesses.append(Access(r, False, addr, last=k == nreads - 1))
        free_at[addr] = r
    accesses.sort(key=lambda a: a.time)
    for _ in range(releases):
        at = rng.randrange(len(accesses) + 1)
        time = accesses[at - 1].time if at else 0
        accesses.insert(at, Access(time, False, 0, release=True))
    return accesses


def read_ages(accesses):
    """Return, per read of ``accesses``, the cycles since its row was last written.

    This is the age each read sees when no request ever stalls (no refresh), computed from
    the trace alone; ``None`` for a row never written.
    """
    written, ages = {}, []
    for acc in accesses:
        if acc.write:
            written[acc.addr] = acc.time
        elif not acc.release:
            w = written.get(acc.addr)
            ages.append(None if w is None else acc.time - w)
    return ages
