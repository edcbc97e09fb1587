"""``edgetrain train`` and ``bench train``: bad input ends with one line and exit 2; a short
run prints the table and writes the metrics."""

import json

import pytest

from edgetrain.cli import build_parser, main

NET_HEAD = 'name = "bad"\ninput_shape = [1, 8, 8]\n'


def _layers(*tables):
    return NET_HEAD + "".join("[[layers]]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"')
                                                        for k, v in t.items()) for t in tables)


BAD_NETS = {
    "zero channels": (_layers({"type": "Conv", "out_channels": 0, "kernel": 3},
                              {"type": "FC", "out_features": 10}), "out_channels"),
    "negative pad": (_layers({"type": "Conv", "out_channels": 4, "kernel": 3, "pad": -1},
                             {"type": "FC", "out_features": 10}), "pad"),
    "kernel too large": (_layers({"type": "Conv", "out_channels": 4, "kernel": 11},
                                 {"type": "FC", "out_features": 10}), "kernel 11"),
    "shapes do not chain": (_layers({"type": "Conv", "out_channels": 4, "kernel": 3},
                                    {"type": "MaxPool"}, {"type": "MaxPool"},
                                    {"type": "FC", "out_features": 10}), "3x3"),
    "odd channels for a reversible block": (_layers(
        {"type": "Conv", "out_channels": 3, "kernel": 3, "pad": 1}, {"type": "RevBlock"},
        {"type": "FC", "out_features": 10}), "even channel count"),
    "wrong class count": (_layers({"type": "FC", "out_features": 7}), "10 classes"),
    "unknown layer": (_layers({"type": "Dropout"}), "Dropout"),
}


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err, *needles):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgetrain: error: "), err
    for n in needles:
        assert n in lines[0]


@pytest.mark.parametrize("argv,needle", [
    (["--net", "digits-lenet"], "digits-lenet"),
    (["--rounding", "truncate"], "truncate"),
    (["--epochs", "0"], "epochs"),
    (["--batch", "-4"], "-4"),
    (["--backend", "fpga"], "fpga"),
    (["--lr", "0"], "lr"),
    (["--batch", "5000"], "5000"),
])
def test_bad_option_is_one_line_and_exit_2(argv, needle, capsys):
    code, _, err = _run(["train", *argv], capsys)
    assert code == 2
    _one_error_line(err, needle)


@pytest.mark.parametrize("case", sorted(BAD_NETS))
def test_bad_net_file_is_one_line_and_exit_2(case, tmp_path, capsys):
    text, needle = BAD_NETS[case]
    path = tmp_path / "net.toml"
    path.write_text(text)
    code, _, err = _run(["train", "--net", str(path)], capsys)
    assert code == 2
    _one_error_line(err, needle)


@pytest.mark.parametrize("config,needle", [("tm = 0\n", "tm"),
                                           ("max_kernel = 2\n", "max_kernel"),
                                           ("max_batch = 16\n", "max_batch"),
                                           ("refresh = ['x', 'none', 'live']\n", "'x'")])
def test_bad_or_too_small_config_is_one_line_and_exit_2(config, needle, tmp_path, capsys):
    path = tmp_path / "cfg.toml"
    path.write_text(config)
    code, _, err = _run(["train", "--config", str(path)], capsys)
    assert code == 2
    _one_error_line(err, needle)


def test_help_lists_train_and_bench_train():
    text = build_parser().format_help()
    assert "train" in text and "bench" in text


@pytest.mark.parametrize("net,extra,numerics", [("digits-revnet", [], "fixed16"),
                                                ("digits-cnn", ["--float"], "float32")])
def test_short_run_prints_progress_table_and_writes_metrics(net, extra, numerics, tmp_path,
                                                             capsys):
    metrics, plot = tmp_path / "m.json", tmp_path / "curve.png"
    code, out, err = _run(["train", "--net", net, "--epochs", "1", "--batch", "32",
                           "--metrics", str(metrics), "--plot", str(plot), *extra], capsys)
    assert code in (0, None)
    assert "epoch 1" in err and "final test accuracy" in out and "test acc" in out
    data = json.loads(metrics.read_text())
    assert data["net"] == net and data["numerics"] == numerics and data["epochs"] == 1
    assert 0.3 < data["test_accuracy"] <= 1.0  # one epoch: far above chance (0.1)
    per_sample = 2880 if net == "digits-revnet" else 7360
    assert data["stored_activation_bytes"] == per_sample
    assert data["stored_activation_bytes_batch"] == 32 * per_sample
    assert plot.stat().st_size > 1000


def test_bench_train_measures_an_epoch_and_writes_json(tmp_path, capsys, monkeypatch):
    from edgetrain.sim.bench import train as bench_train
    monkeypatch.setattr(bench_train, "VARIANTS", (("digits-cnn", None, True),))
    path = tmp_path / "bench.json"
    code, out, _ = _run(["bench", "train", "--json", str(path)], capsys)
    assert code in (0, None) and "digits-cnn" in out and "float32" in out
    data = json.loads(path.read_text())
    (row,) = data["results"]
    assert row["steps"] == 44
    assert 0 < row["epoch_seconds"] < row["total_seconds_with_setup_and_eval"]
    assert data["goal_seconds"] == 5.0
