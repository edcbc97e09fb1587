# amaranth: UnusedElaboratable=no
# (register_map builds a ControlRegisters only to read the shapes of its signature.)
"""Write the accelerator's Verilog and what a host needs to drive it (``edgetrain generate``).

``generate(cfg, out_dir, top="accelerator")`` writes ``accelerator.v`` (module
``accelerator``, the ``Accelerator`` of ``hw/accel/top.py``) and, all from the same
layouts:

``manifest.json``
    the top and its Verilog file, the configuration, every port (name, direction, width),
    ``registers`` (``register_map``), ``isa`` (``isa_map``) and ``enums`` (``enum_map``:
    the members of every enumeration a field holds).
``edgetrain_accel.h`` / ``edgetrain_accel.py``
    the same facts as C macros (``EDGETRAIN_`` + name) and as Python constants
    (``host_constants``).

``top="engine"`` writes the bare ``ConvEngineTile`` instead (``engine_tile.v``) and a
manifest with its ports, the configuration, the descriptor's fields and the modes.

Every field is ``{"name", "offset", "width"}`` (plus ``"signed": true`` or ``"enum"``, the
enumeration's name, when the field has one), found by walking the ``amaranth.lib.data``
layouts: nested layouts flatten to dotted names (``deps.pop_prev``, ``dma.n0``, ``lanes.2``).
A register's offsets count from bit 0 of its first word, LSB first across its ``words``
words; an instruction's from bit 0 of its ``INSN_BITS``-bit record.
"""

import enum
import re
from typing import NamedTuple

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data
from amaranth.lib.wiring import Flow

from edgetrain.outputs import output_dir, write_json, write_text
from .accel.control import REGISTER_BITS, ControlRegisters, Reg
from .accel.isa import INSN_BITS, INSN_BYTES, Opcode, instruction_layout
from .accel.sequencer import ErrorCode
from .accel.top import Accelerator
from .buffers.kinds import Buffer
from .engine.descriptor import MODES, DescriptorLayout
from .engine.tile import ConvEngineTile

__all__ = ["TOPS", "HEADER_FILE", "CONSTANTS_FILE", "Generated", "top_ports",
           "layout_fields", "shape_fields", "descriptor_map", "register_map", "isa_map",
           "enum_map", "host_constants", "c_header", "python_module", "generate"]

#: What ``generate`` can write: Verilog module name of each top.
TOPS = {"accelerator": "accelerator", "engine": "engine_tile"}
HEADER_FILE = "edgetrain_accel.h"
CONSTANTS_FILE = "edgetrain_accel.py"


class Generated(NamedTuple):
    """What ``generate`` wrote: the Verilog, every other file (manifest first), the manifest."""
    verilog: object
    files: list
    manifest: dict


