"""``edgetrain sim units`` / ``bench units``: arguments and user errors (one line, exit 2)."""

import argparse

import pytest

from edgetrain.commands import bench_units, sim_units
from edgetrain.errors import ConfigError


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("argv,message", [
    (["--beats", "2"], "beats must be an integer >= 4, not 2"),
    (["--lanes", "0"], "--lanes must be in 1..64, not 0"),
])
def test_sim_units_rejects_bad_arguments(argv, message):
    with pytest.raises(ConfigError, match=message):
        sim_units.run(parse(sim_units, argv))


@pytest.mark.parametrize("argv,message", [
    (["--units", "requantizer,adder"], "unknown unit 'adder'"),
    (["--lanes", "65"], "--lanes must be in 1..64, not 65"),
    (["--target-mhz", "0"], "--target-mhz must be positive"),
])
def test_bench_units_rejects_bad_arguments(argv, message):
    with pytest.raises(ConfigError, match=message):
        bench_units.run(parse(bench_units, argv))


@pytest.mark.slow
def test_sim_units_runs_on_icarus(capsys):
    assert sim_units.run(parse(sim_units, ["--beats", "40", "--lanes", "2", "--seed", "9"])) == 0
    assert "match numerics bit for bit" in capsys.readouterr().out
