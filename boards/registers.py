"""The device register map (the one source of truth for register addresses) and its bank.

Every register is 32 bits wide and sits behind the host bridge's register port. The host
constants are ``Register`` itself (``edgetrain.boards.registers.Register.SCRATCH`` etc.).
"""

from amaranth.hdl import Module, Signal, Const
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..hw.memport import MemoryPortSignature

__all__ = ["Register", "DEVICE_ID", "RegisterBank", "info_word", "decode_info"]

DEVICE_ID = 0x45544731  # "ETG1"


class Register(enum.Enum, shape=3):
    """Register addresses. RO = read-only (writes are ignored)."""
    ID = 0        # RO  DEVICE_ID
    INFO = 1      # RO  tm | tn << 8 | log2(mem_depth) << 16 | mem_data_bits << 24
    SCRATCH = 2   # RW  free for the host (link test)
    CYCLES = 3    # RO  free-running clock cycle counter
    STARTS = 4    # RO  number of START frames accepted
    LEDS = 5      # RW  bits 0..3 light user LEDs (where the board has them)


def info_word(*, tm, tn, mem_depth, mem_data_bits):
    """Return the INFO register value of a device."""
    return tm | tn << 8 | (mem_depth - 1).bit_length() << 16 | mem_data_bits << 24


def decode_info(word):
    """Return the fields of an INFO register value as a dict."""
    return {"tm": word & 0xFF, "tn": word >> 8 & 0xFF, "mem_depth": 1 << (word >> 16 & 0xFF),
            "mem_data_bits": word >> 24}


class RegisterBank(wiring.Component):
    """The device registers behind a ``MemoryPortSignature`` port (always ready).

    ``info`` is the constant INFO value; ``start`` counts into STARTS; ``leds`` is the LEDS
    register.
    """

    port: In(MemoryPortSignature(addr_bits=(len(Register) - 1).bit_length(), data_bits=32))
    start: In(1)
    leds: Out(4)

    def __init__(self, *, info):
        if not isinstance(info, int) or not 0 <= info < 1 << 32:
            raise ValueError(f"info must be a 32-bit unsigned integer, not {info!r}")
        self._info = info
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        scratch, cycles, starts = Signal(32), Signal(32), Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        with m.If(self.start):
            m.d.sync += starts.eq(starts + 1)
        values = {Register.ID: Const(DEVICE_ID, 32), Register.INFO: Const(self._info, 32),
                  Register.SCRATCH: scratch, Register.CYCLES: cycles,
                  Register.STARTS: starts, Register.LEDS: self.leds}
        m.d.comb += self.port.ready.eq(1)
        with m.If(self.port.r_en):
            with m.Switch(self.port.addr):
                for reg, value in values.items():
                    with m.Case(reg):
                        m.d.sync += self.port.r_data.eq(value)
                with m.Default():
                    m.d.sync += self.port.r_data.eq(0)
        with m.If(self.port.w_en):
            with m.Switch(self.port.addr):
                with m.Case(Register.SCRATCH):
                    m.d.sync += scratch.eq(self.port.w_data)
                with m.Case(Register.LEDS):
                    m.d.sync += self.leds.eq(self.port.w_data)
        return m
