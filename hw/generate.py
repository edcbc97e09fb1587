"""Write the accelerator's Verilog and a manifest of its top (what ``edgetrain generate``
delivers).

The manifest (``manifest.json``) names the top module and its Verilog file, and lists the
configuration, every port (name, direction, width) and the bit fields of the engine's
descriptor, so that a host or an integrator needs nothing but these two files.
"""

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib.wiring import Flow

from edgetrain.outputs import output_dir, write_json, write_text
from .engine.descriptor import MODES, DescriptorLayout
from .engine.tile import ConvEngineTile

__all__ = ["TOP", "top_ports", "descriptor_map", "generate_engine"]

TOP = "engine_tile"


def top_ports(component):
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


def generate_engine(cfg, out_dir):
    """Write ``out_dir/engine_tile.v`` and ``out_dir/manifest.json`` for configuration
    ``cfg``; return ``(verilog path, manifest path, manifest)``."""
    out = output_dir(out_dir)
    tile = ConvEngineTile(config=cfg)
    src = write_text(out / f"{TOP}.v", verilog.convert(tile, name=TOP, emit_src=False))
    manifest = {"top": TOP, "verilog": src.name, "config": cfg.to_dict(),
                "ports": top_ports(tile), "descriptor": descriptor_map(cfg),
                "modes": list(MODES)}
    return src, write_json(out / "manifest.json", manifest), manifest
