"""cocotb runs of the conv engine on Icarus and Verilator against the golden model.

One build per simulator runs 20 random layers per mode (FP, BP, WU, UPDATE) with random rounding,
ReLU, shifts and grad backpressure; the slow suite runs 200 per mode on larger shapes.
"""

import pytest

from edgetrain.sim.tb.engine_run import run_engine_tb


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_engine_random_shapes(simulator):
    results = run_engine_tb(simulator, shapes=20, seed=1)
    assert len(results) == 80 and all(r["ok"] for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_engine_random_shapes_slow(simulator):
    results = run_engine_tb(simulator, shapes=200, seed=1000, tag="slow",
                            limits={"max_cycles": 4000})
    assert len(results) == 800 and all(r["ok"] for r in results)


def test_engine_with_stalling_buffers():
    # Every buffer drops ready on ~1 cycle in 4: reads become bubbles, writes stall.
    results = run_engine_tb("icarus", shapes=3, seed=7, tag="stall", stalling_buffers=True)
    assert len(results) == 12 and all(r["ok"] for r in results)
    assert all(r["stall_cycles"] > 0 for r in results)


def test_engine_elaborated_for_ecp5():
    # The ULX3S build's PE array: registered MULT18X18D blocks instead of inferred multiplies
    # (run with a behavioural model of the block); every mode still matches the golden model.
    results = run_engine_tb("icarus", shapes=4, seed=21, tag="ecp5", ecp5=True)
    assert len(results) == 16 and all(r["ok"] for r in results)
