"""Buffer banks: each on-chip buffer as two ping-pong halves behind two requester ports.

A ``BufferBank`` holds one ``Buffer`` of the accelerator as two physical memories (halves)
of ``half_depth(cfg, buffer)`` rows each: ``SRAMBuffer`` halves when the config's policy for
the buffer is ``none`` (always for ``MST``), else ``EDRAMBuffer`` halves refreshed under that
policy (``retention_cycles``, ``edram_banks`` and ``decay_injection`` from the config).

Both ports, ``compute`` (the engine and the other compute units) and ``dma`` (the DMA side,
see ``hw/accel/beats.py``), are ``MemoryPortSignature`` ports of full rows addressed
``{half, row}``: the address MSB picks the half, the bits below it the row in the half
(``bank_addr_bits(cfg, buffer)`` wide in all). Requests to different halves run in the same
cycle. When both ports request the same half in one cycle, ``compute`` wins and ``dma``
sees ``ready`` low (it holds its request, as the port contract says). A half that refreshes
makes the port addressing it wait the same way. ``MST``'s ``compute`` port also adds
(``w_add``, 64-bit words: ``MemoryPortSignature``), for WU gradients summed over batch tiles.
"""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers.edram import COUNTER_BITS, EDRAMBuffer
from edgetrain.hw.buffers.kinds import MASTER_WORD_BITS, Buffer, master_rows_per_block
from edgetrain.hw.buffers.memport import MemoryPortSignature, SRAMBuffer
from edgetrain.hw.config import AcceleratorConfig

__all__ = ["BufferBank", "COUNTERS_LAYOUT", "HALVES", "bank_addr_bits", "half_depth"]

#: Halves of every bank (ping and pong); the address MSB selects one.
HALVES = 2

#: The bank's counters, each summed over both halves (zero for SRAM halves).
COUNTERS_LAYOUT = data.StructLayout({"refreshes": COUNTER_BITS, "stall_cycles": COUNTER_BITS,
                                     "violations": COUNTER_BITS})


def half_depth(cfg, buffer):
    """Return the rows of one half of ``buffer``'s bank in configuration ``cfg``.

    Raise ``ConfigError`` naming the depth field and the fix unless the buffer's depth is
    even and each half has at least 2 rows.
    """
    depth = buffer.depth(cfg)
    if depth % HALVES == 0 and depth // HALVES >= 2:
        return depth // HALVES
    if buffer is Buffer.MST:
        rows = master_rows_per_block(cfg)
        raise ConfigError(f"the master buffer's {depth} rows (weight_depth {cfg.weight_depth} "
                          f"x {rows} rows per block) cannot be split into two ping-pong halves "
                          f"of >= 2 rows: set weight_depth to an even number >= "
                          f"{max(2, -(-4 // rows))}")
    raise ConfigError(f"{buffer.depth_field} {depth} cannot be split into two ping-pong "
                      f"halves of >= 2 rows: set {buffer.depth_field} to an even number >= 4")


def bank_addr_bits(cfg, buffer):
    """Return the width of a ``{half, row}`` address of ``buffer``'s bank."""
    return max(1, (half_depth(cfg, buffer) - 1).bit_length()) + 1


def _sram_halves(cfg, buffer):
    """Return whether ``buffer``'s halves are SRAM; raise ``ConfigError`` unless each
    eDRAM-style half is a whole number of ``edram_banks`` banks."""
    if cfg.policy(buffer) == "none":
        return True
    rows = half_depth(cfg, buffer)
    if rows % cfg.edram_banks:
        raise ConfigError(f"{buffer.depth_field} {buffer.depth(cfg)}: each ping-pong half of "
                          f"the eDRAM-style {buffer.port_name} buffer ({rows} rows) must be a "
                          f"multiple of edram_banks {cfg.edram_banks}: set "
                          f"{buffer.depth_field} to a multiple of "
                          f"{HALVES * cfg.edram_banks} or lower edram_banks")
    return False


def _add_words(buffer):
    """The word width of the adds ``buffer``'s compute port makes (``MST`` only), or None."""
    return MASTER_WORD_BITS if buffer is Buffer.MST else None


def _halves(cfg, buffer):
    """Build the two halves of ``buffer``'s bank."""
    rows, bits, policy = half_depth(cfg, buffer), buffer.row_bits(cfg), cfg.policy(buffer)
    if policy == "none":
        return [SRAMBuffer(depth=rows, data_bits=bits, lane_writes=True,
                           add_words=_add_words(buffer))
                for _ in range(HALVES)]
    return [EDRAMBuffer(depth=rows, data_bits=bits, retention_cycles=cfg.retention_cycles,
                        policy=policy, banks=cfg.edram_banks,
                        decay_injection=cfg.decay_injection)
            for _ in range(HALVES)]


