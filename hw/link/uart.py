"""A UART (8 data bits, no parity, one stop bit) for the host bridge.

``UartRx`` and ``UartTx`` exchange bytes as ``amaranth.lib.stream`` streams. The bit time is
``divisor`` clock cycles (``clk_freq // baud`` on a board; a small value in simulation).
"""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "check_divisor"]


def check_divisor(divisor):
    """Return ``divisor`` if it is a usable bit time in cycles, else raise ``ValueError``."""
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise ValueError(f"divisor must be an integer >= 4 cycles per bit, not {divisor!r}")
    return divisor


class UartRx(wiring.Component):
    """Receive bytes from the serial line ``rx`` (idle high).

    ``bytes`` carries each received byte for which the stop bit was high; the receiver does
    not wait for ``bytes.ready``: a byte not taken before the next one completes is lost and
    ``overrun`` pulses. ``framing_error`` pulses for a byte whose stop bit was low (the byte is
    dropped). The line is synchronised to the clock domain inside.
    """

    rx: In(1, init=1)
    bytes: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, *, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(self._divisor * 3 // 2 + 1))
        bits = Signal(range(9))
        shreg = Signal(8)

        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]
        with m.If(self.bytes.ready):
            m.d.sync += self.bytes.valid.eq(0)

        with m.FSM(name="rx_fsm"):
            with m.State("IDLE"):
                with m.If(~line):
                    # Sample the first data bit in its middle: 1.5 bit times after the edge.
                    m.d.sync += [timer.eq(self._divisor * 3 // 2 - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bits.eq(bits + 1),
                                 timer.eq(self._divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line):
                        m.d.sync += [self.bytes.payload.eq(shreg), self.bytes.valid.eq(1)]
                        with m.If(self.bytes.valid & ~self.bytes.ready):
                            m.d.sync += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.framing_error.eq(1)
                        m.next = "WAIT-IDLE"
            with m.State("WAIT-IDLE"):
                # After a framing error wait for the line to return high before the next start bit.
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """Send the bytes of stream ``bytes`` on the serial line ``tx`` (idle high)."""

    bytes: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, *, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        shreg = Signal(10, init=0x3FF)
        bits = Signal(range(11))

        m.d.comb += [self.tx.eq(shreg[0]), self.bytes.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.bytes.valid):
                m.d.sync += [shreg.eq(Cat(0, self.bytes.payload, 1)), bits.eq(10),
                             timer.eq(self._divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), bits.eq(bits - 1),
                         timer.eq(self._divisor - 1)]
        return m
