"""Arguments shared by several commands, each declared once, and validators of numbers.

A validator is an argparse ``type=``: a value out of its range ends the command with one
line (``edgetrain: error: argument --epochs: must be a positive integer, not '0'``) and
exit code 2.
"""

import argparse

__all__ = ["positive_int", "non_negative_int", "int_at_least", "int_in", "positive_float",
           "fraction", "name_list", "add_config", "add_simulator", "add_seed", "add_json",
           "add_waves", "add_build_dir"]


def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_int(text):
    """An integer >= 1 (epochs, batch, steps, shapes, tiles)."""
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def non_negative_int(text):
    """An integer >= 0 (seeds, gaps)."""
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {text!r}")
    return value


def int_at_least(low):
    """Return a validator of integers >= ``low``."""
    def check(text):
        value = _number(int, text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, not {text!r}")
        return value
    return check


def int_in(low, high):
    """Return a validator of integers in ``low..high``."""
    def check(text):
        value = _number(int, text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}, not {text!r}")
        return value
    return check


def positive_float(text):
    """A number > 0 (a clock in MHz, a learning rate)."""
    value = _number(float, text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
    return value


def fraction(text):
    """A probability in [0, 1)."""
    value = _number(float, text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), not {text!r}")
    return value


def name_list(choices, what):
    """Return a validator of comma-separated names from ``choices`` (a tuple)."""
    def check(text):
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        for name in names:
            if name not in choices:
                raise argparse.ArgumentTypeError(f"unknown {what} {name!r}; choose from "
                                                 f"{', '.join(choices)}")
        if not names:
            raise argparse.ArgumentTypeError(f"name at least one {what}")
        return names
    return check


def add_config(parser, help="accelerator config TOML (default: the built-in 8x8)"):
    """``--config FILE``: the accelerator configuration (``hw.config.load_config``)."""
    parser.add_argument("--config", metavar="FILE", help=help)


def add_simulator(parser, default="icarus", help=None):
    """``--simulator icarus|verilator``."""
    from edgetrain.sim.tb.runner import SIMULATORS
    parser.add_argument("--simulator", default=default, choices=SIMULATORS,
                        help=help or f"HDL simulator (default {default})")


def add_seed(parser, default, help="seed of the random data"):
    """``--seed S``: a non-negative integer."""
    parser.add_argument("--seed", type=non_negative_int, default=default,
                        help=f"{help} (default {default})")


def add_json(parser, help="write the results as JSON to FILE"):
    """``--json FILE``; the command checks FILE can be written before its work."""
    parser.add_argument("--json", metavar="FILE", help=help)


def add_waves(parser):
    """``--waves``: dump a waveform file in the build folder."""
    parser.add_argument("--waves", action="store_true",
                        help="dump a waveform file in the build folder")


def add_build_dir(parser):
    """``--build-dir DIR``: the simulator's build folder (default: under sim_build/)."""
    parser.add_argument("--build-dir", metavar="DIR",
                        help="simulator build folder (default: under sim_build/)")
