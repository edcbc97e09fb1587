"""The DMA side of a buffer bank in bus beats: the buffer rows a ``ReshapeDMA`` addresses.

The DMA moves ``axi_data_bits``-wide beats (``axi_data_bits // 16`` int16 lanes). A bank row
holds ``beat_ratio(cfg, buffer)`` beats (a power of two): beat row ``a`` is slot
``a % ratio`` of bank row ``a // ratio``, so a beat address is ``{half, row, slot}``,
``beat_addr_bits`` wide, and the half stays its MSB. ``OUT`` rows carry ``T`` int16 values
then ``T`` ReLU-mask bits; the DMA moves the values only (``moved_bits``): a store reads the
value lanes (the mask bits are dropped), a load writes the values with mask bits 0.

The beat rows of a buffer are its *window* (``in_window``): both halves' rows, the upper
half starting at ``1 << (beat_addr_bits - 1)``. ``beat_depth`` is one past its last row, the
``buf_depth`` a ``ReshapeDMA`` addressing that buffer alone gets. When ``half_depth`` is a
power of two the window is ``0 .. beat_depth - 1`` (``depth * ratio`` rows); otherwise the
rows between the lower half's end and the upper half's start are outside it.
"""

from amaranth.hdl import Module, ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.lanes import LANE_BITS
from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.rows import WideRowAdapter
from .banks import bank_addr_bits, half_depth

__all__ = ["BeatPort", "beat_addr_bits", "beat_depth", "beat_ratio", "beat_row", "in_window",
           "moved_bits"]


def moved_bits(cfg, buffer):
    """Return the bits of a ``buffer`` row the DMA moves (``OUT``: the values, no mask)."""
    if buffer is Buffer.OUT:
        return LANE_BITS * cfg.tm
    return buffer.row_bits(cfg)


def _sizing_field(cfg, buffer):
    """The config field that sets the width of ``buffer``'s rows."""
    if buffer is Buffer.MST:
        return "update_lanes" if cfg.update_lanes else "tn"
    return "tm"


def beat_ratio(cfg, buffer):
    """Return the bus beats in one row of ``buffer`` (a power of two >= 1).

    Raise ``ConfigError`` naming the fields and the fix when a row is narrower than a beat
    or not a power-of-two number of beats.
    """
    moved, beat = moved_bits(cfg, buffer), cfg.axi_data_bits
    field = _sizing_field(cfg, buffer)
    where = f"{buffer.port_name} buffer rows move {moved} bits ({field} {getattr(cfg, field)})"
    if moved < beat:
        raise ConfigError(f"{where}, less than one axi_data_bits {beat} bus beat: choose "
                          f"axi_data_bits <= {moved} or a larger {field}")
    ratio = moved // beat
    if moved % beat or ratio & (ratio - 1):
        raise ConfigError(f"{where}, {moved / beat:g} axi_data_bits {beat} bus beats, not a "
                          f"power of two (a beat address's low bits are the slot): choose a "
                          f"power-of-two {field}")
    return ratio


def beat_addr_bits(cfg, buffer):
    """Return the width of a ``{half, row, slot}`` beat address of ``buffer``."""
    return bank_addr_bits(cfg, buffer) + beat_ratio(cfg, buffer).bit_length() - 1


def beat_depth(cfg, buffer):
    """Return one past the last beat row of ``buffer`` (see the module docstring)."""
    upper = 1 << (beat_addr_bits(cfg, buffer) - 1)
    return upper + half_depth(cfg, buffer) * beat_ratio(cfg, buffer)


def beat_row(cfg, buffer, half, row):
    """Return the beat address of the first beat of bank row ``row`` in ``half`` (host side:
    a DMA descriptor's ``buf_addr``)."""
    if half not in (0, 1) or not 0 <= row < half_depth(cfg, buffer):
        raise ConfigError(f"{buffer.name} has halves 0 and 1 of {half_depth(cfg, buffer)} rows, "
                          f"not half {half!r} row {row!r}")
    return (half << (beat_addr_bits(cfg, buffer) - 1)) + row * beat_ratio(cfg, buffer)


def in_window(cfg, buffer, addr):
    """Return an expression: the beat address ``addr`` (any width) is a row of ``buffer``."""
    low_bits = beat_addr_bits(cfg, buffer) - 1
    half_rows = half_depth(cfg, buffer) * beat_ratio(cfg, buffer)
    return (addr[low_bits:] <= 1) & (addr[:low_bits] < half_rows)


class BeatPort(wiring.Component):
    """Present the ``dma`` port of ``buffer``'s ``BufferBank`` as rows of one bus beat.

    Parameters (keyword-only): ``config`` (an ``AcceleratorConfig``), ``buffer`` (a
    ``Buffer``).

    Members
        ``beat``: ``MemoryPortSignature(addr_bits=beat_addr_bits, data_bits=axi_data_bits)``
        (flipped: the DMA side drives it). Addresses must be in the window (``in_window``);
        ``DMACrossbar`` refuses the others before they get here.
        ``bank``: drives the bank's ``dma`` port (``wiring.connect(m, port.bank, bank.dma)``).
        ``error`` (out): sticky; a write to another bank row came before all ``beat_ratio``
        slots of the current one were written (``WideRowAdapter``'s rule).
        ``clear`` (in): forget the collected slots and clear ``error`` (between transfers).

    Timing: a read is one bank read (data one cycle after acceptance, held until the next
    accepted read); a write costs no extra cycle: the slots of a bank row are collected and
    the row is written together with its last slot, so until then a read of the row returns
    its old contents.
    """

    def __init__(self, *, config, buffer):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if not isinstance(buffer, Buffer):
            raise TypeError(f"buffer must be a Buffer, not {buffer!r}")
        self._cfg, self._buffer = config, buffer
        self._ratio = beat_ratio(config, buffer)
        super().__init__({
            "beat": In(MemoryPortSignature(addr_bits=beat_addr_bits(config, buffer),
                                           data_bits=config.axi_data_bits)),
            "bank": Out(MemoryPortSignature(addr_bits=bank_addr_bits(config, buffer),
                                            data_bits=buffer.row_bits(config))),
            "error": Out(1), "clear": In(1),
        })

    config = property(lambda self: self._cfg)
    buffer = property(lambda self: self._buffer)
    ratio = property(lambda self: self._ratio)

    @property
    def depth(self):
        """One past the last beat row (``beat_depth``)."""
        return beat_depth(self._cfg, self._buffer)

    def elaborate(self, platform):
        m = Module()
        cfg, bank = self._cfg, self.bank
        rows = WideRowAdapter(narrow_bits=cfg.axi_data_bits, ratio=self._ratio,
                              wide_addr_bits=len(bank.addr))
        m.submodules.rows = ResetInserter(self.clear)(rows)
        wiring.connect(m, wiring.flipped(self.beat), rows.narrow)
        wide = rows.wide
        m.d.comb += [
            bank.addr.eq(wide.addr), bank.r_en.eq(wide.r_en), bank.r_last.eq(wide.r_last),
            bank.w_en.eq(wide.w_en),
            # OUT: the ReLU-mask bits above the values are written 0 (zero extension).
            bank.w_data.eq(wide.w_data),
            wide.r_data.eq(bank.r_data[:len(wide.r_data)]),
            wide.ready.eq(bank.ready),
            self.error.eq(rows.error),
        ]
        return m
