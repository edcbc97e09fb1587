"""The accelerator's instruction-level model: a program's effect on DRAM and the buffers.

``Machine(cfg, mem_bytes)`` holds what a program of ``hw/accel/isa.py`` can change: ``dram``
(a ``bytearray``; ``window`` is the DRAM window, ``(base, size)`` in bytes, the whole
memory by default) and ``rows[buffer][half]``, the rows of each buffer's two ping-pong
halves as Python ints of ``Buffer.row_bits(cfg)`` bits (``OUT``: ``T`` int16 values, then
``T`` ReLU-mask bits). ``run(program)`` takes a list of ``Instruction`` (or ``addr`` and
``count``: a DRAM image, as the hardware's PROG_ADDR / PROG_COUNT), runs it and returns its
``Counters``. Every instruction goes through ``encode`` / ``decode`` first, so the model sees
the fields as the hardware does (signed where signed; a value that does not fit its field
is refused by ``encode``).

Order
    Instructions run one at a time, in program order. A program that passes
    ``check_program`` has no races (the tokens order every conflicting pair), so the result
    is the hardware's. The tokens are replayed as the sequencer would (``QUEUE_DEPTH``):
    only the instructions that replay runs are executed, and a program that cannot finish
    fails with ``DEADLOCK`` (or ``NO_FINISH``, when it has no FINISH). Left-over tokens are
    not an error here (the hardware does not see them).
What is modelled, bit for bit
    * LOAD / STORE: ``hw/dma/descriptor.py``: the DRAM segments, the buffer walk with its
      padding rows and corner turn, store reads; beat rows into bank rows as
      ``hw/accel/beats.py`` says (slot ``a % ratio`` of row ``a // ratio``; ``OUT``: the
      value lanes only, a load writes mask bits 0), and a row of several beats is written
      when its last slot is, with the slots collected before (``WideRowAdapter``).
    * COMPUTE: the engine descriptor's loop nest (``hw/engine/addrgen.py``: the taps, their
      act / out / weight rows at the descriptor's strides, padding and BP's dilation taps,
      the lanes past ``out_ch`` / ``red_ch`` masked to zero) on the halves named by
      ``halves``, with the golden arithmetic: exact accumulators (wrapped at ``acc_bits``),
      ``numerics.requantize`` (stochastic rounding with the element indices of the ``idx_*``
      fields) and ReLU for FP / BP into ``OUT`` rows with their mask bits; WU's gradient rows
      into ``MST`` (``hw/accel/gradwriter.py``, added when ``accumulate``); UPDATE's
      ``numerics.sgd_momentum`` on the ``MST`` rows (``hw/engine/updater.py``, the flat weight
      indices of ``w_idx_out`` / ``w_red`` / ``idx_off``; with ``partial`` the gradient is
      the block's plus the other ``MST`` half's words at its rows, wrapped at ``acc_bits``),
      or the accumulators without an SGD unit (``update_lanes`` 0, ``partial`` ignored). ``release`` has no effect on data.
    * POOL and ELTWISE: ``hw/accel/pool.py`` / ``hw/accel/eltwise.py`` with the golden
      ``maxpool2x2`` / ``maxpool2x2_backward``, ``wrap_add`` / ``wrap_sub``,
      ``relu_backward``.
    * Counters: the engine's useful MACs (``ConvEngine``'s definition), saturations and the
      largest |accumulator| requantized (``amax``), as the top totals them; beats moved.
Errors
    A program the hardware stops raises ``ProgramError`` (a ``ConfigError``) with the
    instruction ``index`` and the ``ErrorCode`` the sequencer reports: ``OPCODE`` (a DRAM
    image whose opcode is not one), ``DEPS``, ``ALIGN`` / ``FETCH`` (the program address or
    bytes), ``LOAD`` / ``STORE`` (the DMA refuses its descriptor: a zero count, misalignment,
    a row past the DMA's bounds, lengths that disagree, the wrong direction; a row outside the
    named buffer's window; a DRAM byte outside the window), ``ENGINE`` (``DescriptorCheck``'s
    rules), ``POOL`` / ``ELTWISE`` (their units' checks), ``DEADLOCK``, ``NO_FINISH``. The
    failing instruction changes nothing here (the hardware may have moved part of it); the
    ones before it have run. An engine row outside ``MST``'s half (which the hardware does
    not check) raises ``ProgramError`` with code ``None``: the hardware's result is
    undefined.
Not modelled
    Time (cycles, stalls, the engine's ``busy_cycles``, the queue counters), eDRAM refresh,
    retention and decay (``release``), the bank counters, the ``ERRORS`` register's detail
    (the message names the ``err_*`` check instead; the crossbar's ``rows`` flag, which
    stops nothing, is not kept), AXI error responses of the memory itself, and the effects
    of a racy program (one that ``check_program`` refuses may give another result on the
    hardware). A program partly outside the window fails with ``FETCH`` before any of it
    runs (the hardware runs the instructions it fetched before).
"""

