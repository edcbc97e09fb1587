"""Run the reshaping DMA's cocotb testbench (``tb_dma``) for pytest, the CLI and the
benchmark.

The testbench checks random transfers bit for bit against the layout module (cocotbext-axi
``AxiRam`` as DRAM), the AXI protocol, bad descriptors and AXI error responses; with
``replay`` it runs given descriptors instead, and ``stats`` collects each transfer's
bursts, beats and bus cycles.
"""

from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.hw.dma.reshape import ReshapeDMA
from .runner import SIM_ROOT, run_cocotb

__all__ = ["run_dma_tb"]


def run_dma_tb(*, simulator, seed=1, cases=15, data_bits=64, addr_bits=32, buf_depth=512,
               max_burst_beats=256, max_outstanding_reads=4, axi_pause=0.2, buf_stall=0.2,
               burst_gap=0, waves=False, build_dir=None, stats=None, testcase=None,
               replay=None, mem_bytes=1 << 16):
    """Build the DMA for ``simulator`` and run the testbench; return the results XML path.

    ``axi_pause`` / ``buf_stall``: probability that an AXI channel pauses / the buffer port
    is not ready in a cycle; ``burst_gap``: idle cycles after each burst (the DRAM cost).
    Raises ``ConfigError`` for a bad value, ``AssertionError`` on any failure.
    """
    for name, p in (("axi_pause", axi_pause), ("buf_stall", buf_stall)):
        if not 0 <= p < 1:
            raise ConfigError(f"{name} must be in [0, 1), not {p!r}")
    if cases < 1:
        raise ConfigError(f"cases must be >= 1, not {cases!r}")
    dma = ReshapeDMA(addr_bits=addr_bits, data_bits=data_bits, buf_depth=buf_depth,
                     max_burst_beats=max_burst_beats,
                     max_outstanding_reads=max_outstanding_reads)
    build_dir = Path(build_dir or SIM_ROOT / "dma" /
                     f"{simulator}-d{data_bits}-b{buf_depth}-m{max_burst_beats}"
                     f"-o{max_outstanding_reads}")
    params = {"data_bits": data_bits, "addr_bits": addr_bits, "buf_depth": buf_depth,
              "max_burst_beats": max_burst_beats, "seed": seed, "cases": cases,
              "max_outstanding_reads": max_outstanding_reads,
              "axi_pause": axi_pause, "buf_stall": buf_stall, "burst_gap": burst_gap,
              "stats": str(Path(stats).resolve()) if stats else None,
              "replay": str(Path(replay).resolve()) if replay else None,
              "mem_bytes": mem_bytes}
    return run_cocotb(component=dma, toplevel="reshape_dma",
                      test_module="edgetrain.sim.tb.tb_dma", simulator=simulator,
                      build_dir=build_dir, params=params, waves=waves, testcase=testcase)
