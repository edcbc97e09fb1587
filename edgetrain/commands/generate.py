"""``edgetrain generate``: write the accelerator's Verilog and a manifest of its top."""

from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib.wiring import Flow

from edgetrain.hw.config import load_config
from edgetrain.hw.engine.descriptor import DescriptorLayout, MODES
from edgetrain.hw.engine.tile import ConvEngineTile
from edgetrain.progress import print_table, write_json
from edgetrain.sim.tb.runner import write_verilog

HELP = "write the Verilog of the engine and DIR/manifest.json (ports, configuration)"

TOP = "engine_tile"


def add_arguments(parser):
    parser.add_argument("--config", help="accelerator config TOML (default: built-in 8x8)")
    parser.add_argument("-o", "--out", required=True, help="output directory")


def ports(component):
    """Return the Verilog ports of ``component``'s top: name, direction and width."""
    rows = [{"name": "clk", "dir": "input", "width": 1},
            {"name": "rst", "dir": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        rows.append({"name": "__".join(str(p) for p in path),
                     "dir": "input" if member.flow == Flow.In else "output",
                     "width": len(value.as_value() if hasattr(value, "as_value") else value)})
    return rows


def descriptor_map(cfg):
    """Return the bit fields of the engine's descriptor payload (offset, width)."""
    return [{"field": name, "offset": f.offset, "width": Shape.cast(f.shape).width}
            for name, f in DescriptorLayout(cfg)]


def run(args):
    cfg = load_config(args.config)
    out = Path(args.out)
    tile = ConvEngineTile(config=cfg)
    src = write_verilog(tile, out / f"{TOP}.v", name=TOP)
    manifest = {"top": TOP, "verilog": src.name, "config": cfg.to_dict(),
                "ports": ports(tile), "descriptor": descriptor_map(cfg),
                "modes": list(MODES)}
    write_json(out / "manifest.json", manifest)
    print_table([[p["name"], p["dir"], p["width"]] for p in manifest["ports"]],
                ["port", "dir", "width"], title=f"{TOP}: {cfg.tm}x{cfg.tn} conv engine")
    print(f"wrote {src} and {out / 'manifest.json'}")
