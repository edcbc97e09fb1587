"""``edgetrain bench dma``: tile transfers in the tile-contiguous vs the naive layout."""

import sys

from edgetrain.errors import ConfigError
from edgetrain.hw.config import load_config
from edgetrain.progress import print_table, write_json

HELP = "DMA bursts, bus cycles and bus busy: tile-contiguous vs naive NCHW/OIHW layouts"
SETS = ("digits-cnn", "vgg-like")


def add_arguments(parser):
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--config", help="accelerator config TOML (bus width, tm/tn, bursts)")
    parser.add_argument("--burst-gap", type=int, default=4,
                        help="DRAM cost per burst in idle data cycles (0 = AxiRam as is)")
    parser.add_argument("--tile-side", type=int, default=8,
                        help="spatial tile side (rows = columns) of activation tiles")
    parser.add_argument("--per-tensor", action="store_true",
                        help="print a row per layer and tensor")
    parser.add_argument("--rtl", action="store_true",
                        help="also run tiles of one VGG-like layer on the RTL and compare")
    parser.add_argument("--rtl-layer", default="conv2_2", help="VGG-like layer for --rtl")
    parser.add_argument("--rtl-tiles", type=int, default=8,
                        help="tiles per tensor and layout for --rtl")
    parser.add_argument("--simulator", default="verilator", choices=("icarus", "verilator"),
                        help="simulator for --rtl")


def _check_rtl_args(args):
    from edgetrain.sim.reference.dma_model import VGG_LIKE
    names = [layer.name for layer in VGG_LIKE]
    if args.rtl_layer not in names:
        raise ConfigError(f"--rtl-layer {args.rtl_layer!r} is not a VGG-like layer; choose "
                          f"from {', '.join(names)}")
    if args.rtl_tiles < 1:
        raise ConfigError(f"--rtl-tiles must be >= 1, not {args.rtl_tiles}")


