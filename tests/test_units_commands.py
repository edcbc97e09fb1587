"""``edgetrain sim units`` / ``bench units``: arguments and user errors (one line, exit 2)."""

import pytest

from edgetrain.cli import main


def _one_error_line(capsys, message):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgetrain: error: "), lines
    assert message in lines[0]


@pytest.mark.parametrize("argv,message", [
    (["--beats", "2"], "argument --beats: must be an integer >= 4, not '2'"),
    (["--lanes", "0"], "argument --lanes: must be in 1..64, not '0'"),
    (["--seed", "x"], "argument --seed: 'x' is not a number"),
])
def test_sim_units_rejects_bad_arguments(argv, message, capsys):
    assert main(["sim", "units", *argv]) == 2
    _one_error_line(capsys, message)


@pytest.mark.parametrize("argv,message", [
    (["--units", "requantizer,adder"], "unknown unit 'adder'"),
    (["--lanes", "65"], "argument --lanes: must be in 1..64, not '65'"),
    (["--target-mhz", "0"], "argument --target-mhz: must be positive, not '0'"),
])
def test_bench_units_rejects_bad_arguments(argv, message, capsys):
    assert main(["bench", "units", *argv]) == 2
    _one_error_line(capsys, message)


def test_sim_units_harness_refuses_too_few_beats():
    from edgetrain.errors import ConfigError
    from edgetrain.sim.tb.units_harness import simulate_units
    with pytest.raises(ConfigError, match="beats must be an integer >= 4, not 2"):
        simulate_units(simulator="icarus", beats=2, seed=1)


@pytest.mark.slow
def test_sim_units_runs_on_icarus(capsys):
    assert main(["sim", "units", "--beats", "40", "--lanes", "2", "--seed", "9"]) == 0
    assert "match numerics bit for bit" in capsys.readouterr().out
