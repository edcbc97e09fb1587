"""``edgetrain sim dma``: run the ReshapeDMA cocotb testbench on Icarus or Verilator."""

import time
from pathlib import Path

from edgetrain.hw.config import load_config
from edgetrain.sim.tb.dma_run import run_dma_tb
from ._args import (add_build_dir, add_config, add_seed, add_simulator, add_waves, fraction,
                    int_at_least, positive_int)

HELP = "verify the reshaping DMA against the layout module (cocotb, AxiRam as DRAM)"


def add_arguments(parser):
    add_simulator(parser)
    add_seed(parser, 1, help="seed of the random transfers")
    parser.add_argument("--cases", type=positive_int, default=15,
                        help="random transfers to check")
    add_config(parser, help="accelerator config TOML (bus width, burst limits)")
    parser.add_argument("--buf-depth", type=int_at_least(2), default=512,
                        help="buffer rows behind the DMA")
    parser.add_argument("--axi-pause", type=fraction, default=0.2,
                        help="probability an AXI channel pauses in a cycle")
    parser.add_argument("--buf-stall", type=fraction, default=0.2,
                        help="probability the buffer port is not ready in a cycle")
    add_waves(parser)
    add_build_dir(parser)


def run(args):
    cfg = load_config(args.config)
    t0 = time.monotonic()
    try:
        results = run_dma_tb(simulator=args.simulator, seed=args.seed, cases=args.cases,
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
