"""``GradWriter``: the engine's WU results into the master buffer, in its own row format.

Each ``grad`` beat (``GradLayout`` of ``hw/engine/conv.py``: the block's weight-row ``addr``
and ``T * T`` exact batch-summed accumulators, lane ``q = i * T + j``) becomes the
``R = master_rows_per_block`` rows of that block in ``mst``, ``L = master_lanes`` 64-bit
words per row: row ``addr * R + r``, word ``l`` (bits ``64 l ..``) = accumulator
``r * L + l`` sign-extended. That is the order of the master words (``pack_master_rows``),
so the rows' DRAM image is the same whatever ``update_lanes`` is: ``T * T`` little-endian
int64 per block, lane order; with ``update_lanes = 0`` it is the updater's own accumulator
format (row ``addr * T + i``, word ``j``).

With ``accumulate`` high the rows are *added* to what ``mst`` holds (``w_add``: 64-bit words,
wrapping, still one row per cycle), so a WU cut along the batch sums its tiles' gradients
in the buffer: the accumulators are exact, so the sum equals the whole batch's.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.buffers.memport import MemoryPortSignature
from edgetrain.hw.buffers.kinds import (
    MASTER_WORD_BITS, Buffer, master_lanes, master_rows_per_block)
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.conv import GradLayout

__all__ = ["GradWriter", "master_add_port"]


def master_add_port(config):
    """The ``MST`` port signature of ``config`` with adds of master words (``w_add``)."""
    sig = Buffer.MST.port_signature(config)
    return MemoryPortSignature(addr_bits=sig.addr_bits, data_bits=sig.data_bits,
                               add_words=MASTER_WORD_BITS)


class GradWriter(wiring.Component):
    """Write each block offered on ``grad`` into ``mst`` (see the module docstring).

    The rows are written straight from the offered beat, one per cycle that ``mst`` is
    ready, first to last; the beat is taken (``grad.ready``) in the cycle its last row is
    written, so the engine, which holds a WU result until it is taken, keeps ``busy`` until
    every row is in the buffer. ``accumulate`` (in) must hold while a beat is offered.
    """

    def __init__(self, *, config):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        self._cfg = config
        super().__init__({
            "grad": In(stream.Signature(GradLayout(config))),
            "accumulate": In(1),
            Buffer.MST.port_name: Out(master_add_port(config)),
        })

    @property
    def config(self):
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        lanes, rows = master_lanes(self._cfg), master_rows_per_block(self._cfg)
        grad, mst = self.grad, self.mst
        row = Signal(range(rows))
        words = [Signal(signed(MASTER_WORD_BITS), name=f"word{n}") for n in range(lanes)]
        m.d.comb += [w.eq(grad.payload.acc[row * lanes + n]) for n, w in enumerate(words)]
        last = row == rows - 1
        m.d.comb += [mst.addr.eq(grad.payload.addr * rows + row), mst.w_en.eq(grad.valid),
                     mst.w_data.eq(Cat(*words)), mst.w_add.eq(self.accumulate),
                     grad.ready.eq(mst.ready & last)]
        with m.If(grad.valid & mst.ready):
            m.d.sync += row.eq(Mux(last, 0, row + 1))
        return m