from dataclasses import dataclass

import numpy as np

from edgetrain.errors import ConfigError
from edgetrain.hw.accel.banks import HALVES, half_depth
from edgetrain.hw.accel.beats import beat_addr_bits, beat_depth, beat_ratio, moved_bits
from edgetrain.hw.accel.eltwise import EltwiseOp
from edgetrain.hw.accel.isa import (
    INSN_BYTES, Opcode, Queue, decode, encode, engine_config, instruction_layout, replay,
    semaphores_of)
from edgetrain.hw.accel.pool import PoolMode
from edgetrain.hw.accel.rowunit import UNIT_BUFFERS
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.buffers.kinds import MASTER_WORD_BITS, Buffer, master_lanes
from edgetrain.hw.buffers.lanes import LANE_BITS
from edgetrain.hw.engine.descriptor import MODES
from edgetrain.sim.golden import numerics
from edgetrain.sim.golden.layers import relu_backward
from edgetrain.sim.golden.pool import maxpool2x2, maxpool2x2_backward

__all__ = ["Machine", "Counters", "ProgramError"]

_M32 = (1 << 32) - 1


class ProgramError(ConfigError):
    """A program the hardware stops: ``index`` (the instruction, or ``None``) and ``code``
    (the ``ErrorCode`` the sequencer reports; ``None``: undefined on the hardware)."""

    def __init__(self, index, code, reason):
        self.index, self.code = index, code
        where = "program" if index is None else f"instruction {index}"
        super().__init__(f"{where}: {code.name if code else 'UNDEFINED'}: {reason}")


@dataclass
class Counters:
    """What a run counted: the engine totals (``ConvEngine``'s ``macs``, ``saturations``,
    ``amax``) and the beats each DMA moved."""
    macs: int = 0
    saturations: int = 0
    amax: int = 0
    load_beats: int = 0
    store_beats: int = 0
    instructions: int = 0


# Rows <-> lane arrays -----------------------------------------------------------------------

def _lanes(rows, count, bits=LANE_BITS):
    """``[len(rows), count]`` int64 of the low ``count`` signed lanes of each row int."""
    nbytes, mask = count * bits // 8, (1 << (count * bits)) - 1
    raw = b"".join((r & mask).to_bytes(nbytes, "little") for r in rows)
    dtype = {16: "<i2", 32: "<i4", 64: "<i8"}[bits]
    return np.frombuffer(raw, dtype=dtype).astype(np.int64).reshape(len(rows), count)


def _ints(lanes, bits=LANE_BITS):
    """The row ints of ``[rows, count]`` lane values (two's complement, ``bits`` each)."""
    dtype = {16: "<i2", 32: "<i4", 64: "<i8"}[bits]
    a = np.ascontiguousarray(np.asarray(lanes).astype(np.int64).astype(dtype))
    raw, size = a.tobytes(), a.shape[1] * bits // 8
    return [int.from_bytes(raw[k:k + size], "little") for k in range(0, len(raw), size)]


def _out_rows(values, mask):
    """``OUT`` row ints: ``T`` value lanes, then ``T`` mask bits."""
    t = values.shape[1]
    bits = (np.asarray(mask, dtype=np.int64) << np.arange(t)).sum(axis=1)
    return [v | int(b) << (LANE_BITS * t) for v, b in zip(_ints(values), bits)]


def _wrap(a, bits):
    """``a`` wrapped to ``bits``-bit two's complement."""
    half = np.int64(1) << np.int64(bits - 1) if bits < 64 else None
    if half is None:
        return a
    return ((a + half) & ((half << 1) - 1)) - half


