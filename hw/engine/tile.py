"""The conv engine with its on-chip buffers and a host port on each buffer.

``ConvEngineTile`` is what ``edgetrain generate`` writes and the testbenches drive: the
``ConvEngine``, one buffer per ``Buffer`` (``SRAMBuffer`` by default; any component factory
with a ``MemoryPortSignature`` port named ``port`` fits) and, per buffer, a host-side port
``host_<port_name>`` (``host_act``, ``host_wgt``, ``host_out``, ``host_mst``) through which the
testbench or the DMA fills and reads the buffers while the engine is idle. While ``busy``
(and one cycle after it falls) the engine owns every buffer and the host ports are not ready.
The host ports have lane writes (``w_lanes``, all ones unless driven): a host can write one
16-bit lane of a wide row.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.memport import SRAMBuffer
from edgetrain.hw.config import AcceleratorConfig
from .conv import ConvEngine

__all__ = ["ConvEngineTile"]


def _sram(buffer, depth, data_bits):
    return SRAMBuffer(depth=depth, data_bits=data_bits, lane_writes=True)


class ConvEngineTile(wiring.Component):
    """A ``ConvEngine`` with its buffers; ``host_*`` ports reach the buffers while idle.

    ``buffer_factory(buffer, depth, data_bits)`` builds each buffer (``buffer`` a ``Buffer``,
    ``depth`` and ``data_bits`` its ``depth`` and ``row_bits`` of the config) with lane writes
    (its port has ``w_lanes``); the default builds ``SRAMBuffer(lane_writes=True)``.
    ``desc``, ``grad``, ``busy``, ``error`` and ``counters`` are the engine's (see
    ``ConvEngine``).
    """

    def __init__(self, *, config, buffer_factory=_sram):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._cfg = config
        self._factory = buffer_factory
        self._engine = ConvEngine(config=config)
        members = {k: v for k, v in self._engine.signature.members.items()
                   if k not in {b.port_name for b in Buffer}}
        hosts = {f"host_{b.port_name}": In(b.port_signature(config, lane_writes=True))
                 for b in Buffer}
        super().__init__({**members, **hosts})

    @property
    def config(self):
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = eng = self._engine
        for name in ("desc", "grad"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(eng, name))
        m.d.comb += [self.busy.eq(eng.busy), self.error.eq(eng.error),
                     self.counters.eq(eng.counters)]
        # The buffers' owner: the engine from the cycle after a descriptor is accepted until
        # the cycle after ``busy`` falls. A register of its own: the port multiplexers (over a
        # thousand loads across the die) would otherwise hang on ``busy``, which the
        # descriptor handshake reads.
        owner = Signal()
        m.d.sync += owner.eq((eng.desc.valid & eng.desc.ready) | (owner & eng.busy))
        for b in Buffer:
            name = b.port_name
            buf = self._factory(b, b.depth(self._cfg), b.row_bits(self._cfg))
            if not getattr(buf.port.signature, "lane_writes", False):
                raise TypeError(f"buffer_factory built {name!r} without lane writes: its port "
                                f"needs w_lanes (e.g. SRAMBuffer(..., lane_writes=True))")
            m.submodules[f"{name}_buffer"] = buf
            self._share(m, owner, getattr(eng, name), getattr(self, f"host_{name}"),
                        buf.port)
        return m

    @staticmethod
    def _share(m, engine_owns, eng, host, port):
        """Give the buffer ``port`` to the engine while it is busy, else to the host."""
        for f in ("addr", "r_en", "r_last", "w_en", "w_data"):
            m.d.comb += getattr(port, f).eq(Mux(engine_owns, getattr(eng, f), getattr(host, f)))
        m.d.comb += [port.w_lanes.eq(host.w_lanes | engine_owns.replicate(len(host.w_lanes))),
                     eng.r_data.eq(port.r_data), host.r_data.eq(port.r_data),
                     eng.ready.eq(port.ready & engine_owns),
                     host.ready.eq(port.ready & ~engine_owns)]
