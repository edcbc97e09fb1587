"""``edgetrain bench dma``: tile transfers in the tile-contiguous vs the naive layout."""

from ..errors import ConfigError
from ..hw.config import load_config
from ..progress import print_table, write_json

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


def run(args):
    from ..sim.dma_model import layer_set, set_figures
    cfg = load_config(args.config)
    if args.burst_gap < 0:
        raise ConfigError(f"--burst-gap must be >= 0, not {args.burst_gap}")
    if args.tile_side < 1:
        raise ConfigError(f"--tile-side must be >= 1, not {args.tile_side}")
    result = {"config": {k: cfg.to_dict()[k] for k in ("tm", "tn", "axi_data_bits",
                                                        "max_burst_beats",
                                                        "max_outstanding_reads")},
              "model": {"burst_gap": args.burst_gap, "tile_side": args.tile_side,
                        "batch": 1, "source": "cycle model validated against the RTL "
                                              "(tests/test_dma_model.py)"},
              "sets": {}}
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
    vgg = result["sets"]["vgg-like"]
    result.update({"tiled": vgg["tiled"], "naive": vgg["naive"],
                   "burst_ratio": vgg["burst_ratio"]})
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
