"""``edgetrain sim dma``: run the ReshapeDMA cocotb testbench on Icarus or Verilator."""

import time
from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.hw.config import load_config

HELP = "verify the reshaping DMA against the layout module (cocotb, AxiRam as DRAM)"


def add_arguments(parser):
    parser.add_argument("--simulator", default="icarus", choices=("icarus", "verilator"))
    parser.add_argument("--seed", type=int, default=1, help="seed of the random transfers")
    parser.add_argument("--cases", type=int, default=15, help="random transfers to check")
    parser.add_argument("--config", help="accelerator config TOML (bus width, burst limits)")
    parser.add_argument("--buf-depth", type=int, default=512, help="buffer rows behind the DMA")
    parser.add_argument("--axi-pause", type=float, default=0.2,
                        help="probability an AXI channel pauses in a cycle")
    parser.add_argument("--buf-stall", type=float, default=0.2,
                        help="probability the buffer port is not ready in a cycle")
    parser.add_argument("--waves", action="store_true", help="dump waveforms")
    parser.add_argument("--build-dir", default=None, help="build directory")


def simulate(*, simulator, seed=1, cases=15, data_bits=64, addr_bits=32, buf_depth=512,
             max_burst_beats=256, max_outstanding_reads=4, axi_pause=0.2, buf_stall=0.2,
             burst_gap=0, waves=False, build_dir=None, stats=None, testcase=None,
             replay=None, mem_bytes=1 << 16):
    """Build the DMA for ``simulator`` and run the testbench; raise on any failure."""
    from edgetrain.hw.dma.reshape import ReshapeDMA
    from edgetrain.sim.tb.runner import SIM_ROOT, run_cocotb
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
    return run_cocotb(component=dma, toplevel="reshape_dma", test_module="edgetrain.sim.tb.tb_dma",
                      simulator=simulator, build_dir=build_dir, params=params, waves=waves,
                      testcase=testcase)


def run(args):
    cfg = load_config(args.config)
    if args.buf_depth < 2:
        raise ConfigError(f"--buf-depth must be >= 2, not {args.buf_depth}")
    t0 = time.monotonic()
    try:
        results = simulate(simulator=args.simulator, seed=args.seed, cases=args.cases,
                           data_bits=cfg.axi_data_bits, addr_bits=cfg.axi_addr_bits,
                           buf_depth=args.buf_depth, max_burst_beats=cfg.max_burst_beats,
                           max_outstanding_reads=cfg.max_outstanding_reads,
                           axi_pause=args.axi_pause, buf_stall=args.buf_stall,
                           waves=args.waves, build_dir=args.build_dir)
    except AssertionError as e:
        print(f"sim dma: FAILED ({e})")
        return 1
    print(f"sim dma: {args.simulator}, {cfg.axi_data_bits}-bit AXI, seed {args.seed}: "
          f"{args.cases} random transfers, bad descriptors, AXI error responses: "
          f"0 mismatches, 0 protocol violations ({time.monotonic() - t0:.1f} s)")
    if args.waves:
        print(f"waves: {Path(results).parent}")
    return 0
