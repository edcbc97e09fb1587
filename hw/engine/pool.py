"""2x2 max-pooling (stride 2) and its backward gradient routing, as stream units.

Both units work on a stream of *windows*: one beat carries, for each of ``lanes`` channels,
the four values of one 2x2 window in row-major order (0 = (0, 0), 1 = (0, 1), 2 = (1, 0),
3 = (1, 1)). Whoever feeds them (the engine's output path) gathers windows; the units hold no
line buffers. ``sim/golden/pool.py`` is their specification:

* ``MaxPool2x2``: window -> maximum and ``argmax``, the position of the *first* maximum;
* ``PoolBackward``: gradient + ``argmax`` -> window with the gradient at ``argmax`` and 0
  elsewhere.
"""

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.common.pipe import StreamPipeline, stage

__all__ = ["MaxPool2x2", "PoolBackward"]

WINDOW = 4


def _check(lanes, data_bits):
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= 1024:
        raise TypeError(f"lanes must be an integer in 1..1024, not {lanes!r}")
    if not isinstance(data_bits, int) or isinstance(data_bits, bool) or not 2 <= data_bits <= 32:
        raise TypeError(f"data_bits must be an integer in 2..32, not {data_bits!r}")


def _windows(lanes, data_bits):
    return data.ArrayLayout(data.ArrayLayout(signed(data_bits), WINDOW), lanes)


class MaxPool2x2(wiring.Component):
    """Reduce each lane's 2x2 window to its maximum and the 2-bit position of its first
    maximum. A beat accepted on ``i`` is presented on ``o`` ``latency`` cycles later at the
    earliest; one beat per cycle while ``o`` is ready."""

    STAGES = 2
    latency = STAGES + StreamPipeline.QUEUE_LATENCY

    def __init__(self, *, lanes, data_bits=16):
        _check(lanes, data_bits)
        self._lanes, self._data_bits = lanes, data_bits
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "window": _windows(lanes, data_bits)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(data_bits), lanes),
                "argmax": data.ArrayLayout(unsigned(2), lanes)}))),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def data_bits(self):
        return self._data_bits

    def elaborate(self, platform):
        m = Module()
        pipe = StreamPipeline(m, i=self.i, o=self.o, stages=self.STAGES)
        en = pipe.en
        for n in range(self._lanes):
            x = self.i.payload.window[n]
            # Stage 1: the maximum of each row; a strict ">" keeps the first of equal values.
            pairs = []
            for row in range(2):
                left, right = x[2 * row], x[2 * row + 1]
                later = right > left
                pairs.append((stage(m, en, Mux(later, right, left), name=f"lane{n}_row{row}"),
                              stage(m, en, later, name=f"lane{n}_row{row}_arg")))
            # Stage 2: the larger row maximum; again ties go to the first (upper) row.
            (top, top_arg), (bottom, bottom_arg) = pairs
            lower = bottom > top
            m.d.comb += [
                pipe.result.data[n].eq(
                    stage(m, en, Mux(lower, bottom, top), name=f"lane{n}_max")),
                pipe.result.argmax[n].eq(stage(
                    m, en, Mux(lower, 2 + bottom_arg, top_arg)[:2], name=f"lane{n}_argmax")),
            ]
        return m


class PoolBackward(wiring.Component):
    """Route each lane's gradient to its window position ``argmax``; the other three
    positions get 0. A beat accepted on ``i`` is presented on ``o`` ``latency`` cycles later
    at the earliest; one beat per cycle while ``o`` is ready."""

    STAGES = 1
    latency = STAGES + StreamPipeline.QUEUE_LATENCY

    def __init__(self, *, lanes, data_bits=16):
        _check(lanes, data_bits)
        self._lanes, self._data_bits = lanes, data_bits
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "grad": data.ArrayLayout(signed(data_bits), lanes),
                "argmax": data.ArrayLayout(unsigned(2), lanes)}))),
            "o": Out(stream.Signature(data.StructLayout({
                "window": _windows(lanes, data_bits)}))),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def data_bits(self):
        return self._data_bits

    def elaborate(self, platform):
        m = Module()
        pipe = StreamPipeline(m, i=self.i, o=self.o, stages=self.STAGES)
        en = pipe.en
        for n in range(self._lanes):
            grad, arg = self.i.payload.grad[n], self.i.payload.argmax[n]
            for pos in range(WINDOW):
                m.d.comb += pipe.result.window[n][pos].eq(
                    stage(m, en, Mux(arg == pos, grad, 0), name=f"lane{n}_pos{pos}"))
        return m