class BufferBank(wiring.Component):
    """One ``Buffer`` of configuration ``config`` as two halves and two ports.

    Parameters (keyword-only): ``config`` (an ``AcceleratorConfig``), ``buffer`` (a
    ``Buffer``).

    Members
        ``compute``, ``dma``: ``MemoryPortSignature`` ports (flipped: the bank answers them)
        of ``bank_addr_bits`` address and ``buffer.row_bits(config)`` data bits. ``compute``
        has lane writes (``w_lanes``) when the halves are SRAM (``lane_writes``), and adds
        (``w_add``) for ``MST``; ``dma`` writes whole rows. Each port's ``r_data`` is the
        row of its own last accepted read, one cycle after acceptance, held until its next
        accepted read (whatever the other port reads meanwhile).
        ``counters`` (out, ``COUNTERS_LAYOUT``): refreshes, stall cycles and violations of
        the halves, summed; a port that waits for the other one is not a stall cycle here.
        ``release`` (in, a bit per half): release every row of that half (``EDRAMBuffer``'s
        ``release``: ``live`` stops refreshing its dead data; SRAM halves ignore it).
    """

    def __init__(self, *, config, buffer):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if not isinstance(buffer, Buffer):
            raise TypeError(f"buffer must be a Buffer, not {buffer!r}")
        self._cfg, self._buffer = config, buffer
        self._sram = _sram_halves(config, buffer)
        addr_bits, row_bits = bank_addr_bits(config, buffer), buffer.row_bits(config)
        super().__init__({
            "compute": In(MemoryPortSignature(addr_bits=addr_bits, data_bits=row_bits,
                                              lane_writes=self._sram,
                                              add_words=_add_words(buffer))),
            "dma": In(MemoryPortSignature(addr_bits=addr_bits, data_bits=row_bits)),
            "counters": Out(COUNTERS_LAYOUT),
            "release": In(HALVES),
        })

    config = property(lambda self: self._cfg)
    buffer = property(lambda self: self._buffer)
    lane_writes = property(lambda self: self._sram)

    @property
    def half_depth(self):
        return half_depth(self._cfg, self._buffer)

    def elaborate(self, platform):
        m = Module()
        c, d = self.compute, self.dma
        halves = _halves(self._cfg, self._buffer)
        ports = [half.port for half in halves]
        for h, half in enumerate(halves):
            m.submodules[f"half{h}"] = half
            if not self._sram:
                m.d.comb += half.release.eq(self.release[h])
        c_half, d_half = c.addr[-1], d.addr[-1]
        c_wants = c.r_en | c.w_en
        for h, port in enumerate(ports):
            self._drive_half(m, port, c_owns=c_wants & (c_half == h), d_here=d_half == h)
        ready = Array(port.ready for port in ports)
        m.d.comb += [c.ready.eq(ready[c_half]),
                     d.ready.eq(ready[d_half] & ~(c_wants & (c_half == d_half)))]
        datas = [port.r_data for port in ports]
        self._hold_reads(m, c, c_half, datas, "compute")
        self._hold_reads(m, d, d_half, datas, "dma")
        self._sum_counters(m, halves)
        return m

    def _drive_half(self, m, port, *, c_owns, d_here):
        """Give the half's ``port`` to ``compute`` if it requests this half, else to ``dma``
        (whose request counts only if it addresses this half)."""
        c, d = self.compute, self.dma
        row = len(port.addr)
        for f in ("addr", "w_data", "r_last"):
            src_c, src_d = getattr(c, f), getattr(d, f)
            if f == "addr":
                src_c, src_d = src_c[:row], src_d[:row]
            m.d.comb += getattr(port, f).eq(Mux(c_owns, src_c, src_d))
        for f in ("r_en", "w_en"):
            m.d.comb += getattr(port, f).eq(Mux(c_owns, getattr(c, f), getattr(d, f) & d_here))
        if self._sram:
            m.d.comb += port.w_lanes.eq(Mux(c_owns, c.w_lanes, (1 << len(c.w_lanes)) - 1))
        if _add_words(self._buffer):
            m.d.comb += port.w_add.eq(c_owns & c.w_add)

    @staticmethod
    def _hold_reads(m, port, half, datas, name):
        """Drive ``port.r_data``: the accepting half's row in the cycle after an accepted
        read, then a copy of it until the port's next accepted read (the other port may
        read that half meanwhile)."""
        fresh = Signal(name=f"{name}_fresh")
        source = Signal(range(HALVES), name=f"{name}_source")
        held = Signal.like(port.r_data, name=f"{name}_held")
        arrived = Signal.like(port.r_data, name=f"{name}_arrived")
        m.d.comb += arrived.eq(Array(datas)[source])
        m.d.sync += fresh.eq(port.r_en & port.ready)
        with m.If(port.r_en & port.ready):
            m.d.sync += source.eq(half)
        with m.If(fresh):
            m.d.sync += held.eq(arrived)
        m.d.comb += port.r_data.eq(Mux(fresh, arrived, held))

    def _sum_counters(self, m, halves):
        """Drive ``counters`` with the halves' counters, summed (zero for SRAM halves)."""
        if self._sram:
            return
        for name in ("refreshes", "stall_cycles", "violations"):
            total = sum(getattr(half, name) for half in halves)
            m.d.comb += getattr(self.counters, name).eq(total[:COUNTER_BITS])
