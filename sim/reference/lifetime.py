"""Data lifetimes, refreshes and energy of a training step held in an eDRAM-style buffer.

``training_schedule(net)`` turns a net into a simple tile schedule of one training sample
on the channel-parallel array; ``schedule_trace`` turns that into buffer row accesses
(``sim.decay.Access``) with cycle times. ``analyse`` computes every row's lifetime and
replays the trace through ``EDRAMModel`` -- the cycle-exact model of the hardware refresh
controller -- per policy, so its refreshes, stall cycles and violations are what
``EDRAMBuffer`` counts on the same trace. ``energy`` turns the counts into an estimate.

The schedule ("simple sequential")
    * Compute model: a Tm x Tn = 8 x 8 array at 500 MHz (CAMEL's clock, so CAMEL's 3.35 us
      worst-case retention is 1,675 cycles). A KxK conv pass ``cin -> cout`` over an HxW
      output takes ``ceil(cout/Tm) * ceil(cin/Tn) * H * W * K * K`` cycles (FP, BP and WU
      alike); pool and FC passes take at least one cycle per row they touch.
    * Buffer rows: a row holds ``Tn`` channels of one pixel; a tensor is stored as channel
      groups of ``Tn`` channels, each ``H`` lines of ``W`` rows. Rows are allocated first-fit
      when written and freed by their last read (``r_last``). The port moves one row per
      cycle, so bursts of accesses stretch the timeline.
    * Order: per sample, the forward pass, then the backward pass. Within a pass the conv
      layers (and reversible blocks) run as one line-by-line wavefront: an op emits output
      line y once its inputs hold the lines it needs (a KxK conv needs K//2 lines of halo);
      pool, FC and the loss run whole. The input image lives in DRAM and is loaded just
      before each use (the forward pass, and the first conv's weight update).
    * digits-cnn keeps every activation from the forward pass until its backward pass.
      digits-revnet keeps only the reversible chain's output: each block's backward pass
      recomputes its input from its output (x2 = y2 - G(y1), x1 = y1 - F(x2)), so its
      activations die young (CAMEL's argument). ReLU masks are read from the activations.
"""

import heapq
import math
from dataclasses import dataclass, field, fields, replace

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import FC, Conv, MaxPool, ReLU, RevBlock
from edgetrain.hw.config import REFRESH_POLICIES
from .decay import Access, EDRAMModel

__all__ = ["ArrayModel", "Op", "Plan", "training_schedule", "schedule_trace", "Lifetimes",
           "row_lifetimes", "analyse", "EnergyParams", "energy", "CAMEL_CLOCK_MHZ",
           "CAMEL_RETENTION_CYCLES"]

CAMEL_CLOCK_MHZ = 500
CAMEL_RETENTION_CYCLES = 1675   # 3.35 us at 500 MHz: CAMEL (HPCA 2024), worst case at 100 C


@dataclass(frozen=True)
class ArrayModel:
    """The compute model behind the schedule's cycle times."""
    tm: int = 8
    tn: int = 8
    clock_mhz: int = CAMEL_CLOCK_MHZ
    line_buffer: bool = True

    def conv_cycles(self, cin, cout, out_hw, kernel):
        return (math.ceil(cout / self.tm) * math.ceil(cin / self.tn) * out_hw[0] * out_hw[1]
                * kernel * kernel)


@dataclass(frozen=True)
class Op:
    """One pass: reads ``(tensor, halo lines)`` pairs, writes tensors ``outs``.

    A ``whole`` op needs all lines of its inputs and runs alone; the other ops of a group run
    as one line-by-line wavefront.
    """
    name: str
    cycles: int
    reads: tuple
    outs: tuple = ()
    whole: bool = False


@dataclass
class Plan:
    """Tensors (name -> (lines, rows per line)) and the groups of ops, in order."""
    array: ArrayModel
    tensors: dict = field(default_factory=dict)
    groups: list = field(default_factory=list)

    def tensor(self, name, shape):
        """Register a C x H x W tensor; return the names of its channel groups."""
        c, h, w = shape
        names = [f"{name}.g{g}" for g in range(math.ceil(c / self.array.tn))]
        for n in names:
            self.tensors[n] = (h, w)
        return names

    def cycles(self):
        return sum(op.cycles for group in self.groups for op in group)