class _Fail(Exception):
    """An instruction's unit refuses it (becomes a ``ProgramError`` with the index)."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code, self.reason = code, reason


class Machine:
    """DRAM, the buffers' halves and the counters of one accelerator (module docstring)."""

    def __init__(self, cfg, mem_bytes):
        if not isinstance(mem_bytes, int) or mem_bytes <= 0:
            raise ConfigError(f"mem_bytes must be a positive integer, not {mem_bytes!r}")
        self.cfg, self.ecfg = cfg, engine_config(cfg)
        self.dram = bytearray(mem_bytes)
        self.window = (0, mem_bytes)
        self.rows = {b: [[0] * half_depth(cfg, b) for _ in range(HALVES)] for b in Buffer}
        self._layout = instruction_layout(cfg)
        self._bus = cfg.axi_data_bits // 8
        self._buf_depth = max(beat_depth(cfg, b) for b in Buffer)

    # Program ------------------------------------------------------------------------------

    def run(self, program=None, *, addr=None, count=None):
        """Run ``program`` (a list of ``Instruction``) or the ``count`` instructions at DRAM
        byte ``addr``; return its ``Counters``. Raise ``ProgramError`` where the hardware
        stops."""
        self._counters = Counters()
        self._slots = {b: [0, [0] * beat_ratio(self.cfg, b)] for b in Buffer}
        insns, bad = self._fetch(program, addr, count)
        ran, stuck = _replay(insns)
        for i, insn in enumerate(insns):
            if ran[i]:
                self._execute(i, insn)
        if bad is not None:
            raise bad
        if stuck is not None:
            raise ProgramError(stuck[0], ErrorCode.DEADLOCK, stuck[1])
        if not any(insn.op is Opcode.FINISH for insn in insns):
            raise ProgramError(None, ErrorCode.NO_FINISH,
                               f"all {len(insns)} instructions ran and none was FINISH")
        return self._counters

    def _fetch(self, program, addr, count):
        """Return the decoded instructions up to the first bad one, and its error or None."""
        if program is not None:
            image = b""
            for i, insn in enumerate(program):
                try:
                    insn.check()
                except ConfigError as e:
                    bad = ProgramError(i, ErrorCode.DEPS, str(e))
                    return self._decoded(image)[0], bad
                image += encode(self.cfg, insn, self._layout).to_bytes(INSN_BYTES, "little")
        else:
            if addr % INSN_BYTES:
                raise ProgramError(None, ErrorCode.ALIGN, f"program address {addr:#x} is not "
                                   f"a multiple of {INSN_BYTES} bytes")
            if not self._in_window(addr, count * INSN_BYTES):
                raise ProgramError(None, ErrorCode.FETCH, f"program bytes {addr:#x} + "
                                   f"{count * INSN_BYTES} lie outside the DRAM window")
            image = bytes(self.dram[addr:addr + count * INSN_BYTES])
        return self._decoded(image)

    def _decoded(self, image):
        """Decode ``image`` up to its first bad instruction; return it and that error."""
        insns = []
        for i in range(0, len(image), INSN_BYTES):
            value = int.from_bytes(image[i:i + INSN_BYTES], "little")
            try:
                insn = decode(self.cfg, value, self._layout)
            except ConfigError as e:
                return insns, ProgramError(len(insns), ErrorCode.OPCODE, str(e))
            try:
                insn.check()
            except ConfigError as e:
                return insns, ProgramError(len(insns), ErrorCode.DEPS, str(e))
            insns.append(insn)
        return insns, None

    def _execute(self, i, insn):
        run = {Opcode.LOAD: self._load, Opcode.STORE: self._store,
               Opcode.COMPUTE: self._compute, Opcode.POOL: self._pool,
               Opcode.ELTWISE: self._eltwise, Opcode.FINISH: lambda body: None}[insn.op]
        try:
            run(insn.body)
        except _Fail as e:
            raise ProgramError(i, e.code, f"{insn.op.name}: {e.reason}") from None
        self._counters.instructions += 1

    # DRAM ---------------------------------------------------------------------------------

    def _in_window(self, addr, nbytes):
        base, size = self.window
        if not (0 <= base and base + size <= len(self.dram)):
            raise ConfigError(f"the DRAM window {base:#x} + {size:#x} must lie inside the "
                              f"{len(self.dram):#x} bytes of memory")
        return base <= addr and addr + nbytes <= base + size

    def _segments(self, d, code):
        """The ``(addr, nbytes)`` DRAM segments of descriptor ``d``, checked against the
        window."""
        top = 1 << self.cfg.axi_addr_bits
        segs = [((d["dram_addr"] + o * d["seg_stride2"] + k * d["seg_stride"]) % top,
                 d["seg_beats"] * self._bus)
                for o in range(d["seg_count2"]) for k in range(d["seg_count"])]
        for a, n in segs:
            if not self._in_window(a, n):
                raise _Fail(code, f"DRAM bytes {a:#x} + {n} lie outside the window "
                                  f"{self.window[0]:#x} + {self.window[1]:#x}")
        return segs

    # LOAD / STORE -------------------------------------------------------------------------

    def _load(self, body):
        buffer, d = body["buffer"], body["dma"]
        steps, pad = self._transfer_walk(buffer, d, store=False)
        data = b"".join(bytes(self.dram[a:a + n])
                        for a, n in self._segments(d, ErrorCode.LOAD))
        bus = self._bus
        beats = [int.from_bytes(data[k:k + bus], "little") for k in range(0, len(data), bus)]
        self._counters.load_beats += len(beats)
        if d["corner_turn"]:
            self._corner_turn(buffer, d, steps, beats)
            return
        it = iter(beats)
        for addr, padded in zip(steps, pad):
            self._write_beat(buffer, addr, 0 if padded else next(it))

    def _corner_turn(self, buffer, d, steps, beats):
        """Each step: ``lanes`` beats in, row ``j`` (at ``+ j*sj``) gets lane ``j`` of each."""
        lanes = self.cfg.axi_data_bits // LANE_BITS
        square = _lanes(beats, lanes).reshape(len(steps), lanes, lanes)
        turned = _ints(square.transpose(0, 2, 1).reshape(-1, lanes))
        for s, addr in enumerate(steps):
            for j in range(lanes):
                self._write_beat(buffer, addr + j * d["sj"], turned[s * lanes + j])

    def _store(self, body):
        buffer, d = body["buffer"], body["dma"]
        steps, _ = self._transfer_walk(buffer, d, store=True)
        segs = self._segments(d, ErrorCode.STORE)
        data = b"".join(self._read_beat(buffer, a).to_bytes(self._bus, "little")
                        for a in steps)
        self._counters.store_beats += len(steps)
        at = 0
        for a, n in segs:
            self.dram[a:a + n] = data[at:at + n]
            at += n

    def _transfer_walk(self, buffer, d, *, store):
        """Check a transfer as the DMA and crossbar do; return its walk (beat rows in
        order) and each step's padding flag."""
        code = ErrorCode.STORE if store else ErrorCode.LOAD
        if d["store"] != int(store):
            raise _Fail(code, f"a {'STORE' if store else 'LOAD'} body must have dma.store "
                              f"{int(store)}, not {d['store']}")
        reason = _dma_refusal(d, self._bus, self._buf_depth)
        if reason:
            raise _Fail(code, reason)
        i2, i1, i0 = np.meshgrid(*(np.arange(d[n]) for n in ("n2", "n1", "n0")),
                                 indexing="ij")
        steps = (d["buf_addr"] + i2 * d["s2"] + i1 * d["s1"] + i0 * d["s0"]).ravel()
        pad = ((i2 < d["pad_top"]) | (i2 + d["pad_bottom"] >= d["n2"]) |
               (i1 < d["pad_left"]) | (i1 + d["pad_right"] >= d["n1"])).ravel()
        rows = steps
        if d["corner_turn"]:
            lanes = self.cfg.axi_data_bits // LANE_BITS
            rows = (steps[:, None] + np.arange(lanes) * d["sj"]).ravel()
        outside = [int(a) for a in rows if not self._in_buffer(buffer, int(a))]
        if outside:
            raise _Fail(code, f"beat row {outside[0]} is outside {buffer.name}'s window "
                              f"(halves of {half_depth(self.cfg, buffer)} rows x "
                              f"{beat_ratio(self.cfg, buffer)} beats)")
        return [int(a) for a in steps], pad

    def _in_buffer(self, buffer, addr):
        low = beat_addr_bits(self.cfg, buffer) - 1
        rows = half_depth(self.cfg, buffer) * beat_ratio(self.cfg, buffer)
        return addr >> low <= 1 and addr & ((1 << low) - 1) < rows

    def _beat_place(self, buffer, addr):
        """``(half, row, slot)`` of beat row ``addr``."""
        low, ratio = beat_addr_bits(self.cfg, buffer) - 1, beat_ratio(self.cfg, buffer)
        row, slot = divmod(addr & ((1 << low) - 1), ratio)
        return addr >> low, row, slot

    def _write_beat(self, buffer, addr, value):
        """Collect a beat into its row's slots; write the row with its ``ratio``-th beat."""
        half, row, slot = self._beat_place(buffer, addr)
        ratio, state = beat_ratio(self.cfg, buffer), self._slots[buffer]
        state[1][slot] = value
        if state[0] == ratio - 1:
            bits = self.cfg.axi_data_bits
            self.rows[buffer][half][row] = sum(v << (bits * k) for k, v in enumerate(state[1]))
            state[0] = 0
        else:
            state[0] += 1

    def _read_beat(self, buffer, addr):
        half, row, slot = self._beat_place(buffer, addr)
        bits = self.cfg.axi_data_bits
        moved = self.rows[buffer][half][row] & ((1 << moved_bits(self.cfg, buffer)) - 1)
        return moved >> (bits * slot) & ((1 << bits) - 1)

    # COMPUTE ------------------------------------------------------------------------------

    def _compute(self, body):
        d, halves = body["desc"], body["halves"]
        reason = _engine_refusal(self.ecfg, d)
        if reason:
            raise _Fail(ErrorCode.ENGINE, reason)
        half = {b: halves >> b.value & 1 for b in Buffer}
        engine = _Engine(self, d, half)
        mode = MODES[d["mode"]]
        if mode in ("fp", "bp"):
            engine.conv()
        else:
            engine.gradients(accumulate=bool(body["accumulate"]), update=mode == "update")

    def _half(self, buffer, half):
        return self.rows[buffer][half]

    # POOL / ELTWISE -----------------------------------------------------------------------

    def _unit_rows(self, code, operand, rows):
        """The rows ``operand`` names (``operand_fits``): a list, its buffer and its start."""
        buffer, row = operand["buffer"], operand["row"]
        if buffer not in UNIT_BUFFERS or row + rows > half_depth(self.cfg, buffer):
            raise _Fail(code, f"a run of {rows} rows at {buffer.name} half "
                              f"{operand['half']} row {row} is not inside an ACT or OUT half")
        return self.rows[buffer][operand["half"]], buffer, row

    def _read_values(self, code, operand, rows):
        half, _, row = self._unit_rows(code, operand, rows)
        return _lanes(half[row:row + rows], self.cfg.tm)

    def _write_values(self, code, operand, values):
        half, buffer, row = self._unit_rows(code, operand, len(values))
        ints = (_out_rows(values, values > 0) if buffer is Buffer.OUT else _ints(values))
        half[row:row + len(values)] = ints

    def _pool(self, body):
        planes, h, w, t = body["planes"], body["h"], body["w"], self.cfg.tm
        code = ErrorCode.POOL
        if not planes or not h or not w or h % 2 or w % 2:
            raise _Fail(code, f"planes {planes}, h {h}, w {w}: none may be zero, h and w even")
        full, fwd = planes * h * w, body["mode"] is PoolMode.FORWARD
        pooled = full >> 2
        for name, rows in (("src", full if fwd else pooled), ("dst", pooled if fwd else full),
                           ("idx", pooled)):
            self._unit_rows(code, body[name], rows)

        def planar(rows, hh, ww):
            return rows.reshape(planes, hh, ww, t).transpose(0, 3, 1, 2)

        def as_rows(a):
            return a.transpose(0, 2, 3, 1).reshape(-1, t).astype(np.int64)
        if fwd:
            y, arg = maxpool2x2(planar(self._read_values(code, body["src"], full), h, w))
            self._write_values(code, body["dst"], as_rows(y))
            self._write_values(code, body["idx"], as_rows(arg))
            return
        dy = planar(self._read_values(code, body["src"], pooled), h // 2, w // 2)
        arg = planar(self._read_values(code, body["idx"], pooled) & 3, h // 2, w // 2)
        self._write_values(code, body["dst"], as_rows(maxpool2x2_backward(dy, arg)))

    def _eltwise(self, body):
        op, rows, code = body["op"], body["rows"], ErrorCode.ELTWISE
        if not rows:
            raise _Fail(code, "rows is 0")
        for name in ("a", "d") + (() if op is EltwiseOp.COPY else ("b",)):
            self._unit_rows(code, body[name], rows)
        a = self._read_values(code, body["a"], rows)
        if op is EltwiseOp.COPY:
            result = a
        else:
            b = self._read_values(code, body["b"], rows)
            result = {EltwiseOp.ADD: lambda: numerics.wrap_add(a, b),
                      EltwiseOp.SUB: lambda: numerics.wrap_sub(a, b),
                      EltwiseOp.RELU_MASK: lambda: relu_backward(a, b > 0)}[op]()
        self._write_values(code, body["d"], np.asarray(result, dtype=np.int64))


def _replay(insns):
    """Replay the sequencer's tokens (``isa.replay``): return which instructions run, and
    ``(index, reason)`` of a deadlock or None."""
    r = replay(insns)
    ran = [False] * len(insns)
    for i in r.order:
        ran[i] = True
    waiting = [r.queues[q][0] for q in Queue if r.queues[q]]
    if not waiting:
        return ran, None
    i = min(waiting)
    missing = [s for s in semaphores_of(insns[i])[0] if not r.sems[s]]
    return ran, (i, f"{insns[i].op.name} waits for a {'/'.join(missing)} token that no "
                    f"instruction gives")


def _dma_refusal(d, bus, buf_depth):
    """Why ``ReshapeDMA`` refuses descriptor ``d`` (its ``err_*`` checks), or None."""
    lanes = bus // 2
    counts = ("seg_beats", "seg_count", "seg_count2", "n0", "n1", "n2")
    if any(d[n] == 0 for n in counts):
        return "a count is zero (err_zero)"
    if any(d[n] % bus for n in ("dram_addr", "seg_stride", "seg_stride2")):
        return f"a DRAM address or stride is not a multiple of {bus} bytes (err_align)"
    extents = [(d["n0"] - 1) * d["s0"], (d["n1"] - 1) * d["s1"], (d["n2"] - 1) * d["s2"],
               (lanes - 1) * d["sj"] if d["corner_turn"] else 0]
    lo = d["buf_addr"] + sum(e for e in extents if e < 0)
    hi = d["buf_addr"] + sum(e for e in extents if e > 0)
    if lo < 0 or hi >= buf_depth:
        return f"the walk's rows {lo}..{hi} leave the DMA's {buf_depth} rows (err_bounds)"
    rows2 = d["n2"] - d["pad_top"] - d["pad_bottom"]
    rows1 = d["n1"] - d["pad_left"] - d["pad_right"]
    padded = any(d[n] for n in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
    walk = (d["n0"] * d["n1"] * d["n2"] * lanes if d["corner_turn"]
            else max(rows2, 0) * max(rows1, 0) * d["n0"])
    dram = d["seg_beats"] * d["seg_count"] * d["seg_count2"]
    if (rows2 <= 0 or rows1 <= 0 or padded and (d["store"] or d["corner_turn"]) or
            d["store"] and d["corner_turn"] or walk != dram):
        return (f"the walk moves {walk} beats, the DRAM side {dram}, or the padding / "
                f"corner turn is not allowed (err_length)")
    return None


def _engine_refusal(ecfg, d):
    """Why ``DescriptorCheck`` refuses engine descriptor ``d`` (its rules), or None."""
    t, bp = ecfg.tm, d["mode"] == MODES.index("bp")
    zero = [f for f in ("batch", "out_tiles", "red_tiles", "out_ch", "red_ch", "out_h",
                        "out_w", "in_h", "in_w", "kernel") if d[f] == 0]
    if zero:
        return f"{zero[0]} is zero"
    for side in ("out", "red"):
        tiles, ch = d[f"{side}_tiles"], d[f"{side}_ch"]
        if tiles * t < ch or tiles * t >= ch + t:
            return f"{side}_tiles {tiles} is not ceil({side}_ch {ch} / {t})"
    limits = ((d["kernel"] > ecfg.max_kernel, "kernel exceeds max_kernel"),
              (d["pad"] >= d["kernel"], "pad >= kernel"),
              (d["batch"] > ecfg.max_batch, "batch exceeds max_batch"),
              (max(d["out_ch"], d["red_ch"]) > ecfg.max_channels,
               "a channel count exceeds max_channels"),
              (d["stochastic"] and not ecfg.stochastic_rounding,
               "stochastic rounding in a build without it"))
    for broken, what in limits:
        if broken:
            return what
    for out, inp in (("out_h", "in_h"), ("out_w", "in_w")):
        side, result = (d[out], d[inp]) if bp else (d[inp], d[out])
        reach = (side + 2 * d["pad"] + 1 + d["stride2"] - d["kernel"]) >> d["stride2"]
        if side > ecfg.max_size or reach != result:
            return f"{out} / {inp} do not match the kernel, stride and pad (or exceed max_size)"
    extents = ((Buffer.ACT, (d["batch"] - 1) * d["act_n"] + (d["red_tiles"] - 1) *
                d["act_plane"] + d["in_h"] * d["in_w"]),
               (Buffer.OUT, (d["batch"] - 1) * d["out_n"] + (d["out_tiles"] - 1) *
                d["out_plane"] + d["out_h"] * d["out_w"]),
               (Buffer.WGT, (d["out_tiles"] - 1) * d["w_out"] + (d["red_tiles"] - 1) *
                d["w_red"] + d["kernel"] ** 2))
    for buffer, extent in extents:
        if extent > buffer.depth(ecfg):
            return f"the run reaches {buffer.name} row {extent - 1}, past its half's " \
                   f"{buffer.depth(ecfg)} rows"
    return None


class _Engine:
    """One COMPUTE on the halves ``half`` of ``machine``: the taps of the descriptor ``d``
    (``hw/engine/addrgen.py``) with the golden arithmetic."""

    def __init__(self, machine, d, half):
        self.m, self.d, self.half = machine, d, half
        self.t = machine.cfg.tm
        self.bp = d["mode"] == MODES.index("bp")
        self.s = 2 if d["stride2"] else 1
        t = self.t
        self.out_lanes = np.minimum(t, d["out_ch"] - t * np.arange(d["out_tiles"]))
        self.red_lanes = np.minimum(t, d["red_ch"] - t * np.arange(d["red_tiles"]))

    def _axis(self, out_size, in_size):
        """Per output position and kernel tap along one axis: input position, real, inb."""
        d, k = self.d, self.d["kernel"]
        o, kk = np.arange(out_size)[:, None], np.arange(k)[None, :]
        if self.bp:
            num = o + d["pad"] - kk
            real, pos = num % self.s == 0, num // self.s
        else:
            real, pos = np.ones((out_size, k), dtype=bool), o * self.s - d["pad"] + kk
        return pos, real, real & (pos >= 0) & (pos < in_size)

    def _rows(self, buffer, count, bits=LANE_BITS):
        return _lanes(self.m._half(buffer, self.half[buffer]), count, bits)

    def _inputs(self):
        """``[N, RT, OH, K, OW, K, T]`` input lanes of every tap (0 outside the input or
        past ``red_ch``) and the per-axis real taps."""
        d, t = self.d, self.t
        py, ry, iy = self._axis(d["out_h"], d["in_h"])
        px, rx, ix = self._axis(d["out_w"], d["in_w"])
        n, rt = np.arange(d["batch"]), np.arange(d["red_tiles"])
        pix = py[:, :, None, None] * d["in_w"] + px[None, None]
        inb = iy[:, :, None, None] & ix[None, None]
        addr = (n[:, None, None, None, None, None] * d["act_n"] +
                rt[None, :, None, None, None, None] * d["act_plane"] + np.where(inb, pix, 0))
        x = self._rows(Buffer.ACT, t)[addr] * inb[..., None]
        x = x * (np.arange(t) < self.red_lanes[:, None])[None, :, None, None, None, None]
        return x, ry, rx

    def _weights(self):
        """``[OT, RT, K, K, T (out lane i), T (red lane j)]`` of the weight blocks (0 past
        ``out_ch``)."""
        d, t, k = self.d, self.t, self.d["kernel"]
        ot, rt, kk = np.arange(d["out_tiles"]), np.arange(d["red_tiles"]), np.arange(k)
        addr = (ot[:, None, None, None] * d["w_out"] + rt[None, :, None, None] * d["w_red"] +
                kk[None, None, :, None] * k + kk[None, None, None, :])
        w = self._rows(Buffer.WGT, t * t)[addr].reshape(*addr.shape, t, t)
        if self.bp:
            w = w.swapaxes(-1, -2)
        keep = np.arange(t) < self.out_lanes[:, None]      # the array's a operands
        return w * keep[:, None, None, None, :, None]

    def conv(self):
        """FP / BP: requantized rows (values, ReLU mask) into ``OUT``."""
        d, t = self.d, self.t
        x, ry, rx = self._inputs()
        w = self._weights()
        acc = np.einsum("nryaxbj,orabij->noyxi", x.astype(np.float64), w.astype(np.float64),
                        optimize=True)
        acc = _wrap(np.rint(acc).astype(np.int64), self.m.ecfg.acc_bits)
        n, ot, oy, ox, i = np.ix_(*(np.arange(v) for v in acc.shape))
        index = (n * d["idx_n"] + ot * d["idx_tile"] + oy * d["out_w"] + ox + d["idx_off"] +
                 i * d["idx_lane"]) & _M32
        shift = d["shift"] - 256 if d["shift"] >= 128 else d["shift"]
        q, sat = numerics.requantize(acc, shift, rounding=self._rounding(), key=d["key"],
                                     index=index)
        q = q.astype(np.int64)
        mask = (q > 0) & bool(d["relu"])
        if d["relu"]:
            q = np.maximum(q, 0)
        out = (n * d["out_n"] + ot * d["out_plane"] + oy * d["out_w"] + ox)[..., 0].ravel()
        rows = self.m._half(Buffer.OUT, self.half[Buffer.OUT])
        for a, v in zip(out, _out_rows(q.reshape(-1, t), mask.reshape(-1, t))):
            rows[a] = v
        c = self.m._counters
        c.macs += int(d["batch"] * self.out_lanes.sum() * self.red_lanes.sum() *
                      ry.sum() * rx.sum())
        c.saturations += sat
        c.amax = max(c.amax, int(np.abs(acc).max()))

    def _rounding(self):
        return "stochastic" if self.d["stochastic"] else "nearest"

    def _block_sums(self):
        """WU: ``[OT, RT, K, K, T, T]`` exact batch-summed accumulators, and the blocks'
        weight rows in the engine's order."""
        d, t, k = self.d, self.t, self.d["kernel"]
        x, _, _ = self._inputs()
        n, ot = np.arange(d["batch"]), np.arange(d["out_tiles"])
        oy, ox = np.arange(d["out_h"]), np.arange(d["out_w"])
        addr = (n[:, None, None, None] * d["out_n"] + ot[None, :, None, None] * d["out_plane"]
                + oy[None, None, :, None] * d["out_w"] + ox[None, None, None, :])
        dy = self._rows(Buffer.OUT, t)[addr]
        dy = dy * (np.arange(t) < self.out_lanes[:, None])[None, :, None, None]
        acc = np.einsum("noyxi,nryaxbj->orabij", dy.astype(np.float64), x.astype(np.float64),
                        optimize=True)
        acc = _wrap(np.rint(acc).astype(np.int64), self.m.ecfg.acc_bits)
        rt, kk = np.arange(d["red_tiles"]), np.arange(k)
        w_addr = (ot[:, None, None, None] * d["w_out"] + rt[None, :, None, None] * d["w_red"] +
                  kk[None, None, :, None] * k + kk[None, None, None, :])
        self.m._counters.macs += int(d["batch"] * d["out_h"] * d["out_w"] * k * k *
                                     self.out_lanes.sum() * self.red_lanes.sum())
        return acc.reshape(-1, t * t), w_addr.ravel()

    def _master_rows(self, addr, count):
        """The ``MST`` rows of a block at weight row ``addr``, checked against the half."""
        mst = self.m._half(Buffer.MST, self.half[Buffer.MST])
        bits = Buffer.MST.addr_bits(self.m.ecfg)
        rows = [(addr * count + r) & ((1 << bits) - 1) for r in range(count)]
        if max(rows) >= len(mst):
            raise _Fail(None, f"MST row {max(rows)} is past the half's {len(mst)} rows "
                              f"(the hardware does not check it)")
        return mst, rows

    def gradients(self, *, accumulate, update):
        """WU (``GradWriter``: written, or added with ``accumulate``) or UPDATE (SGD, or the
        accumulators without an SGD unit) into ``MST``."""
        cfg, t = self.m.ecfg, self.t
        blocks, w_addr = self._block_sums()
        sgd = update and cfg.update_lanes
        lanes = master_lanes(cfg) if not update or sgd else t
        targets = [self._master_rows(int(addr), t * t // lanes) for addr in w_addr]
        for b, (acc, (mst, rows)) in enumerate(zip(blocks, targets)):
            words = acc.reshape(len(rows), lanes)
            if sgd:
                if self.d["partial"]:
                    words = self._with_partials(words, rows)
                self._sgd(mst, rows, words, b)
                continue
            if accumulate and not update:
                words = words + _lanes([mst[r] for r in rows], lanes, MASTER_WORD_BITS)
            for r, v in zip(rows, _ints(words, MASTER_WORD_BITS)):
                mst[r] = v

    def _with_partials(self, words, rows):
        """A block's gradient words plus the partial sums at its rows of the other ``MST``
        half, wrapped at ``acc_bits`` as the updater's adders do."""
        other = self.m._half(Buffer.MST, 1 - self.half[Buffer.MST])
        part = _lanes([other[r] for r in rows], words.shape[1], MASTER_WORD_BITS)
        bits = self.m.ecfg.acc_bits
        return _wrap(_wrap(part, bits) + words, bits)

    def _sgd(self, mst, rows, g, block):
        """One block of ``WeightUpdater``: SGD with momentum on its master rows."""
        d, t, lanes = self.d, self.t, self.m.ecfg.update_lanes
        pairs = _lanes([mst[r] for r in rows], 2 * lanes, MASTER_WORD_BITS // 2)
        master, velocity = pairs[:, 0::2], pairs[:, 1::2]
        w_red = max(d["w_red"], 1)
        kk, rest = block % w_red, block // w_red
        rt, ot = rest % d["red_tiles"], rest // d["red_tiles"]
        base = ot * t * d["w_idx_out"] + rt * t * w_red + kk + d["idx_off"]
        i, j = np.divmod(np.arange(len(rows) * lanes).reshape(len(rows), lanes), t)
        index = (base + i * d["w_idx_out"] + j * d["w_red"]) & _M32
        shift = d["shift"] - 256 if d["shift"] >= 128 else d["shift"]
        r = numerics.sgd_momentum(master, velocity, g, g_shift=shift, mu_q=d["mu_q"],
                                  lr_q=d["lr_q"], lr_shift=d["lr_shift"],
                                  rounding=self._rounding(),
                                  keys=(d["key"], d["key_v"], d["key_w"]), index=index)
        both = np.stack([r.master, r.velocity], axis=-1).reshape(len(rows), 2 * lanes)
        for row, v in zip(rows, _ints(both, MASTER_WORD_BITS // 2)):
            mst[row] = v
        self.m._counters.saturations += r.saturations
