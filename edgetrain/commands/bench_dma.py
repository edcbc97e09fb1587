"""``edgetrain bench dma``: tile transfers in the tile-contiguous vs the naive layout."""

import sys

from edgetrain.hw.config import load_config
from edgetrain.outputs import output_file, write_json
from edgetrain.progress import print_table
from edgetrain.sim.bench.dma import RTL_LAYERS, SETS, bench_dma
from ._args import add_config, add_json, add_simulator, non_negative_int, positive_int

HELP = "DMA bursts, bus cycles and bus busy: tile-contiguous vs naive NCHW/OIHW layouts"


def add_arguments(parser):
    add_json(parser)
    add_config(parser, help="accelerator config TOML (bus width, tm/tn, bursts)")
    parser.add_argument("--burst-gap", type=non_negative_int, default=4,
                        help="DRAM cost per burst in idle data cycles (0 = AxiRam as is)")
    parser.add_argument("--tile-side", type=positive_int, default=8,
                        help="spatial tile side (rows = columns) of activation tiles")
    parser.add_argument("--per-tensor", action="store_true",
                        help="print a row per layer and tensor")
    parser.add_argument("--rtl", action="store_true",
                        help="also run tiles of one VGG-like layer on the RTL and compare")
    parser.add_argument("--rtl-layer", default="conv2_2", choices=RTL_LAYERS,
                        help="VGG-like layer for --rtl")
    parser.add_argument("--rtl-tiles", type=positive_int, default=8,
                        help="tiles per tensor and layout for --rtl")
    add_simulator(parser, default="verilator", help="simulator for --rtl")


def run(args):
    json_file = output_file(args.json)
    cfg = load_config(args.config)
    doc = bench_dma(config=cfg, burst_gap=args.burst_gap, tile_side=args.tile_side,
                    rtl_layer=args.rtl_layer if args.rtl else None, rtl_tiles=args.rtl_tiles,
                    simulator=args.simulator,
                    note=lambda text: print(text, file=sys.stderr, flush=True))
    if args.per_tensor:
        for name in SETS:
            _print_tensors(name, doc["sets"][name]["tensors"], args.burst_gap)
    _print_sets(doc, cfg, args)
    if "rtl" in doc:
        _print_rtl(doc["rtl"], args)
    if json_file:
        print(f"wrote {write_json(json_file, doc)}")
    return 0


def _print_tensors(name, rows, gap):
    """Print the tiled and naive figures of each (layer, tensor) of one set side by side."""
    naive = {(r["set_layer"], r["tensor"]): r for r in rows if r["form"] == "naive"}
    table = []
    for r in (r for r in rows if r["form"] == "tiled"):
        n = naive[(r["set_layer"], r["tensor"])]
        table.append([r["set_layer"], r["tensor"], r["dir"], r["tiles"], r["bytes"],
                      r["bursts"], n["bursts"], f"{n['bursts'] / max(r['bursts'], 1):.1f}x",
                      r["bus_cycles"], n["bus_cycles"]])
    print_table(table, ["layer", "tensor", "dir", "tiles", "bytes", "bursts tiled",
                        "bursts naive", "ratio", "cycles tiled", "cycles naive"],
                title=f"{name}: per tensor (burst gap {gap})")
    print()


def _print_sets(doc, cfg, args):
    summary = []
    for name in SETS:
        figures = doc["sets"][name]
        for form in ("tiled", "naive"):
            t, p = figures[form], figures["axiram_no_gap"][form]
            summary.append([name, form, t["tiles"], t["bytes"], t["bursts"], t["beats"],
                            t["bus_cycles"], f"{100 * t['busy_fraction']:.1f}%",
                            f"{100 * p['busy_fraction']:.1f}%"])
        summary.append([name, "ratio naive/tiled", "", "", f"{figures['burst_ratio']:.1f}x",
                        "", "", "", ""])
    print_table(summary, ["set", "layout", "tiles", "bytes", "bursts", "beats", "bus cycles",
                          f"busy (gap {args.burst_gap})", "busy (gap 0)"],
                title=f"DMA tile transfers, {cfg.axi_data_bits}-bit AXI, tm={cfg.tm} "
                      f"tn={cfg.tn}, {args.tile_side}x{args.tile_side} activation tiles")


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
