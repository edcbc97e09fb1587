"""The device register map (the one source of truth for register addresses) and its bank.

Every register is 32 bits wide and sits behind the host bridge's register port. Host code
uses ``Register`` (fixed registers and the bases of the descriptor and counter windows).
"""

from amaranth.hdl import Module, Signal, Const
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.memport import MemoryPortSignature

__all__ = ["Register", "REG_COUNT", "WINDOW_WORDS", "DEVICE_ID", "RegisterBank",
           "info_word", "decode_info", "layout_word", "decode_layout", "words_of"]

DEVICE_ID = 0x45544731  # "ETG1"
WINDOW_WORDS = 16       # registers per window (descriptor, counters)
REG_COUNT = 48


class Register(enum.Enum, shape=6):
    """Register addresses. RO = read-only (writes are ignored), WO = write-only (reads
    return 0: the descriptor fields a build does not use then cost no flip-flops)."""
    ID = 0          # RO  DEVICE_ID
    INFO = 1        # RO  tm | tn << 8 | log2(dram words) << 16 | 16 << 24
    SCRATCH = 2     # RW  free for the host (link test)
    CYCLES = 3      # RO  free-running clock cycle counter
    STARTS = 4      # RO  number of START frames accepted
    LEDS = 5        # RW  bits 0..3 light user LEDs (where the board has them)
    LAYOUT = 6      # RO  descriptor words | counter words << 8 | engine present << 16
    DESC = 16       # WO  window: the engine descriptor, 32 bits per register, LSB first
    COUNTERS = 32   # RO  window: the engine counters (valid when not busy), LSB first


def words_of(bits):
    return -(-bits // 32)


def info_word(*, tm, tn, dram_depth):
    """Return the INFO register value of a device."""
    return tm | tn << 8 | (dram_depth - 1).bit_length() << 16 | 16 << 24


def decode_info(word):
    """Return the fields of an INFO register value as a dict."""
    return {"tm": word & 0xFF, "tn": word >> 8 & 0xFF, "dram_depth": 1 << (word >> 16 & 0xFF),
            "mem_data_bits": word >> 24}


def layout_word(*, desc_bits, counter_bits, engine):
    return words_of(desc_bits) | words_of(counter_bits) << 8 | int(engine) << 16


def decode_layout(word):
    return {"desc_words": word & 0xFF, "counter_words": word >> 8 & 0xFF,
            "engine": bool(word >> 16 & 1)}


class RegisterBank(wiring.Component):
    """The device registers behind a ``MemoryPortSignature`` port (always ready).

    ``info``/``layout``: constant INFO and LAYOUT values. ``start`` counts into STARTS.
    ``leds``: the LEDS register. ``desc``: the DESC window (``desc_bits``, written by the
    host, not readable). ``counters``: shown in the COUNTERS window (``counter_bits``).
    """

    def __init__(self, *, info, desc_bits=0, counter_bits=0):
        for name, bits in (("desc_bits", desc_bits), ("counter_bits", counter_bits)):
            if not isinstance(bits, int) or not 0 <= bits <= 32 * WINDOW_WORDS:
                raise ValueError(f"{name} must be in 0..{32 * WINDOW_WORDS}, not {bits!r}")
        self._info = info
        self._layout = layout_word(desc_bits=desc_bits, counter_bits=counter_bits,
                                   engine=desc_bits > 0)
        super().__init__({
            "port": In(MemoryPortSignature(addr_bits=(REG_COUNT - 1).bit_length(),
                                           data_bits=32)),
            "start": In(1),
            "leds": Out(4),
            "desc": Out(max(desc_bits, 1)),
            "counters": In(max(counter_bits, 1)),
        })
        self._desc_bits, self._counter_bits = desc_bits, counter_bits

    def elaborate(self, platform):
        m = Module()
        scratch, cycles, starts = Signal(32), Signal(32), Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        with m.If(self.start):
            m.d.sync += starts.eq(starts + 1)
        readable = {Register.ID.value: Const(DEVICE_ID, 32),
                    Register.INFO.value: Const(self._info, 32),
                    Register.SCRATCH.value: scratch, Register.CYCLES.value: cycles,
                    Register.STARTS.value: starts, Register.LEDS.value: self.leds,
                    Register.LAYOUT.value: Const(self._layout, 32)}
        writable = {Register.SCRATCH.value: scratch, Register.LEDS.value: self.leds}
        for i in range(words_of(self._desc_bits)):
            word = self.desc.word_select(i, 32)
            writable[Register.DESC.value + i] = word
        for i in range(words_of(self._counter_bits)):
            readable[Register.COUNTERS.value + i] = self.counters.word_select(i, 32)
        m.d.comb += self.port.ready.eq(1)
        with m.If(self.port.r_en):
            with m.Switch(self.port.addr):
                for addr, value in readable.items():
                    with m.Case(addr):
                        m.d.sync += self.port.r_data.eq(value)
                with m.Default():
                    m.d.sync += self.port.r_data.eq(0)
        with m.If(self.port.w_en):
            with m.Switch(self.port.addr):
                for addr, target in writable.items():
                    with m.Case(addr):
                        m.d.sync += target.eq(self.port.w_data)
        return m
