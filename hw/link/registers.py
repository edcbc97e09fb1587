"""The device register map (the one source of truth for register addresses) and its bank.

Every register is 32 bits wide and sits behind the host bridge's register port. Host code
uses ``Register`` (fixed registers and the bases of the descriptor and counter windows).
The words with fields have one ``amaranth.lib.data`` layout each, which the bank builds its
constant from and the host decodes with (``decode_word``): ``INFO_WORD`` and
``LAYOUT_WORD`` here, ``STATUS_WORD`` in ``device``.
"""

from amaranth.hdl import Module, Signal, Const
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.memport import MemoryPortSignature

__all__ = ["Register", "REGISTER_BITS", "REG_COUNT", "WINDOW_WORDS", "DEVICE_ID", "RegisterBank",
           "INFO_WORD", "LAYOUT_WORD", "info_word", "decode_info", "layout_word",
           "decode_layout", "decode_word", "words_of"]

REGISTER_BITS = 32
DEVICE_ID = 0x45544731  # "ETG1"
WINDOW_WORDS = 16       # registers per window (descriptor, counters)
REG_COUNT = 48


class Register(enum.Enum, shape=6):
    """Register addresses. RO = read-only (writes are ignored), WO = write-only (reads
    return 0: the descriptor fields a build does not use then cost no flip-flops)."""
    ID = 0          # RO  DEVICE_ID
    INFO = 1        # RO  INFO_WORD: tm, tn, log2(dram words), memory word bits
    SCRATCH = 2     # RW  free for the host (link test)
    CYCLES = 3      # RO  free-running clock cycle counter
    STARTS = 4      # RO  number of START frames accepted
    LEDS = 5        # RW  bits 0..3 light user LEDs (where the board has them)
    LAYOUT = 6      # RO  LAYOUT_WORD: descriptor words, counter words, engine present
    DESC = 16       # WO  window: the engine descriptor, 32 bits per register, LSB first
    COUNTERS = 32   # RO  window: the engine counters (valid when not busy), LSB first


#: INFO: the array size, the DRAM stand-in's address bits and the memory word width.
INFO_WORD = data.StructLayout({"tm": 8, "tn": 8, "dram_addr_bits": 8, "mem_data_bits": 8})
#: LAYOUT: registers of the descriptor and counter windows in use; an engine is present.
LAYOUT_WORD = data.StructLayout({"desc_words": 8, "counter_words": 8, "engine": 1})


def words_of(bits):
    """Return the 32-bit registers that hold ``bits`` bits."""
    return -(-bits // REGISTER_BITS)


def decode_word(layout, word):
    """Return ``{field: value}`` of the register value ``word`` read as ``layout``."""
    view = layout.from_bits(word)
    return {name: view[name] for name, _ in layout}


def info_word(*, tm, tn, dram_depth):
    """Return the INFO register constant (an ``INFO_WORD`` const) of a device."""
    return INFO_WORD.const({"tm": tm, "tn": tn, "dram_addr_bits": (dram_depth - 1).bit_length(),
                            "mem_data_bits": 16})


def decode_info(word):
    """Return the fields of an INFO register value as a dict (``dram_depth`` in words)."""
    fields = decode_word(INFO_WORD, word)
    return {"tm": fields["tm"], "tn": fields["tn"], "dram_depth": 1 << fields["dram_addr_bits"],
            "mem_data_bits": fields["mem_data_bits"]}


def layout_word(*, desc_bits, counter_bits, engine):
    """Return the LAYOUT register constant (a ``LAYOUT_WORD`` const)."""
    return LAYOUT_WORD.const({"desc_words": words_of(desc_bits),
                              "counter_words": words_of(counter_bits), "engine": int(engine)})


def decode_layout(word):
    """Return the fields of a LAYOUT register value as a dict (``engine`` a bool)."""
    fields = decode_word(LAYOUT_WORD, word)
    return fields | {"engine": bool(fields["engine"])}


class RegisterBank(wiring.Component):
    """The device registers behind a ``MemoryPortSignature`` port (always ready).

    ``info``: the INFO constant (``info_word``); the LAYOUT constant follows from the
    widths. ``start`` counts into STARTS.
    ``leds``: the LEDS register. ``desc``: the DESC window (``desc_bits``, written by the
    host, not readable). ``counters``: shown in the COUNTERS window (``counter_bits``).
    """

    def __init__(self, *, info, desc_bits=0, counter_bits=0):
        for name, bits in (("desc_bits", desc_bits), ("counter_bits", counter_bits)):
            if not isinstance(bits, int) or not 0 <= bits <= REGISTER_BITS * WINDOW_WORDS:
                raise ValueError(f"{name} must be in 0..{REGISTER_BITS * WINDOW_WORDS}, "
                                 f"not {bits!r}")
        self._info = info
        self._layout = layout_word(desc_bits=desc_bits, counter_bits=counter_bits,
                                   engine=desc_bits > 0)
        super().__init__({
            "port": In(MemoryPortSignature(addr_bits=(REG_COUNT - 1).bit_length(),
                                           data_bits=REGISTER_BITS)),
            "start": In(1),
            "leds": Out(4),
            "desc": Out(max(desc_bits, 1)),
            "counters": In(max(counter_bits, 1)),
        })
        self._desc_bits, self._counter_bits = desc_bits, counter_bits

    def elaborate(self, platform):
        m = Module()
        scratch, cycles, starts = (Signal(REGISTER_BITS), Signal(REGISTER_BITS),
                                   Signal(REGISTER_BITS))
        m.d.sync += cycles.eq(cycles + 1)
        with m.If(self.start):
            m.d.sync += starts.eq(starts + 1)
        readable = {Register.ID.value: Const(DEVICE_ID, REGISTER_BITS),
                    Register.INFO.value: self._info,
                    Register.SCRATCH.value: scratch, Register.CYCLES.value: cycles,
                    Register.STARTS.value: starts, Register.LEDS.value: self.leds,
                    Register.LAYOUT.value: self._layout}
        writable = {Register.SCRATCH.value: scratch, Register.LEDS.value: self.leds}
        for i in range(words_of(self._desc_bits)):
            word = self.desc.word_select(i, REGISTER_BITS)
            writable[Register.DESC.value + i] = word
        for i in range(words_of(self._counter_bits)):
            readable[Register.COUNTERS.value + i] = self.counters.word_select(i, REGISTER_BITS)
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
