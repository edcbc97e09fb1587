"""The board-independent device: UART, host bridge, registers, memory and status LEDs.

``DeviceCore`` is what a board top instantiates and what the bridge testbench simulates. The
accelerator plugs in as more registers and memory ports behind the same bridge; until the
conv engine exists, the memory is a plain buffer the host reads and writes.
"""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..hw.bridge import HostBridge, Status
from ..hw.memport import SRAMBuffer
from ..hw.uart import UartRx, UartTx, check_divisor
from .registers import Register, RegisterBank, info_word

__all__ = ["DeviceCore", "STATUS_BITS"]

# The STATUS frame's word: engine flags, then the bridge's error bookkeeping.
STATUS_BITS = {"busy": 0, "done": 1, "last_error": 4, "frame_errors": 16}


class DeviceCore(wiring.Component):
    """A device that a host drives over a UART through the framed ``HostBridge``.

    Parameters (keyword-only): ``config`` (an ``AcceleratorConfig``: reported in INFO),
    ``divisor`` (clock cycles per UART bit), ``mem_depth`` words of 16 bits, ``max_words``
    per memory frame, ``timeout_cycles`` ending a stalled frame, and ``memory``: ``None`` for
    an ``SRAMBuffer`` (block RAM) or a component with a ``port`` member of the bridge's
    memory-port signature (e.g. iCE40 SPRAM).

    Members: ``uart_rx``/``uart_tx`` serial lines (idle high); ``leds``: 0 heartbeat,
    1 bridge busy, 2 an errored frame was seen, 3 engine busy, 4..7 the LEDS register.
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(8)

    def __init__(self, *, config, divisor, mem_depth=1024, max_words=64,
                 timeout_cycles=None, memory=None, heartbeat_bits=24):
        self._config = config
        self._divisor = check_divisor(divisor)
        self._mem_depth, self._max_words = mem_depth, max_words
        # Default: a frame stalls after 64 byte times of silence.
        self._timeout = timeout_cycles or divisor * 10 * 64
        self._memory = memory
        self._heartbeat_bits = heartbeat_bits
        self.bridge = HostBridge(reg_count=len(Register), mem_depth=mem_depth,
                                 mem_data_bits=16, max_words=max_words,
                                 timeout_cycles=self._timeout)
        super().__init__()

    @property
    def info(self):
        return info_word(tm=self._config.tm, tn=self._config.tn, mem_depth=self._mem_depth,
                         mem_data_bits=16)

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UartRx(divisor=self._divisor)
        m.submodules.uart_tx = tx = UartTx(divisor=self._divisor)
        m.submodules.bridge = bridge = self.bridge
        m.submodules.registers = regs = RegisterBank(info=self.info)
        mem = self._memory or SRAMBuffer(depth=self._mem_depth, data_bits=16)
        m.submodules.memory = mem
        wiring.connect(m, rx.bytes, bridge.rx)
        wiring.connect(m, bridge.tx, tx.bytes)
        wiring.connect(m, bridge.reg, regs.port)
        wiring.connect(m, bridge.mem, mem.port)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx),
                     regs.start.eq(bridge.start)]

        engine_busy, done = Signal(), Signal()
        with m.If(bridge.start):
            # No engine yet: a start completes at once.
            m.d.sync += done.eq(1)
        m.d.comb += bridge.status.eq(Cat(engine_busy, done, Signal(2),
                                         bridge.last_error.as_value(), Signal(9),
                                         bridge.frame_errors))
        heartbeat = Signal(self._heartbeat_bits)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += self.leds.eq(Cat(heartbeat[-1], bridge.busy,
                                     bridge.last_error != Status.OK, engine_busy, regs.leds))
        return m
