# amaranth: UnusedElaboratable=no
"""Units built with ``stochastic=False`` (config ``stochastic_rounding = false``).

They have no random generator and round to nearest even whatever their ``stochastic`` input
says; every result is still bit for bit ``numerics`` (nearest) over the whole shift range.
"""

import random

import pytest
from amaranth.back import rtlil

from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.conv import GradLayout
from edgetrain.hw.engine.requant import Requantizer, RoundShift
from edgetrain.hw.engine.sgd import SGDUpdate
from edgetrain.hw.engine.updater import WeightUpdater
from edgetrain.sim.reference.units import (
    expected_requant,
    expected_update,
    random_requant_beats,
    random_update_beats)

from test_units_requant import ACC_BITS, check_requant, run_requant
from test_units_update import check_update, run_update


def nearest(expect):
    """``expect`` for the same beat with its ``stochastic`` request ignored."""
    return lambda beat, **kw: expect({**beat, "stochastic": 0}, **kw)


def test_nearest_only_requantizer_matches_numerics():
    beats = random_requant_beats(random.Random(21), 600, lanes=4, acc_bits=ACC_BITS)
    assert {b["stochastic"] for b in beats} == {0, 1}
    run = run_requant(beats, lanes=4, acc_bits=ACC_BITS, seed=21, stochastic=False)
    assert check_requant(beats, run, expect=nearest(expected_requant)) == []
    # The same run, compared with what a stochastic unit would give, must differ.
    assert check_requant(beats, run) != []


def test_nearest_only_requantizer_over_the_whole_shift_range():
    beats = random_requant_beats(random.Random(22), 300, lanes=2, acc_bits=ACC_BITS,
                                 shifts=(-128, 127))
    run = run_requant(beats, lanes=2, acc_bits=ACC_BITS, seed=22, stochastic=False)
    assert check_requant(beats, run, expect=nearest(expected_requant)) == []


def test_nearest_only_update_matches_numerics():
    beats = random_update_beats(random.Random(23), 300, lanes=2, acc_bits=ACC_BITS)
    run = run_update(beats, lanes=2, seed=23, stochastic=False)
    assert check_update(beats, run, expect=nearest(expected_update)) == []
    assert check_update(beats, run) != []


def _names(component):
    return rtlil.convert(component)


@pytest.mark.parametrize("make", [
    lambda s: Requantizer(lanes=2, acc_bits=ACC_BITS, stochastic=s),
    lambda s: SGDUpdate(lanes=1, acc_bits=ACC_BITS, stochastic=s),
    lambda s: WeightUpdater(config=AcceleratorConfig(tm=2, tn=2, stochastic_rounding=s),
                            grad_layout=GradLayout(AcceleratorConfig(tm=2, tn=2))),
])
def test_nearest_only_units_have_no_random_generator(make):
    assert "mix" in _names(make(True)) and "rand" in _names(make(True))
    text = _names(make(False))
    assert "mix" not in text and "rand" not in text


def test_nearest_only_round_shift_has_no_random_ports():
    core = RoundShift(lanes=1, in_bits=8, out_bits=4, stochastic=False)
    assert "rand" not in core.signature.members and "stochastic" not in core.signature.members


@pytest.mark.parametrize("unit", [Requantizer, SGDUpdate])
def test_stochastic_flag_must_be_a_bool(unit):
    with pytest.raises(TypeError, match="stochastic must be True or False, not 1"):
        unit(lanes=1, acc_bits=ACC_BITS, stochastic=1)
