"""The host side of an ``Accelerator`` in cocotb: AxiRam as DRAM, the register port, runs.

``AccelBench(dut, seed=, axi_pause=, mem_bytes=)`` starts the clock, puts cocotbext-axi's
``AxiRam`` of ``mem_bytes`` (every channel paused at random with probability ``axi_pause``)
on ``m_axi``; ``reset()``, ``write_reg`` / ``read_reg`` (``hw/accel/control.py``'s ``Reg``)
and ``run(image)`` (load a program image at ``program_at``, the last ``PROGRAM_BYTES`` of
DRAM, open the whole DRAM as the window, start it and poll STATUS until not busy; returns
``{"done", "error"}``; ``every`` / ``on_sample`` call a coroutine every so many cycles
while it runs), ``counters(cfg)`` (every counter, read through the register port). ``transfer`` builds a LOAD/STORE body moving
bytes between DRAM and the start of a buffer half. The testbench modules ``tb_accel*`` use it.
"""

import logging
import random

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from edgetrain.hw.accel.beats import beat_row
from edgetrain.hw.accel.control import Reg, REGISTER_BITS, counter_layout
from edgetrain.hw.accel.isa import INSN_BYTES
from edgetrain.hw.accel.sequencer import StatusLayout
from edgetrain.hw.dma.program import raw_transfer
from .tb_dma import _pauses, wake_combinational

__all__ = ["AccelBench", "MEM_BYTES", "PROGRAM_AT", "PROGRAM_BYTES", "transfer", "rows_bytes"]

MEM_BYTES = 1 << 18
#: The top of DRAM holds the program: 1024 instructions.
PROGRAM_BYTES = 0x1_0000
PROGRAM_AT = MEM_BYTES - PROGRAM_BYTES


class AccelBench:
    """DRAM, clock, reset and the register port of one accelerator."""

    def __init__(self, dut, *, seed, axi_pause, mem_bytes=MEM_BYTES):
        self.dut = dut
        self.mem_bytes, self.program_at = mem_bytes, mem_bytes - PROGRAM_BYTES
        self.rng = random.Random(seed)
        logging.getLogger(f"cocotb.{dut._name}.m_axi").setLevel(logging.WARNING)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi", bus_separator="__"), dut.clk,
                          dut.rst, size=mem_bytes)
        channels = (self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                    self.ram.write_if.b_channel, self.ram.read_if.ar_channel,
                    self.ram.read_if.r_channel)
        for channel in channels:
            channel.set_pause_generator(_pauses(random.Random(self.rng.random()), axi_pause))

    async def reset(self):
        dut = self.dut
        for name in ("regs__addr", "regs__w_en", "regs__r_en", "regs__w_data"):
            getattr(dut, name).value = 0
        wake_combinational(dut)
        dut.rst.value = 1
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def write_reg(self, reg, value):
        dut = self.dut
        dut.regs__addr.value, dut.regs__w_data.value, dut.regs__w_en.value = reg, value, 1
        await RisingEdge(dut.clk)
        dut.regs__w_en.value = 0

    async def read_reg(self, reg):
        dut = self.dut
        dut.regs__addr.value, dut.regs__r_en.value = reg, 1
        await RisingEdge(dut.clk)
        dut.regs__r_en.value = 0
        await RisingEdge(dut.clk)
        return int(dut.regs__r_data.value)

    async def run(self, program_image, *, limit=200_000, every=0, on_sample=None):
        """Run a program image; return the decoded STATUS once it is not busy.

        ``limit`` bounds the STATUS polls. With ``every`` STATUS is polled every ``every``
        cycles (not back to back) and ``on_sample()`` (a coroutine function) awaited after
        each poll that finds the program still running.
        """
        if len(program_image) > PROGRAM_BYTES:
            raise AssertionError(f"a program of {len(program_image) // INSN_BYTES} "
                                 f"instructions does not fit the {PROGRAM_BYTES} program bytes")
        self.ram.write(self.program_at, program_image)
        await self.write_reg(Reg.PROG_ADDR.value, self.program_at)
        await self.write_reg(Reg.PROG_COUNT.value, len(program_image) // INSN_BYTES)
        await self.write_reg(Reg.WINDOW_BASE.value, 0)
        await self.write_reg(Reg.WINDOW_SIZE.value, self.mem_bytes)
        await self.write_reg(Reg.START.value, 1)
        for _ in range(limit):
            if every:
                await ClockCycles(self.dut.clk, every)
            status = StatusLayout.from_bits(await self.read_reg(Reg.STATUS.value))
            if not status.busy:
                return {"done": status.done, "error": status.error}
            if on_sample is not None:
                await on_sample()
        raise AssertionError(f"the program did not finish in {limit} register polls")

    async def counters(self, cfg):
        """Return the accelerator's counters (``counter_layout(cfg)``, a ``data.Const``);
        valid while not busy."""
        layout = counter_layout(cfg)
        value = 0
        for i in range(-(-layout.size // REGISTER_BITS)):
            value |= await self.read_reg(Reg.COUNTERS.value + i) << (REGISTER_BITS * i)
        return data.Const(layout, value & ((1 << layout.size) - 1))


def rows_bytes(rows, row_bits):
    """The DRAM bytes of buffer rows (ints of ``row_bits`` bits), little-endian."""
    nbytes = row_bits // 8
    return b"".join(int(r).to_bytes(nbytes, "little") for r in rows)


def transfer(cfg, buffer, half, dram, nbytes, *, store=False):
    """A LOAD/STORE body moving ``nbytes`` between ``dram`` and row 0 of ``buffer``'s
    ``half``."""
    desc = raw_transfer(np.arange(dram, dram + nbytes, 2), store=store,
                        buf_addr=beat_row(cfg, buffer, half, 0),
                        bus_bytes=cfg.axi_data_bits // 8)
    return {"buffer": buffer, "dma": vars(desc)}