def _rtl_measure(args, cfg):
    """Run the first tiles of every tensor of one VGG-like layer on the RTL, both layouts;
    return rows of measured vs model figures."""
    import json
    import tempfile
    from pathlib import Path

    from edgetrain.sim.reference.dma_model import VGG_LIKE, descriptor_figures, layer_descriptors
    from .sim_dma import simulate
    layers = {layer.name: layer for layer in VGG_LIKE}
    bus = cfg.axi_data_bits // 8
    descs = {form: layer_descriptors(layers[args.rtl_layer], form=form, cfg=cfg,
                                     tile_side=args.tile_side, limit=args.rtl_tiles)
             for form in ("tiled", "naive")}
    items = [{"tensor": t, "form": form, "desc": d.__dict__}
             for form, ds in descs.items() for t, d in ds]
    rows_needed = max(d.n0 * d.n1 * d.n2 for ds in descs.values() for _, d in ds)
    dram_end = max(a + n for ds in descs.values() for _, d in ds for a, n in d.segments(bus))
    print(f"running {len(items)} tile transfers of {args.rtl_layer} on {args.simulator} "
          f"(minutes for a whole layer)...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        replay, stats = Path(tmp) / "replay.json", Path(tmp) / "stats.json"
        replay.write_text(json.dumps(items))
        simulate(simulator=args.simulator, testcase="replay", replay=replay, stats=stats,
                 data_bits=cfg.axi_data_bits, addr_bits=cfg.axi_addr_bits,
                 buf_depth=1 << max(rows_needed - 1, 1).bit_length(),
                 max_burst_beats=cfg.max_burst_beats,
                 max_outstanding_reads=cfg.max_outstanding_reads, axi_pause=0, buf_stall=0,
                 burst_gap=args.burst_gap, mem_bytes=1 << (dram_end - 1).bit_length())
        measured = json.loads(stats.read_text())
    out = {}
    for form, ds in descs.items():
        rtl = [r for r in measured if r["form"] == form]
        model = descriptor_figures(ds, bus_bytes=bus, max_beats=cfg.max_burst_beats,
                                   gap=args.burst_gap)
        cycles = sum(r["cycles"] for r in rtl)
        beats = sum(r["beats"] for r in rtl)
        out[form] = {"transfers": len(rtl), "bursts": sum(r["bursts"] for r in rtl),
                     "beats": beats, "bus_cycles": cycles, "busy_fraction": beats / cycles,
                     "model": model}
    out["burst_ratio"] = out["naive"]["bursts"] / max(out["tiled"]["bursts"], 1)
    return out


def _print_rtl(rtl, args):
    rows = [[form, r["transfers"], r["bursts"], r["model"]["bursts"], r["beats"],
             r["bus_cycles"], r["model"]["bus_cycles"],
             f"{100 * (r['model']['bus_cycles'] / r['bus_cycles'] - 1):+.1f}%",
             f"{100 * r['busy_fraction']:.1f}%"]
            for form, r in rtl.items() if form != "burst_ratio"]
    print()
    print_table(rows, ["layout", "transfers", "bursts", "model", "beats", "bus cycles",
                       "model", "model err", "busy"],
                title=f"RTL ({args.simulator}) vs model: first {args.rtl_tiles} tiles of "
                      f"each tensor of {args.rtl_layer}, burst gap {args.burst_gap}; burst "
                      f"ratio {rtl['burst_ratio']:.1f}x")


def _pair_rows(rows):
    """Join the tiled and naive rows of each (layer, tensor) into one table row."""
    naive = {(r["set_layer"], r["tensor"]): r for r in rows if r["form"] == "naive"}
    out = []
    for r in rows:
        if r["form"] != "tiled":
            continue
        n = naive[(r["set_layer"], r["tensor"])]
        out.append([r["set_layer"], r["tensor"], r["dir"], r["tiles"], r["bytes"],
                    r["bursts"], n["bursts"], f"{n['bursts'] / max(r['bursts'], 1):.1f}x",
                    r["bus_cycles"], n["bus_cycles"]])
    return out


def _model_sets(args, cfg, result):
    """Compute, print and store the model figures of every layer set."""
    from edgetrain.sim.reference.dma_model import layer_set, set_figures
    summary = []
    for name in SETS:
        rows, totals = set_figures(layer_set(name), cfg=cfg, gap=args.burst_gap,
                                   tile_side=args.tile_side)
        _, plain = set_figures(layer_set(name), cfg=cfg, gap=0, tile_side=args.tile_side)
        result["sets"][name] = {**totals, "axiram_no_gap": plain, "tensors": rows}
        if args.per_tensor:
            print_table(_pair_rows(rows), ["layer", "tensor", "dir", "tiles", "bytes",
                                           "bursts tiled", "bursts naive", "ratio",
                                           "cycles tiled", "cycles naive"],
                        title=f"{name}: per tensor (burst gap {args.burst_gap})")
            print()
        for form in ("tiled", "naive"):
            t, p = totals[form], plain[form]
            summary.append([name, form, t["tiles"], t["bytes"], t["bursts"], t["beats"],
                            t["bus_cycles"], f"{100 * t['busy_fraction']:.1f}%",
                            f"{100 * p['busy_fraction']:.1f}%"])
        summary.append([name, "ratio naive/tiled", "", "", f"{totals['burst_ratio']:.1f}x",
                        "", "", "", ""])
    print_table(summary, ["set", "layout", "tiles", "bytes", "bursts", "beats", "bus cycles",
                          f"busy (gap {args.burst_gap})", "busy (gap 0)"],
                title=f"DMA tile transfers, {cfg.axi_data_bits}-bit AXI, tm={cfg.tm} "
                      f"tn={cfg.tn}, {args.tile_side}x{args.tile_side} activation tiles")


def run(args):
    cfg = load_config(args.config)
    if args.burst_gap < 0:
        raise ConfigError(f"--burst-gap must be >= 0, not {args.burst_gap}")
    if args.tile_side < 1:
        raise ConfigError(f"--tile-side must be >= 1, not {args.tile_side}")
    _check_rtl_args(args)
    result = {"config": {k: cfg.to_dict()[k] for k in ("tm", "tn", "axi_data_bits",
                                                        "max_burst_beats",
                                                        "max_outstanding_reads")},
              "model": {"burst_gap": args.burst_gap, "tile_side": args.tile_side,
                        "batch": 1, "source": "cycle model validated against the RTL "
                                              "(tests/test_dma_model.py)"},
              "sets": {}}
    _model_sets(args, cfg, result)
    if args.rtl:
        result["rtl"] = _rtl_measure(args, cfg)
        _print_rtl(result["rtl"], args)
    vgg = result["sets"]["vgg-like"]
    result.update({"tiled": vgg["tiled"], "naive": vgg["naive"],
                   "burst_ratio": vgg["burst_ratio"]})
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
