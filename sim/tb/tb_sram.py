"""cocotb smoke test of SRAMBuffer: write rows, read them back one cycle later."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, ReadOnly


@cocotb.test()
async def write_then_read(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 0
    for a in range(8):
        dut.port__addr.value = a
        dut.port__w_en.value = 1
        dut.port__w_data.value = a * 3 + 1
        await RisingEdge(dut.clk)
    dut.port__w_en.value = 0
    for a in range(8):
        dut.port__addr.value = a
        dut.port__r_en.value = 1
        await RisingEdge(dut.clk)
        await ReadOnly()
        assert int(dut.port__r_data.value) == a * 3 + 1
        await RisingEdge(dut.clk)
