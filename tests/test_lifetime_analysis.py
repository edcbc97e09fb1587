"""Lifetime analysis, refresh counts per policy, energy estimate and the bench command."""

import json

import pytest

from edgetrain.cli import main
from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import get_net
from edgetrain.hw.buffers.edram import (
    REFRESH_CYCLES, live_threshold, periodic_interval, urgent_threshold)
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.sim.reference.decay import Access, EDRAMModel, random_trace
from edgetrain.sim.reference.lifetime import (
    EnergyParams,
    analyse,
    energy,
    row_lifetimes,
    schedule_trace,
    training_schedule)

CFG = AcceleratorConfig()
SPILL = live_threshold(CFG.input_depth // CFG.edram_banks, CFG.retention_cycles) - 128


def test_row_lifetimes_from_write_to_last_read():
    trace = [Access(0, True, 3), Access(5, False, 3), Access(9, False, 3, last=True),
             Access(12, True, 3), Access(40, True, 4), Access(41, False, 4, last=True),
             Access(50, False, 3, last=True)]
    assert sorted(row_lifetimes(trace).values) == [1, 9, 38]


def test_periodic_refreshes_every_row_once_per_retention():
    depth, banks, retention = 16, 2, 64
    trace = random_trace(depth=depth, data_bits=16, lifetimes=(4, 300), allocations=80, seed=3)
    out = EDRAMModel(depth=depth, data_bits=16, retention_cycles=retention,
                     policy="periodic", banks=banks).run(trace)
    interval = periodic_interval(depth // banks, retention)
    assert interval * depth // banks < retention
    assert out.refreshes == banks * (out.accepted[-1] // interval + 1)


def test_live_refreshes_an_isolated_row_once_per_threshold():
    retention, rows = 100, 4
    threshold = live_threshold(rows, retention)
    for lifetime, expected in [(threshold - 1, 0), (threshold + 3, 1), (5 * threshold + 7, 5)]:
        trace = [Access(0, True, 0, 0xABC), Access(lifetime, False, 0, last=True)]
        out = EDRAMModel(depth=rows, data_bits=16, retention_cycles=retention,
                         policy="live").run(trace)
        assert (out.refreshes, out.violations) == (expected, 0)
        assert out.reads[0].data == 0xABC
        none = EDRAMModel(depth=rows, data_bits=16, retention_cycles=retention,
                          policy="none", decay=True).run(trace)
        assert none.reads[0].violated == (lifetime >= retention)
        assert (none.reads[0].data != 0xABC) == (lifetime >= retention)


def _hammered(addr, *, cycles=400):
    """Row 0 (bank 0) written once; then, in every cycle, a write of ``addr`` or its read
    (which releases it, so it never needs a refresh itself); then row 0 read."""
    return ([Access(0, True, 0, 0xABC)]
             + [Access(1 + t, t % 2 == 0, addr, t, last=True) for t in range(cycles)]
             + [Access(cycles + 1, False, 0, last=True)])


def test_live_refreshes_hide_in_idle_bank_cycles():
    depth, banks, retention = 16, 2, 100      # 8 rows per bank
    rows = depth // banks
    assert live_threshold(rows, retention) < urgent_threshold(rows, retention)
    model = EDRAMModel(depth=depth, data_bits=16, retention_cycles=retention, policy="live",
                       banks=banks)
    cycles = 400
    on_time = list(range(1, cycles + 1))
    # The stream goes to bank 1: bank 0 refreshes row 0 (read when due, its age restarts at
    # the write-back in the next cycle) and the stream never waits.
    other = model.run(_hammered(1, cycles=cycles))
    assert other.refreshes == cycles // (live_threshold(rows, retention) + 1)
    assert other.accepted[1:-1] == on_time and other.violations == 0
    # The stream goes to bank 0: the refresh waits until row 0 is urgent, then takes the
    # bank from the stream for both its cycles, and no data is lost.
    same = model.run(_hammered(2, cycles=cycles))
    assert same.refreshes == same.cycles // (urgent_threshold(rows, retention) + 1)
    assert same.stall_cycles == REFRESH_CYCLES * same.refreshes and same.violations == 0
    assert same.reads[-1].data == 0xABC and not same.reads[-1].violated


@pytest.fixture(scope="module")
def default_figures():
    cfg, out = CFG, {}
    for name in ("digits-cnn", "digits-revnet"):
        plan = training_schedule(get_net(name))
        for spill in (None, SPILL):
            trace, rows, spilled = schedule_trace(plan, spill_after=spill)
            out[name, spill] = (analyse(trace, depth=cfg.input_depth, banks=cfg.edram_banks,
                                        retention_cycles=cfg.retention_cycles),
                                row_lifetimes(trace), spilled)
    return out


def test_schedule_rows_are_written_before_read_and_released(default_figures):
    for (name, spill), (counts, life, _) in default_figures.items():
        assert counts["periodic"]["violations"] == 0 and counts["live"]["violations"] == 0
        assert len(life.values) > 1000


def test_reversible_net_keeps_data_shorter_than_the_cnn(default_figures):
    cnn, _, _ = default_figures["digits-cnn", None]
    rev, rev_life, _ = default_figures["digits-revnet", None]
    assert rev_life.mean < default_figures["digits-cnn", None][1].mean
    reduction = {n: 1 - c["live"]["refreshes"] / c["periodic"]["refreshes"]
                 for n, c in (("cnn", cnn), ("rev", rev))}
    assert reduction["rev"] > 0.85 > reduction["cnn"]
    # Without refresh the sequential schedule does read expired data: the model bites.
    assert rev["lifetime"]["violations"] > 0 and cnn["none"]["violations"] > 0


def test_lifetime_aware_schedule_needs_no_refresh(default_figures):
    for name in ("digits-cnn", "digits-revnet"):
        counts, life, spilled = default_figures[name, SPILL]
        assert life.at_least(1675) == 0 and spilled > 0
        assert (counts["lifetime"]["refreshes"], counts["lifetime"]["violations"]) == (0, 0)
        assert counts["live"]["refreshes"] <= 0.05 * counts["periodic"]["refreshes"]


def test_energy_terms_and_overrides():
    counts = {"refreshes": 100, "cycles": 500_000}
    e = energy(counts, accesses=1000, depth=1024, row_bits=128, dram_rows=10)
    assert e["access_nj"] == 20.0 and e["refresh_nj"] == 4.0 and e["dram_nj"] == 26.0
    assert e["leakage_nj"] == pytest.approx(1024 * 128 * 1e-12 * 1e-3 * 1e9, rel=1e-3)
    p = EnergyParams.with_overrides(["refresh_pj=10"])
    assert energy(counts, accesses=0, depth=1, row_bits=1, params=p)["refresh_nj"] == 1.0
    with pytest.raises(ConfigError, match="refresh_joules"):
        EnergyParams.with_overrides(["refresh_joules=1"])


def test_bench_refresh_command(tmp_path, capsys):
    path = tmp_path / "refresh.json"
    assert main(["bench", "refresh", "--net", "digits-revnet", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    net = doc["nets"]["digits-revnet"]
    for p in ("none", "periodic", "live", "lifetime"):
        assert set(net["policies"][p]) >= {"refreshes", "violations", "stall_cycles"}
    assert net["reduction_vs_periodic"]["live"] > 0.85
    assert net["lifetime_aware"]["policies"]["lifetime"]["violations"] == 0
    assert "digits-revnet" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["bench", "refresh", "--energy", "refresh_pj=fast"], "refresh_pj must be a number"),
    (["sim", "edram", "--seed", "-1"], "argument --seed: must be a non-negative integer"),
])
def test_bad_cli_input_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
