"""Board builds: config checks and tool errors (fast), the iCEBreaker bitstream (build)."""

import json

import pytest

from edgetrain.boards.platforms import BOARDS, get_board
from edgetrain.boards.top import board_config
from edgetrain.cli import main
from edgetrain.errors import ConfigError


def write_config(tmp_path, **fields):
    path = tmp_path / "cfg.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in fields.items()))
    return str(path)


def test_board_defaults_fit_their_boards():
    for board in BOARDS.values():
        config = board_config(board, board.default_config())
        assert config.tm * config.tn <= board.max_multipliers


@pytest.mark.parametrize("fields,message", [
    (dict(tm=4, tn=4), "needs 16 multipliers but icebreaker has 8"),
    (dict(tm=2, tn=4), "needs tm == tn"),
])
def test_config_that_does_not_fit_is_refused(tmp_path, capsys, fields, message):
    cfg = write_config(tmp_path, **fields)
    assert main(["build", "--board", "icebreaker", "--config", cfg,
                 "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_board():
    with pytest.raises(ConfigError, match="unknown board 'de10'"):
        get_board("de10")


def test_broken_tool_variable_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("YOSYS", str(tmp_path / "no-yosys"))
    assert main(["build", "--board", "icebreaker", "-o", str(tmp_path / "out")]) == 2
    assert "YOSYS=" in capsys.readouterr().err


@pytest.mark.build
def test_icebreaker_build(tmp_path, capsys):
    out = tmp_path / "icebreaker"
    assert main(["build", "--board", "icebreaker", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["board"], report["device"], report["bitstream"]) == \
        ("icebreaker", "iCE40UP5K", "top.bin")
    assert (out / "top.bin").stat().st_size > 100_000
    res = report["resources"]
    for name in ("LUTs", "FFs", "BRAMs", "SPRAMs"):
        assert 0 < res[name]["used"] <= res[name]["total"], name
    assert res["DSPs"]["total"] == 8 and res["SPRAMs"]["used"] == 4
    cfg = get_board("icebreaker").default_config()
    assert report["engine"]["present"] is True
    assert res["DSPs"]["used"] == cfg.tm * cfg.tn
    assert report["fmax_mhz"] and all(v["achieved"] > 0 for v in report["fmax_mhz"].values())
    assert "icebreaker (iCE40UP5K)" in capsys.readouterr().out


def test_resume_needs_a_synthesised_design(tmp_path, capsys):
    assert main(["build", "--board", "ulx3s-85f", "-o", str(tmp_path), "--from-stage",
                 "pnr"]) == 2
    assert "holds no synthesised design" in capsys.readouterr().err


@pytest.mark.parametrize("board,mhz", [("icebreaker", 40), ("ulx3s-85f", 33)])
def test_unsupported_clock_is_refused(tmp_path, capsys, board, mhz):
    assert main(["build", "--board", board, "--clock-mhz", str(mhz), "-o",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{board} cannot clock the device at {mhz} MHz: choose --clock-mhz from" in err
    assert len(err.strip().splitlines()) == 1


def test_resume_refuses_another_clock(tmp_path, capsys):
    for name in ("top.json", "build_top.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "clock.json").write_text(json.dumps({"board": "ulx3s-85f", "sync_mhz": 40}))
    assert main(["build", "--board", "ulx3s-85f", "-o", str(tmp_path), "--from-stage", "pnr",
                 "--clock-mhz", "50"]) == 2
    assert "synthesised for 40 MHz, not 50 MHz" in capsys.readouterr().err


def test_ecp5_pll_settings_make_their_clocks():
    from edgetrain.boards.clocking import ECP5_PLL_SETTINGS
    for mhz, p in ECP5_PLL_SETTINGS.items():
        # Feedback from CLKOP: f_out = f_in * CLKFB_DIV / CLKI_DIV; the VCO runs at
        # f_out * CLKOP_DIV, which the ECP5 allows between 400 and 800 MHz.
        assert 25 * p["CLKFB_DIV"] / p["CLKI_DIV"] == mhz, mhz
        assert 400 <= mhz * p["CLKOP_DIV"] <= 800, mhz
        assert 25 / p["CLKI_DIV"] >= 3.125, mhz          # phase detector input
    assert get_board("ulx3s-85f").clocks_mhz == tuple(sorted(ECP5_PLL_SETTINGS))


def test_build_that_misses_timing_exits_2_and_does_not_flash(tmp_path, monkeypatch, capsys):
    from edgetrain.boards import deploy

    def missed(**kwargs):          # the report a real build writes when nextpnr misses
        return {"board": "ulx3s-85f", "device": "LFE5U-85F", "bitstream": "top.bit",
                "resources": {}, "fmax_mhz": {"clk": {"achieved": 38.2, "constraint": 40.0}},
                "target_mhz": 40, "timing_met": False, "stage_seconds": {"synth": 1.0},
                "build_seconds": 1.0}

    def no_flash(*args):
        raise AssertionError("a bitstream that missed timing must not be flashed")

    monkeypatch.setattr(deploy, "build_bitstream", missed)
    monkeypatch.setattr(deploy, "flash_bitstream", no_flash)
    assert main(["build", "--board", "ulx3s-85f", "-o", str(tmp_path), "--flash"]) == 2
    err = capsys.readouterr().err
    assert "timing failed: the logic reaches 38.2 MHz, not the 40 MHz clock" in err
    assert "--clock-mhz below 38" in err and len(err.strip().splitlines()) == 1


def test_resume_without_a_recorded_clock_is_refused(tmp_path, capsys):
    for name in ("top.json", "build_top.json"):
        (tmp_path / name).write_text("{}")
    assert main(["build", "--board", "ulx3s-85f", "-o", str(tmp_path), "--from-stage",
                 "pnr"]) == 2
    err = capsys.readouterr().err
    assert "clock.json is missing or unreadable" in err and "build from synth" in err
    assert len(err.strip().splitlines()) == 1
