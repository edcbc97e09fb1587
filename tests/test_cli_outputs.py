"""The command line's shared machinery: outputs that cannot be written end with one line and
exit 2 before the work, ``--version``, argument validators, progress in a log (rate-limited)
and on a terminal, tables without colour codes."""

import io
import json
import sys
import time

import pytest
from rich.console import Console

from edgetrain import progress
from edgetrain.cli import main
from edgetrain.errors import OutputError
from edgetrain.outputs import output_dir, output_file, write_json
from edgetrain.progress import Progress, print_table


def _one_error_line(capsys, *needles):
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgetrain: error: "), err
    for needle in needles:
        assert needle in lines[0]
    return out


@pytest.mark.parametrize("argv,path", [
    (["train", "--metrics", "/proc/nope/m.json"], "/proc/nope/m.json"),
    (["train", "--plot", "/proc/nope/p.png"], "/proc/nope/p.png"),
    (["generate", "-o", "/proc/nope"], "/proc/nope"),
    (["bench", "engine", "--json", "/proc/nope.json"], "/proc/nope.json"),
    (["bench", "refresh", "--json", "/proc/nope.json"], "/proc/nope.json"),
    (["bench", "accel", "--plot", "/proc/nope.png"], "/proc/nope.png"),
])
def test_unwritable_output_is_one_line_and_exit_2_before_the_work(argv, path, capsys):
    assert main(argv) == 2
    out = _one_error_line(capsys, "cannot write", path, "No such file or directory")
    assert "training" not in out and "epoch" not in out     # refused before any work


def test_output_helpers_create_folders_and_leave_no_file(tmp_path):
    target = tmp_path / "a" / "b" / "m.json"
    assert output_file(target) == target
    assert target.parent.is_dir() and not target.exists()
    assert output_file(None) is None
    write_json(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}
    assert output_file(target).read_text() == '{\n  "x": 1\n}\n'   # an existing file stays
    assert output_dir(tmp_path / "d") == tmp_path / "d"
    with pytest.raises(OutputError, match="cannot write into folder .*File exists"):
        output_dir(target)
    with pytest.raises(OutputError, match="cannot write .*Is a directory"):
        output_file(tmp_path / "d")


def test_version(capsys):
    from importlib.metadata import version
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"edgetrain {version('edgetrain')}"


@pytest.mark.parametrize("argv,needle", [
    (["train", "--epochs", "x"], "argument --epochs: 'x' is not a number"),
    (["train", "--momentum", "1"], "argument --momentum: must be in [0, 1), not '1'"),
    (["sim", "dma", "--axi-pause", "1.5"], "argument --axi-pause: must be in [0, 1)"),
    (["sim", "accel", "--cases", "0"], "argument --cases: must be a positive integer"),
    (["sim", "accel", "--simulator", "modelsim"], "argument --simulator: invalid choice"),
    (["sim", "dma", "--buf-depth", "1"], "argument --buf-depth: must be an integer >= 2"),
    (["sim", "engine", "--shapes", "0"], "argument --shapes: must be a positive integer"),
    (["sim", "engine", "--modes", "fp,xx"], "unknown mode 'xx'"),
    (["bench", "synth-engine", "--freq", "-1"], "argument --freq: must be positive"),
    (["bench", "update-lanes", "--lanes", "1,-2"], "must be a non-negative integer"),
    (["bench", "dma", "--rtl-tiles", "0"], "argument --rtl-tiles: must be a positive"),
    (["build", "--board", "icebreaker", "--clock-mhz", "0"], "argument --clock-mhz"),
    (["bench", "accel", "--sets", "digits,vgg"], "unknown layer set 'vgg'"),
    (["bench"], "required: TARGET"),
])
def test_bad_argument_is_one_line_and_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    _one_error_line(capsys, needle)


def test_a_command_whose_extra_is_missing_is_one_line_and_the_others_work(tmp_path,
                                                                          monkeypatch, capsys):
    for name in [m for m in sys.modules if m.startswith("amaranth_boards") or
                 m.split(".")[:2] in (["edgetrain", "boards"], ["edgetrain", "commands"])]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "amaranth_boards", None)    # as if not installed
    # Both would fail fast if the real commands ran: no synthesised design, no bitstream.
    assert main(["build", "--board", "icebreaker", "--from-stage", "pnr", "-o",
                 str(tmp_path)]) == 2
    _one_error_line(capsys, "edgetrain build needs amaranth_boards", "pip install")
    assert main(["flash", "--board", "icebreaker", str(tmp_path / "none.bin")]) == 2
    _one_error_line(capsys, "edgetrain flash needs amaranth_boards")
    assert main(["train", "--epochs", "0"]) == 2
    _one_error_line(capsys, "argument --epochs")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_in_a_log_writes_a_line_every_interval_and_the_last():
    log, clock = io.StringIO(), FakeClock()
    with Progress(402, "work", console=Console(file=log), interval=5, clock=clock) as bar:
        for i in range(402):
            clock.now += 0.25                      # 100.5 s in all
            bar.update(postfix=f"step {i}")
    lines = log.getvalue().splitlines()
    assert len(lines) == 100 / 5 + 1
    assert lines[0] == "work: 20/402 (5%) 5.0s  step 19"
    assert lines[-1] == "work: 402/402 (100%) 100.5s  step 401"
    assert "\x1b" not in log.getvalue()


def test_progress_on_a_terminal_draws_a_live_bar():
    screen = io.StringIO()
    with Progress(10, "work", console=Console(file=screen, force_terminal=True, width=80)) as bar:
        for _ in range(10):
            bar.update(postfix="nearly")
    text = screen.getvalue()
    assert "\r" in text and "━" in text and "10/10" in text and "nearly" in text


def test_training_in_a_log_is_rate_limited(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.2)
    start = time.monotonic()
    assert main(["train", "--net", "digits-cnn", "--epochs", "3", "--float"]) in (0, None)
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert 1 <= len(lines) <= seconds / 0.2 + 1, err     # 132 steps, not a line each
    assert lines[-1].startswith("training: 132/132 (100%)") and "epoch 3/3" in lines[-1]
    assert len([ln for ln in out.splitlines() if ln.strip().startswith(("1 ", "2 ", "3 "))]) == 3


def test_table_in_a_log_has_no_colour_and_no_wrapping():
    stream = io.StringIO()
    wide = "x" * 150
    print_table([["fp", 20, 0.98765, wide], ["update", 3, 12.5, "[b]"]],
                ["mode", "runs", "util", "layer"], stream=stream, title="title [x]")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "title [x]"
    assert lines[1].split() == ["mode", "runs", "util", "layer"]
    assert set(lines[2]) <= {"-", " "}
    assert lines[3].split() == ["fp", "20", "0.9877", wide]
    assert lines[4].endswith("[b]") and "\x1b" not in stream.getvalue()
    assert all(line == line.rstrip() for line in lines)
