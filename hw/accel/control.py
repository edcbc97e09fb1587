"""The accelerator's control registers: the one source of its register map.

Every register is 32 bits wide, at a word address of ``Reg``, behind a
``MemoryPortSignature`` port (always ready, reads answered one cycle later). The host
writes the program's address and length and the DRAM window, then writes 1 to ``START``;
it polls ``STATUS`` (``StatusLayout``: busy, done, error code) and reads the counters
(``counter_layout``: ``COUNTERS`` onwards, LSB first, valid while ``busy`` is low).
``ERRORS`` (``ErrorDetail``) says which unit an error came from in more detail than the
code.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.dma.reshape import STATUS_LAYOUT
from .banks import COUNTERS_LAYOUT
from .sequencer import StatusLayout, queue_counter_layout

__all__ = ["Reg", "REGISTER_BITS", "REG_ADDR_BITS", "ErrorDetail", "counter_layout",
           "ControlRegisters"]

REGISTER_BITS = 32
REG_ADDR_BITS = 7


class Reg(enum.Enum, shape=REG_ADDR_BITS):
    """Register word addresses; ``access`` says what the host may do with each."""
    START = 0           # WO  write 1: run the program (ignored while busy)
    STATUS = 1          # RO  StatusLayout
    PROG_ADDR = 2       # RW  byte address of the program (64-byte aligned)
    PROG_COUNT = 3      # RW  instructions in the program
    WINDOW_BASE = 4     # RW  first DRAM byte the program may touch
    WINDOW_SIZE = 5     # RW  bytes of that window
    ERRORS = 6          # RO  ErrorDetail
    COUNTERS = 16       # RO  counter_layout, LSB first, to the end of the map

    @property
    def access(self):
        """``"RO"`` (writes ignored), ``"WO"`` (reads return 0) or ``"RW"``."""
        return {Reg.START: "WO", Reg.STATUS: "RO", Reg.ERRORS: "RO",
                Reg.COUNTERS: "RO"}.get(self, "RW")


#: Where an error came from, in detail: both DMAs' status bits, AXI window refusals.
ErrorDetail = data.StructLayout({
    "load": STATUS_LAYOUT, "store": STATUS_LAYOUT,
    "window": data.StructLayout({"fetch": 1, "load": 1, "store": 1}),
    "crossbar": data.StructLayout({"window": 2, "rows": 1}),
})


def counter_layout(cfg):
    """Every counter the host can read, one struct (32-bit fields, MACs 64 bits).

    ``engine`` holds program totals over its COMPUTEs: sums, except ``amax``
    (``acc_bits`` wide), the largest of theirs. ``banks`` holds each bank's refreshes,
    stall cycles and violations of the last program, from start to done.
    """
    return data.StructLayout({
        "cycles": 32,
        "queues": queue_counter_layout(),
        "engine": data.StructLayout({"busy_cycles": 32, "macs": 64, "stall_cycles": 32,
                                     "saturations": 32, "amax": cfg.acc_bits}),
        "banks": data.StructLayout({b.port_name: COUNTERS_LAYOUT for b in Buffer}),
    })


class ControlRegisters(wiring.Component):
    """The registers of ``Reg`` behind ``port``; ``start`` pulses on a write of 1 to START."""

    def __init__(self, *, config):
        self._cfg = config
        self._counters = counter_layout(config)
        words = -(-self._counters.size // REGISTER_BITS)
        if Reg.COUNTERS.value + words > 1 << REG_ADDR_BITS:
            raise ValueError(f"{words} counter registers do not fit the register map")
        addr = config.axi_addr_bits
        super().__init__({
            "port": In(MemoryPortSignature(addr_bits=REG_ADDR_BITS, data_bits=REGISTER_BITS)),
            "start": Out(1), "prog_addr": Out(addr), "prog_count": Out(16),
            "window_base": Out(addr), "window_size": Out(addr),
            "status": In(StatusLayout), "errors": In(ErrorDetail),
            "counters": In(self._counters),
        })

    def elaborate(self, platform):
        m = Module()
        port = self.port
        writable = {reg: getattr(self, reg.name.lower()) for reg in Reg if reg.access == "RW"}
        readable = dict(writable) | {Reg.STATUS: self.status, Reg.ERRORS: self.errors}
        counters = self.counters.as_value()
        for i in range(-(-len(counters) // REGISTER_BITS)):
            readable[Reg.COUNTERS.value + i] = counters[32 * i:32 * (i + 1)]
        m.d.comb += port.ready.eq(1)
        with m.If(port.r_en):
            with m.Switch(port.addr):
                for reg, value in readable.items():
                    with m.Case(reg.value if isinstance(reg, Reg) else reg):
                        m.d.sync += port.r_data.eq(value)
                with m.Default():
                    m.d.sync += port.r_data.eq(0)
        m.d.comb += self.start.eq(port.w_en & (port.addr == Reg.START.value) & port.w_data[0])
        with m.If(port.w_en):
            with m.Switch(port.addr):
                for reg, target in writable.items():
                    with m.Case(reg.value):
                        m.d.sync += target.eq(port.w_data)
        return m
