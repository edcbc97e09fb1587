"""``sim/bench/accel.py`` without a simulator: the compute set is compute-bound in every
phase by its own definition (``dma_bound``), the bus beats a program moves are the bytes of
its operands in the row layout, and ``edgetrain bench accel`` renders a result document
(tables, JSON, plot)."""

import json

import pytest

from edgetrain.cli import main
from edgetrain.commands import bench_accel as bench_accel_command
from edgetrain.firmware.tiling import RowLayout, tile_layer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.descriptor import LayerShape
from edgetrain.firmware.nets import NETS
from edgetrain.sim.bench.accel import (
    COMPUTE_BOUND, DIGITS_BATCH, PHASES, REFRESH_NETS, _figures, _training_convs, bus_beats,
    dma_bound, layer_sets, phase_utilization)

CFG = AcceleratorConfig()


@pytest.mark.parametrize("mode", PHASES)
def test_the_compute_set_is_compute_bound(mode):
    for name, lay in layer_sets()["compute"]:
        assert dma_bound(CFG, mode, lay) <= COMPUTE_BOUND, name
    # The digits' first conv (one input channel) is not: it is there to be reported.
    _, conv0 = layer_sets()["digits"][0]
    assert dma_bound(CFG, "wu", conv0) > 1


def test_the_refresh_trace_is_a_training_step_the_lifetime_schedule_tiles():
    """Every conv of each refresh net in FP, BP (not the first: its dx is the input's) and
    WU tiles under the lifetime schedule, WU cut along the batch, with more tiles than the
    default schedule has."""
    for net in REFRESH_NETS:
        convs = list(_training_convs(NETS[net], DIGITS_BATCH))
        assert convs[0][2] == ("fp", "wu") and all(m == PHASES for *_, m in convs[1:])
        for name, lay, modes in convs:
            for mode in modes:
                short = tile_layer(CFG, mode, lay, lifetime=True)
                assert len(short) > len(tile_layer(CFG, mode, lay)), (name, mode)
                if mode == "wu":
                    assert any(t.acc for t in short), name


def test_bus_beats_of_one_tile_are_its_operands_bytes():
    lay = LayerShape(n=1, c=8, h=8, w=8, m=8, k=3, pad=1)
    rl, bus = RowLayout(CFG), CFG.axi_data_bits // 8
    sizes = {mode: rl.bytes_of(mode, lay) for mode in PHASES}
    for mode, read, written in (("fp", ("x", "w"), "y"), ("bp", ("dy", "w"), "dx"),
                                ("wu", ("x", "dy"), "grad")):
        assert len(tile_layer(CFG, mode, lay)) == 1
        assert bus_beats(CFG, mode, lay) == {
            "load": sum(sizes[mode][k] for k in read) // bus,
            "store": sizes[mode][written] // bus}


def _record(mode, cycles, macs):
    """One layer's record as the testbench writes it (``tb_accel_bench``), with figures."""
    queues = {q: {"busy": cycles // 3, "wait": cycles // 10} for q in ("load", "compute",
                                                                       "store")}
    r = {"set": "compute", "name": "vgg-64x64-8x8", "mode": mode, "layer": {}, "tiles": 3,
         "instructions": 13, "cycles": cycles, "useful_macs": macs, "dma_bound": 0.15,
         "predicted": cycles + 10,
         "engine": {}, "queues": queues, "mismatches": [],
         "banks": {b: {"refreshes": 5, "stall_cycles": 0, "violations": 0}
                   for b in ("act", "wgt", "out", "mst")},
         "timeline": [{"cycle": cycles // 2, "refreshes": 3,
                       "queues": {q: {"busy": v["busy"] // 2, "wait": v["wait"] // 2}
                                  for q, v in queues.items()}}]}
    return r | _figures(r, CFG)


def test_bench_accel_prints_tables_and_draws_the_plot(tmp_path, monkeypatch, capsys):
    """The command's rendering of a document shaped like ``bench_accel``'s (the benchmark
    itself runs the RTL for tens of minutes: ``edgetrain bench accel``)."""
    layers = [_record("fp", 1000, 60_000), _record("wu", 2000, 64_000)]
    doc = {"sets": {"compute": {"utilization": phase_utilization(layers, CFG),
                                "layers": layers}},
           "refresh": {"digits-revnet": {
               "periodic, lifetime": {
                   "policy": "periodic", "schedule": "lifetime", "refreshes": 400,
                   "violations": 0, "stall_cycles": 9, "cycles": 3000, "runs": 2, "tiles": 7,
                   "predicted": 3030,
                   "wrong_layers": 0, "fewer_than_periodic": 0.0},
               "lifetime, lifetime": {
                   "policy": "lifetime", "schedule": "lifetime", "refreshes": 0,
                   "violations": 0, "stall_cycles": 0, "cycles": 3000, "runs": 2, "tiles": 7,
                   "predicted": 3030,
                   "wrong_layers": 0, "fewer_than_periodic": 1.0},
               "live, default": {
                   "policy": "live", "schedule": "default", "refreshes": 100,
                   "violations": 0, "stall_cycles": 0, "cycles": 2000, "runs": 2, "tiles": 3,
                   "predicted": 1990,
                   "wrong_layers": 0, "fewer_than_periodic": 0.75}}}}
    monkeypatch.setattr(bench_accel_command, "bench_accel", lambda **kw: doc)
    plot = tmp_path / "accel.png"
    assert main(["bench", "accel", "--json", str(tmp_path / "a.json"), "--plot",
                 str(plot)]) == 0
    out = capsys.readouterr().out
    assert "compute: utilization fp 93.75%, wu 50.00%" in out
    assert "75.0%" in out and "100.0%" in out and "digits-revnet" in out
    assert "+1.00%" in out and "-0.50%" in out       # the planner's error per layer / run
    assert "planner cycles within 1.00% of the RTL's on every layer (mean 0.75%)" in out
    assert plot.stat().st_size > 0
    assert json.loads((tmp_path / "a.json").read_text())["refresh"] == doc["refresh"]