def top_ports(component):
    """Return the Verilog ports of ``component``'s top: name, direction and width."""
    rows = [{"name": "clk", "dir": "input", "width": 1},
            {"name": "rst", "dir": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        rows.append({"name": "__".join(str(p) for p in path),
                     "dir": "input" if member.flow == Flow.In else "output",
                     "width": len(value.as_value() if hasattr(value, "as_value") else value)})
    return rows


def layout_fields(layout, *, offset=0, prefix=""):
    """Return the leaf fields of ``layout`` (any ``data.Layout``), nested names dotted.

    ``offset`` is added to every field's offset and ``prefix`` put before every name."""
    rows = []
    for key, field in layout:
        rows += shape_fields(field.shape, name=f"{prefix}{key}", offset=offset + field.offset)
    return rows


def shape_fields(shape, *, name, offset):
    """Return the leaf fields of a value of ``shape`` called ``name`` at bit ``offset``."""
    if isinstance(shape, data.Layout):
        return layout_fields(shape, offset=offset, prefix=f"{name}.")
    cast = Shape.cast(shape)
    row = {"name": name, "offset": offset, "width": cast.width}
    if cast.signed:
        row["signed"] = True
    if isinstance(shape, type) and issubclass(shape, enum.Enum):
        row["enum"] = shape.__name__
    return [row]


def register_map(cfg):
    """Return every register of ``Reg``: name, word address, access, words and fields.

    A register's shape is that of the ``ControlRegisters`` member of the same name
    (``STATUS`` -> ``status``: ``StatusLayout``); a plain one has one field, ``value``."""
    return [{"name": reg.name, "address": reg.value, "access": reg.access,
             "words": -(-layout.size // REGISTER_BITS), "fields": layout_fields(layout)}
            for reg, layout in _register_layouts(cfg).items()]


def _register_layouts(cfg):
    """``{Reg: layout}`` (a plain register: a struct of one field, ``value``)."""
    members = ControlRegisters(config=cfg).signature.members
    shapes = {reg: members[reg.name.lower()].shape for reg in Reg}
    return {reg: shape if isinstance(shape, data.Layout) else data.StructLayout({"value": shape})
            for reg, shape in shapes.items()}


def isa_map(cfg):
    """Return the instruction set of ``cfg``: sizes, opcodes (with their queue), header and
    body fields (offsets from bit 0 of the instruction), error codes, buffers and the
    engine's modes (the COMPUTE body's ``desc.mode`` is the index in ``modes``)."""
    header, bodies = [], {}
    for name, field in instruction_layout(cfg):
        if name != "body":
            header += shape_fields(field.shape, name=name, offset=field.offset)
            continue
        for body, member in field.shape:
            bodies[body] = layout_fields(member.shape, offset=field.offset + member.offset)
    return {"bits": INSN_BITS, "bytes": INSN_BYTES,
            "opcodes": [{"name": op.name, "value": op.value, "queue": op.queue.name}
                        for op in Opcode],
            "header": header, "bodies": bodies, "error_codes": _members(ErrorCode),
            "buffers": _members(Buffer), "modes": list(MODES)}


def _members(kind):
    return {m.name: m.value for m in kind}


def enum_map(cfg):
    """Return every enumeration a register or instruction field holds: ``{class name:
    {member: value}}``."""
    found = {}
    for layout in [instruction_layout(cfg), *_register_layouts(cfg).values()]:
        found |= _enums_in(layout)
    return {kind.__name__: _members(kind) for kind in found.values()}


def _enums_in(shape):
    if isinstance(shape, data.Layout):
        return {k: v for _, field in shape for k, v in _enums_in(field.shape).items()}
    if isinstance(shape, type) and issubclass(shape, enum.Enum):
        return {shape.__name__: shape}
    return {}


def descriptor_map(cfg):
    """Return the bit fields of the engine's descriptor payload (offset, width)."""
    return [{"field": name, "offset": f.offset, "width": Shape.cast(f.shape).width}
            for name, f in DescriptorLayout(cfg)]


def _macro(name):
    return name.replace(".", "_").upper()


_FIELDS = "register fields"


def _snake(camel):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).upper()


def _field_constants(reg, field):
    stem = f"{reg['name']}_{_macro(field['name'])}"
    shift, width = field["offset"] % REGISTER_BITS, field["width"]
    rows = [(f"{stem}_SHIFT", shift), (f"{stem}_WIDTH", width)]
    if shift + width <= REGISTER_BITS:
        rows.append((f"{stem}_MASK", ((1 << width) - 1) << shift))
    if reg["words"] > 1:
        rows.insert(0, (f"{stem}_REG", reg["address"] + field["offset"] // REGISTER_BITS))
    return rows


def host_constants(manifest):
    """Return the host's constants of an accelerator ``manifest``: ``{section: [(name,
    value)]}``.

    ``REG_<R>`` is register ``R``'s word address (``<R>_WORDS`` its words when more than
    one); a field ``F`` of ``R`` has ``<R>_<F>_SHIFT`` and ``_WIDTH`` within its word,
    ``_MASK`` (in place) when it fits one word and ``_REG``, its LSB's word, when ``R``
    has several. ``<E>_<M>`` is member ``M`` of enumeration ``E`` (``OPCODE_LOAD``,
    ``ERROR_CODE_DEADLOCK``, ``BUFFER_ACT``, ``POOL_MODE_FORWARD``), ``MODE_<M>`` the
    engine's mode ``M`` (``MODE_FP``);
    ``INSN_<F>_OFFSET`` / ``_WIDTH`` place header field ``F`` and ``INSN_<BODY>_<F>_...``
    the fields of each body in the instruction record."""
    isa, regs = manifest["isa"], manifest["registers"]
    sections = {
        "sizes": [("REGISTER_BITS", REGISTER_BITS), ("INSN_BITS", isa["bits"]),
                  ("INSN_BYTES", isa["bytes"])],
        "register word addresses": [(f"REG_{r['name']}", r["address"]) for r in regs]
        + [(f"{r['name']}_WORDS", r["words"]) for r in regs if r["words"] > 1],
        _FIELDS: [c for r in regs for f in r["fields"] for c in _field_constants(r, f)],
        "enumerations": [(f"{_snake(kind)}_{k}", v) for kind, members
                         in manifest["enums"].items() for k, v in members.items()],
        "engine modes (COMPUTE desc.mode)": [(f"MODE_{m.upper()}", i)
                                             for i, m in enumerate(isa["modes"])],
        "instruction fields: bit offset in the record, width": [
            (f"INSN_{stem}{_macro(f['name'])}_{part}", f[key])
            for stem, fields in [("", isa["header"])]
            + [(f"{_macro(b)}_", fs) for b, fs in isa["bodies"].items()]
            for f in fields for part, key in (("OFFSET", "offset"), ("WIDTH", "width"))],
    }
    names = [n for rows in sections.values() for n, _ in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"host constant names collide: {', '.join(twice)}")
    return sections


def _value(title, name, value):
    """A constant as text: register field masks in hex, the rest in decimal."""
    return hex(value) if title == _FIELDS and name.endswith("_MASK") else str(value)


_BANNER = ("edgetrain accelerator: register map and instruction set of this configuration.\n"
           "Generated by `edgetrain generate` from hw/accel/control.py and hw/accel/isa.py; "
           "do not edit.")


def c_header(sections):
    """Return the C header of ``host_constants`` (``EDGETRAIN_`` + name, unsigned)."""
    lines = ["/* " + _BANNER.replace("\n", "\n * ") + " */", "#ifndef EDGETRAIN_ACCEL_H",
             "#define EDGETRAIN_ACCEL_H"]
    for title, rows in sections.items():
        lines += ["", f"/* {title} */"]
        lines += [f"#define EDGETRAIN_{n} {_value(title, n, v)}u" for n, v in rows]
    return "\n".join(lines + ["", "#endif /* EDGETRAIN_ACCEL_H */", ""])


def python_module(sections):
    """Return the Python module of ``host_constants`` (plain integer constants)."""
    lines = ['"""' + _BANNER + '\n"""']
    for title, rows in sections.items():
        lines += ["", f"# {title}"] + [f"{n} = {_value(title, n, v)}" for n, v in rows]
    return "\n".join(lines + [""])


def generate(cfg, out_dir, *, top="accelerator"):
    """Write ``top`` (a key of ``TOPS``) of configuration ``cfg`` into the folder
    ``out_dir`` (see the module docstring); return what was written as ``Generated``."""
    if top not in TOPS:
        raise ValueError(f"top must be one of {', '.join(TOPS)}, not {top!r}")
    out, module = output_dir(out_dir), TOPS[top]
    component = (Accelerator if top == "accelerator" else ConvEngineTile)(config=cfg)
    manifest = {"top": module, "verilog": f"{module}.v", "config": cfg.to_dict(),
                "ports": top_ports(component)}
    if top == "engine":
        manifest |= {"descriptor": descriptor_map(cfg), "modes": list(MODES)}
    else:
        manifest |= {"registers": register_map(cfg), "isa": isa_map(cfg),
                     "enums": enum_map(cfg)}
    src = write_text(out / manifest["verilog"],
                     verilog.convert(component, name=module, emit_src=False))
    files = [write_json(out / "manifest.json", manifest)]
    if top == "accelerator":
        constants = host_constants(manifest)
        files += [write_text(out / HEADER_FILE, c_header(constants)),
                  write_text(out / CONSTANTS_FILE, python_module(constants))]
    return Generated(src, files, manifest)
