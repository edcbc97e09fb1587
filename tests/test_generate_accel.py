"""``edgetrain generate``: the accelerator's Verilog, manifest, C header and Python constants
agree with the layouts they come from (hw/accel/control.py, isa.py); ``--top engine`` still
writes the tile. No simulator (the register access is checked in Amaranth's)."""

import enum
import importlib.util
import json
import re
import shutil
import subprocess

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from edgetrain.cli import main
from edgetrain.hw.accel.control import ControlRegisters, ErrorDetail, Reg, counter_layout
from edgetrain.hw.accel.isa import INSN_BYTES, Opcode, instruction_layout
from edgetrain.hw.accel.sequencer import ErrorCode, StatusLayout
from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.descriptor import MODES
from edgetrain.hw.generate import CONSTANTS_FILE, HEADER_FILE, generate

# Small enough to convert in a few seconds, with every block of the default accelerator.
SMALL = dict(tm=4, tn=4, max_kernel=3, max_channels=8, max_size=8, max_batch=2,
             input_depth=32, weight_depth=16, output_depth=32, refresh=["none"] * 3)
CFG = AcceleratorConfig(**{**SMALL, "refresh": tuple(SMALL["refresh"])})


def _toml(path, values):
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return path


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """The folder ``edgetrain generate --config SMALL -o DIR`` wrote."""
    root = tmp_path_factory.mktemp("generate")
    config = _toml(root / "small.toml", SMALL)
    assert main(["generate", "--config", str(config), "-o", str(root / "out")]) == 0
    return root / "out"


