"""Benchmark: DMA tile transfers in the tile-contiguous vs the naive NCHW/OIHW layout.

The cycle model (``reference.dma_model``, validated against the RTL by
``tests/test_dma_model.py``) counts bursts, beats and bus cycles of every tile transfer of a
training step for each layer set; ``rtl`` also runs the first tiles of every tensor of one
VGG-like layer on the RTL in both layouts and sets the measured figures beside the model's.
"""

import json
import tempfile
from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.sim.reference.dma_model import (
    VGG_LIKE,
    descriptor_figures,
    layer_descriptors,
    layer_set,
    set_figures)
from edgetrain.sim.tb.dma_run import run_dma_tb

__all__ = ["SETS", "RTL_LAYERS", "bench_dma", "measure_rtl"]

SETS = ("digits-cnn", "vgg-like")
RTL_LAYERS = tuple(layer.name for layer in VGG_LIKE)
FORMS = ("tiled", "naive")


def bench_dma(*, config, burst_gap=4, tile_side=8, rtl_layer=None, rtl_tiles=8,
              simulator="verilator", note=None):
    """Return the figures (the JSON document) of every layer set under ``config``.

    ``burst_gap`` idle bus cycles follow each burst (the DRAM cost); activation tiles are
    ``tile_side`` square. ``rtl_layer`` (a name of ``RTL_LAYERS``) adds ``measure_rtl``'s
    figures under ``"rtl"``; ``note(text)`` hears of the long RTL run before it starts.
    """
    if burst_gap < 0:
        raise ConfigError(f"burst_gap must be >= 0, not {burst_gap}")
    if tile_side < 1:
        raise ConfigError(f"tile_side must be >= 1, not {tile_side}")
    result = {"config": {k: config.to_dict()[k] for k in ("tm", "tn", "axi_data_bits",
                                                           "max_burst_beats",
                                                           "max_outstanding_reads")},
              "model": {"burst_gap": burst_gap, "tile_side": tile_side, "batch": 1,
                        "source": "cycle model validated against the RTL "
                                  "(tests/test_dma_model.py)"},
              "sets": {}}
    for name in SETS:
        rows, totals = set_figures(layer_set(name), cfg=config, gap=burst_gap,
                                   tile_side=tile_side)
        _, plain = set_figures(layer_set(name), cfg=config, gap=0, tile_side=tile_side)
        result["sets"][name] = {**totals, "axiram_no_gap": plain, "tensors": rows}
    if rtl_layer is not None:
        result["rtl"] = measure_rtl(config=config, layer=rtl_layer, tiles=rtl_tiles,
                                    burst_gap=burst_gap, tile_side=tile_side,
                                    simulator=simulator, note=note)
    vgg = result["sets"]["vgg-like"]
    result.update({form: vgg[form] for form in FORMS})
    result["burst_ratio"] = vgg["burst_ratio"]
    return result


def measure_rtl(*, config, layer, tiles, burst_gap, tile_side, simulator, note=None):
    """Run the first ``tiles`` tiles of every tensor of VGG-like ``layer`` on the RTL, both
    layouts; return the measured figures beside the model's per layout, and the burst
    ratio. Raises ``AssertionError`` if the DMA fails its checks."""
    if layer not in RTL_LAYERS:
        raise ConfigError(f"rtl layer {layer!r} is not a VGG-like layer; choose from "
                          f"{', '.join(RTL_LAYERS)}")
    if tiles < 1:
        raise ConfigError(f"rtl tiles must be >= 1, not {tiles}")
    bus = config.axi_data_bits // 8
    shape = VGG_LIKE[RTL_LAYERS.index(layer)]
    descs = {form: layer_descriptors(shape, form=form, cfg=config, tile_side=tile_side,
                                     limit=tiles) for form in FORMS}
    items = [{"tensor": t, "form": form, "desc": d.__dict__}
             for form, ds in descs.items() for t, d in ds]
    if note:
        note(f"running {len(items)} tile transfers of {layer} on {simulator} "
             f"(minutes for a whole layer)...")
    measured = _replay(items, descs, config, burst_gap, simulator, bus)
    out = {}
    for form, ds in descs.items():
        rtl = [r for r in measured if r["form"] == form]
        cycles, beats = sum(r["cycles"] for r in rtl), sum(r["beats"] for r in rtl)
        out[form] = {"transfers": len(rtl), "bursts": sum(r["bursts"] for r in rtl),
                     "beats": beats, "bus_cycles": cycles, "busy_fraction": beats / cycles,
                     "model": descriptor_figures(ds, bus_bytes=bus,
                                                 max_beats=config.max_burst_beats,
                                                 gap=burst_gap)}
    out["burst_ratio"] = out["naive"]["bursts"] / max(out["tiled"]["bursts"], 1)
    return out


def _replay(items, descs, config, burst_gap, simulator, bus):
    """Run the transfers ``items`` on the RTL; return the testbench's per-transfer stats."""
    rows_needed = max(d.n0 * d.n1 * d.n2 for ds in descs.values() for _, d in ds)
    dram_end = max(a + n for ds in descs.values() for _, d in ds for a, n in d.segments(bus))
    with tempfile.TemporaryDirectory() as tmp:
        replay, stats = Path(tmp) / "replay.json", Path(tmp) / "stats.json"
        replay.write_text(json.dumps(items))
        run_dma_tb(simulator=simulator, testcase="replay", replay=replay, stats=stats,
                   data_bits=config.axi_data_bits, addr_bits=config.axi_addr_bits,
                   buf_depth=1 << max(rows_needed - 1, 1).bit_length(),
                   max_burst_beats=config.max_burst_beats,
                   max_outstanding_reads=config.max_outstanding_reads, axi_pause=0,
                   buf_stall=0, burst_gap=burst_gap,
                   mem_bytes=1 << (dram_end - 1).bit_length())
        return json.loads(stats.read_text())
