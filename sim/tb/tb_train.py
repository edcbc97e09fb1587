"""cocotb: training on the generated accelerator, the host being ``sim/driver.py``.

``CocotbTarget`` is the driver's target for a simulated ``Accelerator``: DRAM is
cocotbext-axi's ``AxiRam`` on ``m_axi`` (no pauses: the figures are the accelerator's), the
register port runs a program (PROG_ADDR / PROG_COUNT, the whole DRAM as the window, START),
the testbench then sleeps on a change of the ``status`` port instead of polling STATUS, and
reads the counters through the register port once the program is done. A program the
hardware stops gives the driver a ``ProgramError`` naming the ERRORS code.

Parameters (``EDGETRAIN_PARAMS``): ``config``, ``options`` (``TrainOptions`` fields, the
net by name), ``steps``, ``check``, ``mem_bytes``, ``progress`` (a file that gets one line
per step: done, total, loss) and ``out`` (the result JSON, or ``{"error": message}`` when
the check or a program failed).
"""

import json
import os
import time
from dataclasses import replace

import cocotb
from cocotb.triggers import ClockCycles

from edgetrain.errors import EdgetrainError
from edgetrain.firmware.netfile import load_net_file
from edgetrain.firmware.nets import get_net
from edgetrain.hw.accel.control import Reg
from edgetrain.hw.accel.sequencer import ErrorCode, StatusLayout
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.driver import RunCounters, digits_subset, step_memory, train_on_target
from edgetrain.sim.golden.train import TrainOptions
from edgetrain.sim.reference.iss import ProgramError
from .accel_bench import AccelBench

P = json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))


class CocotbTarget:
    """The simulated accelerator as a driver target (module docstring)."""

    name = "sim"

    def __init__(self, bench, cfg):
        self.bench, self.cfg, self.mem_bytes = bench, cfg, bench.mem_bytes

    async def write(self, addr, data):
        self.bench.ram.write(addr, data)

    async def read(self, addr, nbytes):
        return self.bench.ram.read(addr, nbytes)

    async def run(self, addr, count):
        b, dut = self.bench, self.bench.dut
        for reg, value in ((Reg.PROG_ADDR, addr), (Reg.PROG_COUNT, count),
                           (Reg.WINDOW_BASE, 0), (Reg.WINDOW_SIZE, self.mem_bytes),
                           (Reg.START, 1)):
            await b.write_reg(reg.value, value)
        await ClockCycles(dut.clk, 2)       # STATUS shows busy from the cycle after START
        while True:
            status = StatusLayout.from_bits(int(dut.status.value))
            if not status.busy:
                break
            await dut.status.value_change
        if status.error != ErrorCode.NONE:
            raise ProgramError(None, ErrorCode(status.error), f"the accelerator stopped the "
                               f"program at {addr:#x} ({count} instructions)")
        c = await b.counters(self.cfg)
        return RunCounters(cycles=int(c.cycles), macs=int(c.engine.macs),
                           saturations=int(c.engine.saturations), amax=int(c.engine.amax),
                           busy=int(c.engine.busy_cycles),
                           refreshes=sum(int(getattr(c.banks, bk.port_name).refreshes)
                                         for bk in Buffer))


@cocotb.test()
async def test_train(dut):
    cfg = AcceleratorConfig(**P["config"])
    options = TrainOptions(**P["options"])
    bench = AccelBench(dut, seed=options.seed, axi_pause=0.0, mem_bytes=P["mem_bytes"])
    await bench.reset()
    if P.get("net_file"):
        options = replace(options, net=load_net_file(P["net_file"]))
    memory = step_memory(cfg, get_net(options.net) if isinstance(options.net, str)
                         else options.net, options.batch)
    assert memory.mem_bytes <= P["mem_bytes"], (memory.mem_bytes, P["mem_bytes"])
    progress = open(P["progress"], "a", buffering=1)
    start = time.perf_counter()

    def on_step(done, total, loss):
        progress.write(json.dumps({"done": done, "total": total, "loss": loss,
                                   "seconds": time.perf_counter() - start}) + "\n")

    try:
        result = await train_on_target(options, cfg, CocotbTarget(bench, cfg), memory,
                                       data=digits_subset(*P.get("subset") or (None, None)),
                                       steps=P["steps"], check=P["check"], on_step=on_step)
        out = result.to_json()
    except EdgetrainError as e:
        out = {"error": str(e)}
    with open(P["out"], "w") as f:
        json.dump(out, f, default=str)