@pytest.fixture(scope="module")
def manifest(out):
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def constants(out):
    spec = importlib.util.spec_from_file_location("edgetrain_accel", out / CONSTANTS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {k: v for k, v in vars(module).items() if k.isupper()}


def _bits(value, field):
    return (value >> field["offset"]) & ((1 << field["width"]) - 1)


def _nested(dotted, value):
    """``"a.b.c", v`` -> ``{"a": {"b": {"c": v}}}``."""
    for key in reversed(dotted.split(".")):
        value = {key: value}
    return value


def _leaf_shape(layout, dotted):
    """The shape of the field ``dotted`` (``"a.b"``) of ``layout``, found by walking it."""
    shape = layout
    for key in dotted.split("."):
        shape = dict(shape)[int(key) if key.isdigit() else key].shape
    return shape


def _all_ones(shape):
    """A value of ``shape`` and the bits it leaves: all ones, or for an enumeration its
    largest member."""
    if isinstance(shape, type) and issubclass(shape, enum.Enum):
        member = max(shape, key=lambda m: m.value)
        return member, member.value
    shape = Shape.cast(shape)
    return (-1 if shape.signed else (1 << shape.width) - 1), (1 << shape.width) - 1


def _check_fields(layout, fields, enums, prefix=""):
    """Every manifest field, set alone to all ones through ``layout.const``, is exactly
    ``width`` ones at ``offset``, its ``signed`` and ``enum`` are the layout's (the enum's
    members in ``enums``); together the fields cover the layout's bits once. ``prefix``
    goes before the manifest's names (``"body.pool."``)."""
    for field in fields:
        shape = _leaf_shape(layout, prefix + field["name"])
        value, bits = _all_ones(shape)
        got = layout.const(_nested(prefix + field["name"], value)).as_value().value
        assert got == bits << field["offset"], field
        is_enum = isinstance(shape, type) and issubclass(shape, enum.Enum)
        assert field.get("enum") == (shape.__name__ if is_enum else None), field
        assert field.get("signed", False) == Shape.cast(shape).signed, field
        if is_enum:
            assert enums[shape.__name__] == {m.name: m.value for m in shape}
    covered = sorted((f["offset"], f["offset"] + f["width"]) for f in fields)
    assert all(a[1] <= b[0] for a, b in zip(covered, covered[1:]))
    assert covered[-1][1] <= layout.size


def _layout_of(name):
    return {"STATUS": StatusLayout, "ERRORS": ErrorDetail,
            "COUNTERS": counter_layout(CFG)}.get(name)


def test_manifest_registers_are_the_register_map(manifest):
    assert [r["name"] for r in manifest["registers"]] == [r.name for r in Reg]
    for reg in manifest["registers"]:
        assert reg["address"] == Reg[reg["name"]].value
        assert reg["access"] == Reg[reg["name"]].access
        layout = _layout_of(reg["name"])
        if layout is not None:
            _check_fields(layout, reg["fields"], manifest["enums"])
            assert sum(f["width"] for f in reg["fields"]) == layout.size
            assert reg["words"] == -(-layout.size // 32)
    counters = next(r for r in manifest["registers"] if r["name"] == "COUNTERS")
    assert counters["address"] + counters["words"] <= 1 << 7


def test_status_decodes_with_the_manifest_offsets_only(manifest):
    fields = {f["name"]: f for r in manifest["registers"] if r["name"] == "STATUS"
              for f in r["fields"]}
    for code in ErrorCode:
        for busy, done in ((0, 0), (1, 0), (0, 1)):
            word = StatusLayout.const({"busy": busy, "done": done, "error": code})
            word = word.as_value().value
            assert (_bits(word, fields["busy"]), _bits(word, fields["done"]),
                    _bits(word, fields["error"])) == (busy, done, code.value)


async def _access_bench(ctx, dut, found):
    """Write all ones to every register, read it back, record what came back."""
    ctx.set(dut.status, StatusLayout.const({"busy": 1, "error": ErrorCode.FETCH}))
    for reg in Reg:
        ctx.set(dut.port.addr, reg.value)
        ctx.set(dut.port.w_data, 0xFFFF_FFFF)
        ctx.set(dut.port.w_en, 1)
        await ctx.tick()
        ctx.set(dut.port.w_en, 0)
        ctx.set(dut.port.r_en, 1)
        await ctx.tick()
        ctx.set(dut.port.r_en, 0)
        found[reg.name] = ctx.get(dut.port.r_data)


def test_register_access_and_widths_are_what_the_hardware_does(manifest):
    dut, found = ControlRegisters(config=CFG), {}
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    async def bench(ctx):
        await _access_bench(ctx, dut, found)
    sim.add_testbench(bench)
    sim.run()
    status = StatusLayout.const({"busy": 1, "error": ErrorCode.FETCH}).as_value().value
    for reg in manifest["registers"]:
        width = sum(f["width"] for f in reg["fields"])
        expected = {"WO": 0, "RW": (1 << width) - 1,
                    "RO": status if reg["name"] == "STATUS" else 0}[reg["access"]]
        assert found[reg["name"]] == expected, reg["name"]


def test_manifest_isa_is_the_instruction_layout(manifest):
    isa, layout = manifest["isa"], instruction_layout(CFG)
    assert (isa["bits"], isa["bytes"]) == (512, INSN_BYTES)
    assert isa["opcodes"] == [{"name": op.name, "value": op.value, "queue": op.queue.name}
                              for op in Opcode]
    assert isa["error_codes"] == {e.name: e.value for e in ErrorCode}
    assert isa["buffers"] == {b.name: b.value for b in Buffer}
    assert isa["modes"] == list(MODES)
    assert [f["name"] for f in isa["header"]] == ["op", "deps.pop_prev", "deps.pop_next",
                                                  "deps.push_prev", "deps.push_next"]
    _check_fields(layout, isa["header"], manifest["enums"])
    body = dict(layout)["body"].shape
    assert sorted(isa["bodies"]) == sorted(name for name, _ in body)
    for name, fields in isa["bodies"].items():
        _check_fields(layout, fields, manifest["enums"], prefix=f"body.{name}.")
        assert sum(f["width"] for f in fields) == dict(body)[name].shape.size


def test_python_constants_match_the_manifest(manifest, constants):
    expected = {"REGISTER_BITS": 32, "INSN_BITS": 512, "INSN_BYTES": INSN_BYTES}
    for reg in manifest["registers"]:
        expected[f"REG_{reg['name']}"] = reg["address"]
        if reg["words"] > 1:
            expected[f"{reg['name']}_WORDS"] = reg["words"]
        for f in reg["fields"]:
            stem, shift = f"{reg['name']}_{f['name'].replace('.', '_').upper()}", f["offset"] % 32
            expected |= {f"{stem}_SHIFT": shift, f"{stem}_WIDTH": f["width"]}
            if shift + f["width"] <= 32:
                expected[f"{stem}_MASK"] = ((1 << f["width"]) - 1) << shift
            if reg["words"] > 1:
                expected[f"{stem}_REG"] = reg["address"] + f["offset"] // 32
    isa = manifest["isa"]
    snake = {"Opcode": "OPCODE", "ErrorCode": "ERROR_CODE", "Buffer": "BUFFER",
             "PoolMode": "POOL_MODE", "EltwiseOp": "ELTWISE_OP"}
    assert set(manifest["enums"]) == set(snake)
    expected |= {f"{snake[kind]}_{k}": v for kind, members in manifest["enums"].items()
                 for k, v in members.items()}
    expected |= {f"MODE_{m.upper()}": MODES.index(m) for m in MODES}
    for stem, fields in [("", isa["header"])] + [(f"{b.upper()}_", fs)
                                                  for b, fs in isa["bodies"].items()]:
        for f in fields:
            name = f"INSN_{stem}{f['name'].replace('.', '_').upper()}"
            expected |= {f"{name}_OFFSET": f["offset"], f"{name}_WIDTH": f["width"]}
    assert constants == expected
    assert constants["STATUS_ERROR_MASK"] >> constants["STATUS_ERROR_SHIFT"] == 0xF
    assert constants["OPCODE_FINISH"] == Opcode.FINISH.value


def test_c_header_compiles_and_equals_the_python_constants(out, constants, tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")
    prints = "".join(f'    printf("{n} %llu\\n", (unsigned long long)EDGETRAIN_{n});\n'
                     for n in constants)
    src = tmp_path / "probe.c"
    src.write_text(f'#include <stdio.h>\n#include "{HEADER_FILE}"\n#include "{HEADER_FILE}"\n'
                   f"int main(void) {{\n{prints}    return 0;\n}}\n")
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(out), str(src),
                    "-o", str(tmp_path / "probe")], check=True)
    printed = subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True,
                             text=True).stdout.split()
    assert dict(zip(printed[::2], map(int, printed[1::2]))) == constants
    defined = re.findall(r"^#define EDGETRAIN_(\w+) ", (out / HEADER_FILE).read_text(), re.M)
    assert sorted(defined) == sorted(constants)


