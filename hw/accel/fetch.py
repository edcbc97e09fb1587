"""Instruction fetch: read a program from DRAM over AXI4 and offer its instructions in order."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from edgetrain.hw.common.axi import AXI4Signature, AXI_INCR, AXI_OKAY
from .isa import INSN_BITS, INSN_BYTES

__all__ = ["InstructionFetch", "COUNT_BITS"]

#: Width of the instruction count of one program.
COUNT_BITS = 16


class InstructionFetch(wiring.Component):
    """Read ``count`` instructions at ``addr`` (64-byte aligned) and stream them on ``insn``.

    ``start`` (a pulse while not ``busy``) samples ``addr`` and ``count``. One INCR burst of
    ``INSN_BYTES`` is issued per instruction, and the next only once the previous one left on
    ``insn``, so at most one instruction waits here. ``busy`` stays high until every
    instruction left (or, after ``abort`` or an error, until the outstanding burst was
    accepted and its beats taken from the bus). A read response other than OKAY sets the sticky ``error``
    (cleared by ``start``) and stops the fetch as ``abort`` does; the instruction of that
    burst is dropped. The write channels of ``m_axi`` are unused (no request is ever made).
    """

    def __init__(self, *, addr_bits, data_bits):
        self._addr_bits, self._data_bits = addr_bits, data_bits
        self._beats = INSN_BITS // data_bits
        super().__init__({
            "start": In(1), "addr": In(addr_bits), "count": In(COUNT_BITS), "abort": In(1),
            "insn": Out(stream.Signature(INSN_BITS)),
            "busy": Out(1), "error": Out(1),
            "m_axi": Out(AXI4Signature(addr_bits=addr_bits, data_bits=data_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        axi, beats = self.m_axi, self._beats
        addr, left = Signal(self._addr_bits), Signal(COUNT_BITS)
        word = Signal(INSN_BITS)
        m.d.comb += [axi.arid.eq(0), axi.arlen.eq(beats - 1),
                     axi.arsize.eq((self._data_bits // 8).bit_length() - 1),
                     axi.arburst.eq(AXI_INCR), axi.araddr.eq(addr),
                     axi.awvalid.eq(0), axi.wvalid.eq(0), axi.bready.eq(0),
                     self.insn.payload.eq(word)]
        with m.FSM(name="fetch") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [addr.eq(self.addr), left.eq(self.count), self.error.eq(0)]
                    m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(self.abort | (left == 0)):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "AR"
            with m.State("AR"):
                # Once raised, ARVALID stays up until taken (AXI): an abort now drains the
                # burst in R and drops its instruction in OFFER.
                m.d.comb += axi.arvalid.eq(1)
                with m.If(axi.arready):
                    m.d.sync += [addr.eq(addr + INSN_BYTES), left.eq(left - 1)]
                    m.next = "R"
            with m.State("R"):
                m.d.comb += axi.rready.eq(1)
                with m.If(axi.rvalid):
                    # Beats arrive lowest address first: shift each in from the top.
                    m.d.sync += word.eq(Cat(word[self._data_bits:], axi.rdata))
                    with m.If(axi.rresp != AXI_OKAY):
                        m.d.sync += self.error.eq(1)
                    with m.If(axi.rlast):
                        m.next = "OFFER"
            with m.State("OFFER"):
                m.d.comb += self.insn.valid.eq(~self.abort & ~self.error)
                with m.If(self.abort | self.error):
                    m.next = "IDLE"
                with m.Elif(self.insn.ready):
                    m.next = "NEXT"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
