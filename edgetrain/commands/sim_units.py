"""``edgetrain sim units``: run the arithmetic units' cocotb testbench on Icarus or Verilator."""

import time

from edgetrain.errors import ConfigError
from edgetrain.hw.config import load_config
from ._args import (add_build_dir, add_config, add_seed, add_simulator, add_waves,
                    int_at_least, int_in)

HELP = "check the requantizer, SGD update and max-pool Verilog bit for bit against numerics"


def add_arguments(parser):
    add_simulator(parser)
    parser.add_argument("--beats", type=int_at_least(4), default=1000,
                        help="random requantizer beats (half as many update beats, a quarter "
                             "as many pooling windows)")
    add_seed(parser, 1, help="seed of the random beats")
    parser.add_argument("--lanes", type=int_in(1, 64), default=None,
                        help="requantizer and pooling lanes (default: the config's tm)")
    add_config(parser, help="accelerator config TOML (tm, acc_bits)")
    add_waves(parser)
    add_build_dir(parser)


def run(args):
    from edgetrain.sim.tb.units_harness import simulate_units
    cfg = load_config(args.config)
    lanes = cfg.tm if args.lanes is None else args.lanes
    if not 1 <= lanes <= 64:
        raise ConfigError(f"the config's tm {lanes} exceeds the units' 64 lanes; give --lanes")
    if cfg.acc_bits > 64:
        raise ConfigError(f"acc_bits {cfg.acc_bits} exceeds the units' 64-bit limit; lower "
                          f"the config's limits")
    t0 = time.monotonic()
    try:
        simulate_units(simulator=args.simulator, beats=args.beats, seed=args.seed,
                       lanes_rq=lanes, lanes_up=max(1, lanes // 4), lanes_pool=lanes,
                       acc_bits=cfg.acc_bits, build_dir=args.build_dir, waves=args.waves)
    except AssertionError as e:
        print(f"sim units: FAILED ({e})")
        return 1
    print(f"sim units: {args.simulator}, seed {args.seed}, {lanes} lanes, acc_bits "
          f"{cfg.acc_bits}: {args.beats} requantizer + {args.beats // 2} update beats and the "
          f"max-pool windows both ways match numerics bit for bit "
          f"({time.monotonic() - t0:.1f} s)")
    return 0