def _top_ports(verilog, top):
    """``{name: (dir, width)}`` of module ``top``'s ports in ``verilog``."""
    body = verilog[verilog.index(f"module {top}("):]
    body = body[:body.index("endmodule")]
    return {name: (d, int(msb) + 1 if msb else 1) for d, msb, name in
            re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M)}


def test_manifest_ports_are_the_verilog_top(out, manifest):
    assert manifest["top"] == "accelerator" and manifest["verilog"] == "accelerator.v"
    assert manifest["config"] == CFG.to_dict()
    ports = _top_ports((out / "accelerator.v").read_text(), "accelerator")
    assert ports == {p["name"]: (p["dir"], p["width"]) for p in manifest["ports"]}


def test_top_engine_still_writes_the_tile(tmp_path, capsys):
    config = _toml(tmp_path / "small.toml", SMALL)
    assert main(["generate", "--top", "engine", "--config", str(config),
                 "-o", str(tmp_path / "tile")]) == 0
    assert "engine_tile.v" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "tile" / "manifest.json").read_text())
    assert (manifest["top"], manifest["verilog"]) == ("engine_tile", "engine_tile.v")
    assert {"descriptor", "modes"} <= set(manifest) and "registers" not in manifest
    ports = _top_ports((tmp_path / "tile" / "engine_tile.v").read_text(), "engine_tile")
    assert ports == {p["name"]: (p["dir"], p["width"]) for p in manifest["ports"]}
    assert sorted(p.name for p in (tmp_path / "tile").iterdir()) == ["engine_tile.v",
                                                                     "manifest.json"]


@pytest.mark.parametrize("top", ["accelerator", "engine"])
@pytest.mark.parametrize("path", ["/proc/nope", "FILE"])
def test_bad_output_path_is_one_line_and_exit_2(top, path, tmp_path, capsys):
    if path == "FILE":
        path = str(tmp_path / "a_file")
        (tmp_path / "a_file").write_text("")
    assert main(["generate", "--top", top, "-o", path]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgetrain: error: cannot write"), err
    assert path in lines[0] and not out


def test_refresh_policy_changes_the_accelerator_verilog(out, tmp_path):
    periodic = CFG.replace(refresh=("periodic", "none", "none"), retention_cycles=64)
    written = generate(periodic, tmp_path)
    assert written.verilog.read_text() != (out / "accelerator.v").read_text()
    assert written.manifest["config"]["refresh"] != CFG.to_dict()["refresh"]


def test_a_bad_top_is_refused():
    with pytest.raises(ValueError, match="top must be one of accelerator, engine, not 'x'"):
        generate(CFG, "/nonexistent", top="x")
