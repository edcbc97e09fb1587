"""Benchmark: Fmax and resources of the arithmetic units, each placed and routed alone.

Every unit sits in ``unit_fmax.FmaxShell`` on an ECP5-85F, so the reported Fmax is the
unit's own.
"""

from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.hw.engine.pool import MaxPool2x2, PoolBackward
from edgetrain.hw.engine.requant import Requantizer
from edgetrain.hw.engine.sgd import SGDUpdate
from ..unit_fmax import measure_fmax

__all__ = ["UNITS", "make_unit", "bench_units"]

UNITS = ("requantizer", "update", "maxpool", "pool-backward")


def make_unit(name, lanes, acc_bits):
    """Return unit ``name`` (one of ``UNITS``) with ``lanes`` lanes (the update unit a
    quarter, at least 1)."""
    if name == "requantizer":
        return Requantizer(lanes=lanes, acc_bits=acc_bits)
    if name == "update":
        return SGDUpdate(lanes=max(1, lanes // 4), acc_bits=acc_bits)
    return (MaxPool2x2 if name == "maxpool" else PoolBackward)(lanes=lanes)


def bench_units(names, *, config, lanes=None, target_mhz=125.0, out="out/bench-units",
                on_unit=None):
    """Place and route each unit of ``names`` into ``out/<unit>``; return the figures.

    ``lanes`` defaults to the config's ``tm``; ``on_unit(name, figures)`` follows each unit.
    """
    lanes = config.tm if lanes is None else lanes
    if not 1 <= lanes <= 64:
        raise ConfigError(f"lanes must be in 1..64, not {lanes}")
    if not target_mhz > 0:
        raise ConfigError(f"target_mhz must be positive, not {target_mhz}")
    for name in names:
        if name not in UNITS:
            raise ConfigError(f"unknown unit {name!r}; choose from {', '.join(UNITS)}")
    results = {}
    for name in names:
        unit = make_unit(name, lanes, config.acc_bits)
        results[name] = {"lanes": unit.lanes, "latency": unit.latency,
                         **measure_fmax(unit, out_dir=Path(out) / name,
                                        target_mhz=target_mhz)}
        if on_unit:
            on_unit(name, results[name])
    return {"device": "LFE5U-85F", "acc_bits": config.acc_bits, "target_mhz": target_mhz,
            "units": results}
