"""The board-independent device: UART, host bridge, registers, memory map, engine, LEDs.

``DeviceCore`` is what a board top instantiates and what the bridge testbench simulates. The
conv engine (``hw.engine.tile.ConvEngineTile``) plugs in as registers (the descriptor and
the counters windows, START, busy and the descriptor error in STATUS) and memory regions (one
per ``Buffer``); region 0 is a plain 16-bit memory standing in for the DRAM.
"""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.memport import SRAMBuffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.tile import ConvEngineTile
from .bridge import HostBridge, Status
from .memmap import HostMemoryMap, Region
from .registers import REG_COUNT, RegisterBank, info_word
from .uart import UartRx, UartTx, check_divisor

__all__ = ["DeviceCore", "STATUS_WORD", "device_regions"]

#: The STATUS frame's word: engine flags, then the bridge's error bookkeeping.
STATUS_WORD = data.FlexibleLayout(32, {
    "busy": data.Field(1, 0), "done": data.Field(1, 1), "bad_access": data.Field(1, 2),
    "engine_error": data.Field(1, 3), "last_error": data.Field(Status, 4),
    "frame_errors": data.Field(16, 16)})


def device_regions(config, *, dram_depth, engine):
    """Return the memory ``Region`` list of a device (region i starts at word i << 20).

    Region 0 is the DRAM stand-in (``"dram"``); then, with ``engine``, one region per
    ``Buffer`` in its order, named ``Buffer.port_name``, of the buffer's depth and row width,
    with lane writes as the tile's host ports have.
    """
    regions = [Region("dram", depth=dram_depth, data_bits=16)]
    if engine:
        regions += [Region(b.port_name, depth=b.depth(config), data_bits=b.row_bits(config),
                           lane_writes=True) for b in Buffer]
    return regions


class DeviceCore(wiring.Component):
    """A device that a host drives over a UART through the framed ``HostBridge``.

    Parameters (keyword-only): ``config`` (an ``AcceleratorConfig``), ``divisor`` (clock
    cycles per UART bit), ``dram_depth`` 16-bit words of region 0, ``engine`` (include the
    conv engine), ``max_words`` per memory frame, ``timeout_cycles`` ending a stalled frame,
    ``dram``: ``None`` for an ``SRAMBuffer`` or a component with a matching ``port`` (e.g.
    iCE40 SPRAM), ``buffer_factory``: the engine tile's buffer factory (``None``: SRAM).

    Members: ``uart_rx``/``uart_tx`` serial lines (idle high); ``leds``: 0 heartbeat,
    1 bridge busy, 2 an errored frame was seen, 3 engine busy, 4..7 the LEDS register.
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(8)

    def __init__(self, *, config, divisor, dram_depth=1024, engine=True, max_words=64,
                 timeout_cycles=None, dram=None, buffer_factory=None, heartbeat_bits=24):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        if not isinstance(heartbeat_bits, int) or heartbeat_bits < 1:
            raise ValueError(f"heartbeat_bits must be a positive integer, not "
                             f"{heartbeat_bits!r}")
        self._config = config
        self._divisor = check_divisor(divisor)
        self._dram_depth, self._dram = dram_depth, dram
        self._tile = None
        if engine:
            kwargs = {"buffer_factory": buffer_factory} if buffer_factory else {}
            self._tile = ConvEngineTile(config=config, **kwargs)
        self._heartbeat_bits = heartbeat_bits
        self.regions = device_regions(config, dram_depth=dram_depth, engine=engine)
        self.memory_map = HostMemoryMap(regions=self.regions)
        # Default: a frame stalls after 64 byte times of silence.
        self.bridge = HostBridge(reg_count=REG_COUNT, mem_depth=self.memory_map.words,
                                 mem_data_bits=16, max_words=max_words,
                                 timeout_cycles=timeout_cycles or divisor * 10 * 64)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UartRx(divisor=self._divisor)
        m.submodules.uart_tx = tx = UartTx(divisor=self._divisor)
        m.submodules.bridge = bridge = self.bridge
        m.submodules.memory_map = mmap = self.memory_map
        m.submodules.dram = dram = self._dram or SRAMBuffer(depth=self._dram_depth,
                                                            data_bits=16)
        wiring.connect(m, rx.bytes, bridge.rx)
        wiring.connect(m, bridge.tx, tx.bytes)
        wiring.connect(m, bridge.mem, mmap.host)
        wiring.connect(m, mmap.dram, dram.port)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        busy, done, error = self._engine(m, bridge, mmap)
        status = Signal(STATUS_WORD)
        m.d.comb += [status.busy.eq(busy), status.done.eq(done),
                     status.bad_access.eq(mmap.bad_access), status.engine_error.eq(error),
                     status.last_error.eq(bridge.last_error),
                     status.frame_errors.eq(bridge.frame_errors),
                     bridge.status.eq(status)]
        heartbeat = Signal(self._heartbeat_bits)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += self.leds.eq(Cat(heartbeat[-1], bridge.busy,
                                     bridge.last_error != Status.OK, busy,
                                     m.submodules.registers.leds))
        return m

    def _engine(self, m, bridge, mmap):
        """Add the register bank and, if present, the engine; return its (busy, done, error)."""
        tile = self._tile
        desc_bits = len(tile.desc.payload.as_value()) if tile else 0
        counter_bits = len(tile.counters.as_value()) if tile else 0
        info = info_word(tm=self._config.tm, tn=self._config.tn, dram_depth=self._dram_depth)
        m.submodules.registers = regs = RegisterBank(info=info, desc_bits=desc_bits,
                                                     counter_bits=counter_bits)
        wiring.connect(m, bridge.reg, regs.port)
        m.d.comb += regs.start.eq(bridge.start)
        busy, done, error = Signal(), Signal(), Signal()
        if tile is None:
            with m.If(bridge.start):
                m.d.sync += done.eq(1)      # nothing to run: a start completes at once
            return busy, done, error
        m.submodules.engine = tile
        for r in self.regions[1:]:
            wiring.connect(m, getattr(mmap, r.name), getattr(tile, f"host_{r.name}"))
        pending, was_busy = Signal(), Signal()
        # A tile that exposes WU gradients as a stream: the board has no consumer for them.
        m.d.comb += [tile.desc.payload.eq(regs.desc), tile.desc.valid.eq(pending),
                     regs.counters.eq(tile.counters), busy.eq(pending | tile.busy),
                     error.eq(tile.error)]
        if "grad" in tile.signature.members:
            m.d.comb += tile.grad.ready.eq(1)
        m.d.sync += was_busy.eq(busy)
        with m.If(tile.desc.valid & tile.desc.ready):
            m.d.sync += pending.eq(0)
        with m.If(was_busy & ~busy):
            m.d.sync += done.eq(1)
        with m.If(bridge.start):
            m.d.sync += [pending.eq(1), done.eq(0)]
        return busy, done, error
