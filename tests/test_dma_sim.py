"""ReshapeDMA on Icarus and Verilator: random transfers bit-exact, AXI protocol, bad descriptors."""

import pytest

from edgetrain.sim.tb.dma_run import run_dma_tb
from edgetrain.sim.tb.runner import SIM_ROOT

CASES = [
    # simulator, data_bits, max_burst_beats, max_outstanding_reads, seed, cases
    ("icarus", 64, 256, 4, 1, 15),
    ("icarus", 32, 8, 1, 3, 10),
    ("verilator", 128, 16, 2, 2, 15),
]


@pytest.mark.parametrize("simulator,data_bits,burst,outstanding,seed,cases", CASES,
                         ids=[f"{c[0]}-{c[1]}b-burst{c[2]}" for c in CASES])
def test_dma_random_and_bad_descriptors(simulator, data_bits, burst, outstanding, seed, cases):
    run_dma_tb(simulator=simulator, seed=seed, cases=cases, data_bits=data_bits,
             max_burst_beats=burst, max_outstanding_reads=outstanding,
             build_dir=SIM_ROOT / "dma" / f"pytest-{simulator}-{data_bits}-{burst}")


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_dma_long_regression(simulator):
    # seeds run one after the other: they share one build directory
    for seed in (11, 12, 13):
        run_dma_tb(simulator=simulator, seed=seed, cases=60, data_bits=64, max_burst_beats=32,
                 max_outstanding_reads=3, axi_pause=0.3, buf_stall=0.3,
                 build_dir=SIM_ROOT / "dma" / f"slow-{simulator}")