def _reads(tensors, halo):
    return tuple((t, halo) for t in tensors)


def training_schedule(net, array=None, *, fuse=True):
    """Return the ``Plan`` of one training sample of ``net`` (forward, then backward).

    With ``fuse`` the layers of a pass form one wavefront; without, each layer runs alone
    (layer by layer), its outputs complete before the next layer starts.
    """
    plan = Plan(array=array or ArrayModel())
    shapes = [s for s in net.shapes() if not isinstance(s.layer, ReLU)]
    body, (pool, fc) = shapes[:-2], shapes[-2:]
    if not (isinstance(pool.layer, MaxPool) and isinstance(fc.layer, FC)) or any(
            not isinstance(s.layer, (Conv, RevBlock)) for s in body):
        raise ConfigError(f"net {net.name!r}: the refresh schedule handles Conv, ReLU and "
                          f"RevBlock layers followed by MaxPool, FC")
    forward, saved = [[]], {}
    act = plan.tensor("x.fp", net.input_shape)
    forward[0].append(Op("load.x.fp", len(act) * net.input_shape[2] * net.input_shape[1],
                         (), tuple(act)))
    for s in body:
        saved[s.index] = act
        layer = forward[-1] if fuse or s is body[0] else []
        act = (_conv_forward if isinstance(s.layer, Conv) else _block_forward)(plan, s, act,
                                                                                layer)
        if layer is not forward[-1]:
            forward.append(layer)
    plan.groups += forward
    grad = _tail(plan, pool, fc, act)
    backward = [[]]
    for s in reversed(body):
        layer = backward[-1] if fuse or not backward[-1] else []
        if isinstance(s.layer, Conv):
            grad, act = _conv_backward(plan, s, saved[s.index], act, grad, layer,
                                       first=s is body[0])
        else:
            grad, act = _block_backward(plan, s, act, grad, layer)
        if layer is not backward[-1]:
            backward.append(layer)
    plan.groups += backward
    return plan


