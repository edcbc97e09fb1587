"""The issue's accuracy targets with the default options (slow: four full training runs)."""

import pytest

from edgetrain.sim.golden.digits import load_digits_split
from edgetrain.sim.golden.train import TrainOptions, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results():
    data = load_digits_split()
    runs = {"cnn": TrainOptions(net="digits-cnn"),
            "cnn-float": TrainOptions(net="digits-cnn", use_float=True),
            "revnet": TrainOptions(net="digits-revnet")}
    return {name: train(opts, data=data) for name, opts in runs.items()}


def test_fixed_point_cnn_reaches_97_percent(results):
    assert results["cnn"].test_accuracy >= 0.97


def test_float_twin_is_within_one_point(results):
    assert abs(results["cnn-float"].test_accuracy - results["cnn"].test_accuracy) <= 0.01


def test_revnet_is_within_one_point_with_half_the_stored_bytes(results):
    cnn, rev = results["cnn"], results["revnet"]
    assert abs(rev.test_accuracy - cnn.test_accuracy) <= 0.01
    assert (cnn.stored_activation_bytes["per_sample"]
            >= 2 * rev.stored_activation_bytes["per_sample"])
