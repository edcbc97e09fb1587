"""cocotb benchmark of ``Accelerator``: whole layers DRAM to DRAM, timed from start to done.

For each entry of the ``layers`` parameter (``{"set", "name", "mode", "layer", "lifetime"}``:
a ``LayerShape`` as a dict, and ``tile_layer``'s ``lifetime``) random operands are written
into DRAM in the row layout, the program of ``layer_program`` (tiled, ping-pong, overlapped)
runs, and every result is checked against the golden model of the whole layer. While it
runs the counters are sampled every ``sample`` cycles (the queues' busy and token-wait
cycles, the banks' refreshes), the timeline ``--plot`` draws. The figures go to the JSON
file ``out``: per layer the cycles, useful MACs, tiles, instructions, the counters at done,
the timeline and the mismatches.

The DRAM (cocotbext-axi ``AxiRam``) answers without pauses: the figures are the
accelerator's, not a slow memory's. Parameters (``EDGETRAIN_PARAMS``): ``config``,
``seed``, ``layers``, ``sample``, ``out``, ``mem_bytes``, ``exact`` (default true: a
mismatch fails the test; false records it only, for a run that is expected to lose data).
"""

import json
import os

import cocotb
import numpy as np

from edgetrain.firmware.tiling import layer_program, tile_layer
from edgetrain.hw.accel.isa import program_bytes
from edgetrain.hw.accel.sequencer import ErrorCode
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.descriptor import LayerShape
from edgetrain.sim.reference import engine as ref
from . import accel_layers
from .accel_bench import AccelBench

P = {"seed": 1, "sample": 512, "mem_bytes": 1 << 22, "exact": True,
     **json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))}
CFG = AcceleratorConfig(**P["config"])


def _queues(counters):
    return {q: {"busy": int(getattr(counters.queues, q).busy),
                "wait": int(getattr(counters.queues, q).wait)}
            for q in ("load", "compute", "store")}


def _banks(counters):
    return {b.port_name: {name: int(getattr(getattr(counters.banks, b.port_name), name))
                          for name in ("refreshes", "stall_cycles", "violations")}
            for b in Buffer}


async def _layer(bench, rng, entry):
    """Run one entry; return its figures."""
    mode, lay = entry["mode"], LayerShape(**entry["layer"])
    case = ref.random_case(rng, CFG, mode, layer=lay)
    tiles = tile_layer(CFG, mode, lay, lifetime=entry.get("lifetime"))
    images = accel_layers.images(CFG, case)
    at = accel_layers.place(images, bench.program_at)
    for name, image in images.items():
        bench.ram.write(at[name], image)
    program = layer_program(CFG, mode, lay, at, tiles=tiles, **accel_layers.options(case))
    timeline = []

    async def sample():
        c = await bench.counters(CFG)
        timeline.append({"cycle": int(c.cycles), "queues": _queues(c),
                         "refreshes": sum(v["refreshes"] for v in _banks(c).values())})

    status = await bench.run(program_bytes(CFG, program), limit=20_000_000,
                             every=P["sample"], on_sample=sample)
    assert status == {"done": 1, "error": ErrorCode.NONE}, (entry, status)
    c = await bench.counters(CFG)
    result = accel_layers.result_of(mode)
    errors = accel_layers.check(CFG, case, bench.ram.read(at[result], len(images[result])))
    return {**entry, "tiles": len(tiles), "instructions": len(program),
            "cycles": int(c.cycles), "useful_macs": ref.useful_macs(mode, lay),
            "engine": {"busy_cycles": int(c.engine.busy_cycles), "macs": int(c.engine.macs),
                       "stall_cycles": int(c.engine.stall_cycles)},
            "queues": _queues(c), "banks": _banks(c), "timeline": timeline,
            "mismatches": errors}


@cocotb.test()
async def bench_layers(dut):
    bench = AccelBench(dut, seed=P["seed"], axi_pause=0.0, mem_bytes=P["mem_bytes"])
    await bench.reset()
    rng = np.random.default_rng(P["seed"])
    results = []
    for entry in P["layers"]:
        results.append(await _layer(bench, rng, entry))
        r = results[-1]
        dut._log.info("%s %s %s: %d cycles, %d tiles, %s", r["set"], r["name"], r["mode"],
                      r["cycles"], r["tiles"], "bit-exact" if not r["mismatches"] else
                      r["mismatches"])
    with open(P["out"], "w") as f:
        json.dump(results, f)
    bad = [r for r in results if r["mismatches"]]
    assert not bad or not P["exact"], (f"{len(bad)} layers mismatched: "
                                       f"{[(r['name'], r['mode']) for r in bad]}")