def _conv_forward(plan, s, x, ops):
    out = plan.tensor(f"l{s.index}.y", s.out_shape)
    cyc = plan.array.conv_cycles(s.in_shape[0], s.out_shape[0], s.out_shape[1:],
                                 s.layer.kernel)
    ops.append(Op(f"l{s.index}.fp", cyc, _reads(x, s.layer.kernel // 2), tuple(out)))
    return out


def _block_forward(plan, s, x, ops):
    c, h, w = s.in_shape
    half, k = (c // 2, h, w), s.layer.kernel // 2
    x1, x2 = x[:len(x) // 2], x[len(x) // 2:]
    y1, y2 = plan.tensor(f"l{s.index}.y1", half), plan.tensor(f"l{s.index}.y2", half)
    cyc = plan.array.conv_cycles(c // 2, c // 2, (h, w), s.layer.kernel)
    ops.append(Op(f"l{s.index}.F", cyc, _reads(x2, k) + _reads(x1, 0), tuple(y1)))
    ops.append(Op(f"l{s.index}.G", cyc, _reads(y1, k) + _reads(x2, 0), tuple(y2)))
    return y1 + y2


def _tail(plan, pool, fc, act):
    """Add pool, FC, loss and their backward passes; return the gradient of ``act``."""
    arr, rows = plan.array, sum(math.prod(plan.tensors[t]) for t in act)
    p, z = plan.tensor("pool.y", pool.out_shape), plan.tensor("fc.y", fc.out_shape)
    dz, dp = plan.tensor("fc.dy", fc.out_shape), plan.tensor("pool.dy", pool.out_shape)
    dact = plan.tensor("pool.dx", pool.in_shape)
    fc_cyc = max(arr.conv_cycles(math.prod(pool.out_shape), fc.layer.out_features, (1, 1),
                                 1), len(p))
    p_rows = sum(math.prod(plan.tensors[t]) for t in p)
    plan.groups += [[Op(name, cyc, reads, tuple(outs), whole=True)] for name, cyc, reads, outs
                    in [("pool.fp", rows + p_rows, _reads(act, 0), p),
                        ("fc.fp", fc_cyc, _reads(p, 0), z),
                        ("loss", 2 * len(z), _reads(z, 0), dz),
                        ("fc.wu", fc_cyc, _reads(dz + p, 0), ()),
                        ("fc.bp", fc_cyc, _reads(dz, 0), dp),
                        ("pool.bp", rows + p_rows, _reads(dp + act, 0), dact)]]
    return dact


def _conv_backward(plan, s, x, y, dy, ops, *, first):
    """Add conv ``s``'s WU (and BP unless ``first``); return (dx, x)."""
    cyc = plan.array.conv_cycles(s.in_shape[0], s.out_shape[0], s.out_shape[1:],
                                 s.layer.kernel)
    k = s.layer.kernel // 2
    if first:   # the image comes back from DRAM for the weight update
        x = plan.tensor("x.bp", s.in_shape)
        ops.append(Op("load.x.bp", s.in_shape[1] * s.in_shape[2] * len(x), (), tuple(x)))
    mask = _reads(y, 0)   # ReLU mask of the output
    ops.append(Op(f"l{s.index}.wu", cyc, _reads(dy, k) + _reads(x, k) + mask))
    if first:
        return None, x
    dx = plan.tensor(f"l{s.index}.dx", s.in_shape)
    ops.append(Op(f"l{s.index}.bp", cyc, _reads(dy, k) + mask, tuple(dx)))
    return dx, x


def _block_backward(plan, s, y, dy, ops):
    """Add block ``s``'s backward pass, recomputing its input; return (dx, x)."""
    c, h, w = s.in_shape
    half, k, i = (c // 2, h, w), s.layer.kernel // 2, s.index
    n = len(y) // 2
    y1, y2, dy1, dy2 = y[:n], y[n:], dy[:n], dy[n:]
    x1, x2 = plan.tensor(f"l{i}.x1", half), plan.tensor(f"l{i}.x2", half)
    dx1, dx2 = plan.tensor(f"l{i}.dx1", half), plan.tensor(f"l{i}.dx2", half)
    cyc = plan.array.conv_cycles(c // 2, c // 2, (h, w), s.layer.kernel)
    ops += [
        Op(f"l{i}.G.re", cyc, _reads(y1, k) + _reads(y2, 0), tuple(x2)),
        Op(f"l{i}.G.wu", cyc, _reads(dy2, k) + _reads(y1, k)),
        Op(f"l{i}.G.bp", cyc, _reads(dy2, k) + _reads(dy1, 0), tuple(dx1)),
        Op(f"l{i}.F.re", cyc, _reads(x2, k) + _reads(y1, 0), tuple(x1)),
        Op(f"l{i}.F.wu", cyc, _reads(dx1, k) + _reads(x2, k)),
        Op(f"l{i}.F.bp", cyc, _reads(dx1, k) + _reads(dy2, 0), tuple(dx2)),
    ]
    return dx1 + dx2, x1 + x2


def _wavefront(plan, ops, t, uses, writes):
    """Time the ops of one group from cycle ``t``; record line uses/writes; return end."""
    if ops[0].whole:
        (op,) = ops
        for tensor, _ in op.reads:
            for line in range(plan.tensors[tensor][0]):
                uses.setdefault((tensor, line), []).append(t)
        for tensor in op.outs:
            for line in range(plan.tensors[tensor][0]):
                writes[(tensor, line)] = t + op.cycles - 1
        return t + op.cycles
    lines = {plan.tensors[n][0] for op in ops for n, _ in op.reads + tuple(
        (o, 0) for o in op.outs)}
    if len(lines) != 1:
        raise ConfigError(f"a wavefront group mixes feature maps of {sorted(lines)} lines")
    (height,) = lines
    depth = _depths(ops)
    for step in range(height + max(depth.values())):
        for op in ops:
            y = step - depth[op.name]
            if not 0 <= y < height:
                continue
            slot = -(-op.cycles // height)
            for tensor, halo in op.reads:
                for line in _lines_fetched(y, halo, height, plan.array.line_buffer):
                    uses.setdefault((tensor, line), []).append(t)
            for tensor in op.outs:
                writes[(tensor, y)] = t + slot - 1
            t += slot
    return t


def _lines_fetched(y, halo, height, line_buffer):
    """Return the input lines an op reads from the buffer to emit output line ``y``.

    Without a line buffer it reads its whole window y-halo .. y+halo; with one, the engine
    keeps the window in its own line buffer and fetches each line once, when it enters.
    """
    if not line_buffer or halo == 0:
        return range(max(0, y - halo), min(height, y + halo + 1))
    if y == 0:
        return range(0, min(height, halo + 1))
    return range(y + halo, y + halo + 1) if y + halo < height else range(0)


def _depths(ops):
    """Return each op's wavefront lag in lines: the most halo lines on a path to it.

    Loads (ops without inputs) are placed just in time for their first consumer.
    """
    depth, made = {}, {}
    for op in ops:
        depth[op.name] = max([made[n] + h for n, h in op.reads if n in made], default=0)
        made.update((n, depth[op.name]) for n in op.outs)
    for op in ops:
        if not op.reads:
            need = [depth[c.name] - h for c in ops for n, h in c.reads if n in op.outs]
            depth[op.name] = max(0, min(need, default=0))
    return depth


def schedule_trace(plan, *, spill_after=None):
    """Return (row accesses of ``plan``, buffer rows used, rows spilled to DRAM).

    The accesses are sorted, one per cycle. With ``spill_after``, a line that would stay in
    the buffer that many cycles or longer is stored to DRAM after a use and reloaded just
    before its next one (the lifetime-aware schedule), so no row outlives the bound much.

    A line written at cycle w has its rows written at w-W+1 .. w; a line used at cycle u has
    its rows read from u on. The last read of a row carries ``r_last``. Requests keep their
    order; when several want the same cycle the later ones move back (one row per cycle).
    """
    uses, writes, t = {}, {}, 0
    for group in plan.groups:
        t = _wavefront(plan, group, t, uses, writes)
    events, spilled = [], 0   # events: (cycle wanted, order, write?, row key, last?)
    for (tensor, line), w in writes.items():
        width = plan.tensors[tensor][1]
        times = sorted(uses.get((tensor, line), ()))
        if not times:
            raise ConfigError(f"tensor line {tensor}:{line} is written but never read")
        segments = _segments(w, times, spill_after, width)
        spilled += (len(segments) - 1) * width
        for k, (start, seg_uses) in enumerate(segments):
            for px in range(width):
                key = (tensor, line, px, k)
                events.append((start - width + 1 + px, 0, True, key, False))
                for j, u in enumerate(seg_uses):
                    events.append((u + px, 1, False, key, j == len(seg_uses) - 1))
    events.sort(key=lambda e: (e[0], e[1]))
    trace, rows = _allocate(events)
    return trace, rows, spilled


def _segments(w, uses, spill_after, width):
    """Split a line's life [write, uses] where it would stay longer than ``spill_after``.

    Return [(write or reload cycle, uses)]: each later segment is a reload from DRAM just
    before its first use; the segment before it ends with a read that stores the line (the
    DMA's), issued right after its last use.
    """
    segments, start, current = [], w, []
    for u in uses:
        if spill_after is not None and u - start >= spill_after:
            current.append((current[-1] if current else start) + width)   # the DMA store
            segments.append((start, current))
            start, current = u - 1, []
        current.append(u)
    segments.append((start, current))
    return segments


def _allocate(events):
    """Give each row a buffer address (first fit) and each request its own cycle."""
    free, addr, next_addr, out, t = [], {}, 0, [], -1
    for want, _, write, key, last in events:
        t = max(want, t + 1)
        if write:
            if key in addr:
                raise ConfigError(f"row {key} written twice")
            if free:
                addr[key] = heapq.heappop(free)
            else:
                addr[key], next_addr = next_addr, next_addr + 1
            out.append(Access(t, True, addr[key], data=(len(out) * 0x9E37) & 0xFFFF))
        else:
            if key not in addr:
                raise ConfigError(f"row {key} read before it is written")
            out.append(Access(t, False, addr[key], last=last))
            if last:
                heapq.heappush(free, addr.pop(key))
    return out, next_addr


@dataclass(frozen=True)
class Lifetimes:
    """Row lifetimes of a trace: from a write to the last read before the next write."""
    values: tuple

    @property
    def max(self):
        return max(self.values, default=0)

    @property
    def mean(self):
        return sum(self.values) / len(self.values) if self.values else 0.0

    def at_least(self, cycles):
        return sum(v >= cycles for v in self.values)


def row_lifetimes(trace):
    """Return the ``Lifetimes`` of every written row interval of ``trace``."""
    written, last_read, values = {}, {}, []
    for acc in trace:
        if acc.write:
            if acc.addr in written and acc.addr in last_read:
                values.append(last_read.pop(acc.addr) - written[acc.addr])
            written[acc.addr] = acc.time
            last_read.pop(acc.addr, None)
        else:
            last_read[acc.addr] = acc.time
    values += [last_read[a] - written[a] for a in last_read if a in written]
    return Lifetimes(tuple(values))


def analyse(trace, *, depth, banks, retention_cycles, data_bits=128,
            policies=REFRESH_POLICIES):
    """Replay ``trace`` per policy; return {policy: {refreshes, stall_cycles, violations,
    cycles}} from the cycle-exact model of the hardware."""
    result = {}
    for policy in policies:
        out = EDRAMModel(depth=depth, data_bits=data_bits, retention_cycles=retention_cycles,
                         policy=policy, banks=banks).run(trace)
        result[policy] = {"refreshes": out.refreshes, "stall_cycles": out.stall_cycles,
                          "violations": out.violations, "cycles": out.cycles,
                          "accesses": len(trace)}
    return result


@dataclass(frozen=True)
class EnergyParams:
    """Energy of the buffer per event. ESTIMATES, each overridable (``replace(p, k=v)``).

    ``row_access_pj``: one 128-bit row read or write. Horowitz, "Computing's energy problem",
    ISSCC 2014 (45 nm): 10 pJ per 64-bit access of an 8 KB SRAM; we take 2 x 10 pJ and use it
    for the eDRAM array too (CAMEL reports eDRAM access energy close to SRAM's).
    ``refresh_pj``: a refresh is a row read plus a row write-back, 2 x ``row_access_pj``.
    ``dram_row_pj``: moving one row to or from DRAM (a spill or reload). Horowitz 2014:
    1.3-2.6 nJ per 64-bit DRAM access; we take the low end, 2 x 1.3 nJ.
    ``leak_pw_per_bit``: eDRAM retention (leakage) power per stored bit. ASSUMPTION, not a
    measured figure: the few-pW/bit order of magnitude reported for gain-cell eDRAM.
    ``clock_mhz``: cycle time for the leakage term (CAMEL's 500 MHz).
    """
    row_access_pj: float = 20.0
    refresh_pj: float = 40.0
    dram_row_pj: float = 2600.0
    leak_pw_per_bit: float = 1.0
    clock_mhz: float = CAMEL_CLOCK_MHZ

    @classmethod
    def with_overrides(cls, pairs):
        """Return the defaults with ``["name=value", ...]`` applied (ConfigError if bad)."""
        known = {f.name for f in fields(cls)}
        changes = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or name not in known:
                raise ConfigError(f"energy parameter {pair!r} is not NAME=VALUE with NAME one "
                                  f"of {', '.join(sorted(known))}")
            try:
                changes[name] = float(value)
            except ValueError:
                raise ConfigError(f"energy parameter {name} must be a number, not "
                                  f"{value!r}") from None
            if changes[name] < 0:
                raise ConfigError(f"energy parameter {name} must be >= 0, not {value}")
        return replace(cls(), **changes)


def energy(counts, *, accesses, depth, row_bits, dram_rows=0, params=EnergyParams()):
    """Return the energy estimate in nJ, split into access/refresh/leakage/dram/total."""
    seconds = counts["cycles"] / (params.clock_mhz * 1e6)
    parts = {
        "access_nj": accesses * params.row_access_pj / 1e3,
        "refresh_nj": counts["refreshes"] * params.refresh_pj / 1e3,
        "leakage_nj": depth * row_bits * params.leak_pw_per_bit * 1e-12 * seconds * 1e9,
        "dram_nj": dram_rows * params.dram_row_pj / 1e3,
    }
    parts["total_nj"] = sum(parts.values())
    return {k: round(v, 3) for k, v in parts.items()}
