"""The one configuration object of an edgetrain accelerator.

``AcceleratorConfig`` is frozen and validated at construction. The generator, the golden
model's formats, the planner, the testbenches and the board builds all read it; a variant is
``dataclasses.replace(cfg, field=value)`` or a TOML file of the same (flat) field names.
"""

import dataclasses
from dataclasses import dataclass, fields

from edgetrain.errors import ConfigError
from edgetrain.hw.buffers.edram import REFRESH_POLICIES, check_refresh_budget
from edgetrain.hw.buffers.kinds import REFRESHED, Buffer
from edgetrain.tomlfile import read_toml

__all__ = ["AcceleratorConfig", "REFRESH_POLICIES", "PIPELINES", "required_accumulator_bits",
           "load_config"]

PIPELINES = ("deep", "shallow")


def required_accumulator_bits(max_reduction, data_bits=16):
    """Return the accumulator width that cannot overflow summing ``max_reduction`` products.

    A product of two ``data_bits`` signed values has magnitude at most 2**(2*data_bits-2), so
    a sum of N of them needs ``2*data_bits - 1 + ceil(log2 N)`` magnitude bits plus the sign.
    """
    if not isinstance(max_reduction, int) or max_reduction < 1:
        raise ConfigError(f"max_reduction must be a positive integer, not {max_reduction!r}")
    return 2 * data_bits + (max_reduction - 1).bit_length()


def _positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class AcceleratorConfig:
    """Sizes, widths and policies of one accelerator instance.

    Engine
        ``tm`` x ``tn``: output- x input-channel parallelism of the MAC array.
        ``data_bits``: width of every compute tensor element (16).
        ``max_kernel``, ``max_channels``, ``max_size``, ``max_batch``: the largest layer one
        build can run (kernel side, channel count, feature-map side, batch).
        ``acc_bits``: accumulator width; 0 means "derive the minimum from the limits".
        ``update_lanes``: weights the SGD unit updates per cycle in UPDATE mode (a divisor
        of ``tm * tn``; a T x T block takes ``tm * tn / update_lanes`` master-buffer rows).
        0 builds no SGD unit: UPDATE writes the exact batch-summed gradient accumulators
        into the master buffer (``tn`` per row, each sign-extended to 64 bits) and the host
        applies SGD. Default 1: the smallest unit (4 DSPs) and valid for every array size.
        ``stochastic_rounding``: build the random generators of stochastic rounding (the
        requantizer's and the SGD unit's); False builds nearest-even rounding only and the
        engine refuses descriptors that ask for stochastic rounding.
        ``pipeline``: ``"deep"`` registers every carry chain and barrel level (for fast
        clocks, e.g. 100 MHz on the ECP5); ``"shallow"`` merges stages and drops the
        flip-flop queues they need (the requantizer: 2 stall-together stages instead of 7
        and a queue), for slow clocks such as the iCEBreaker's 12 MHz. Results are equal.
    Buffers
        ``input_depth``, ``weight_depth``, ``output_depth``: rows per bank of each on-chip
        buffer (``Buffer.ACT``, ``WGT``, ``OUT``; ``MST`` follows from ``weight_depth``).
        ``retention_cycles``: emulated eDRAM retention time. ``refresh``: refresh policy per
        buffer, in ``REFRESHED`` order (act, wgt, out). ``decay_injection``: corrupt words
        read after their retention expired (off by default).
    DMA
        ``axi_data_bits`` (32, 64 or 128), ``axi_addr_bits``, ``max_burst_beats`` (<= 256),
        ``max_outstanding_reads``.
    """

    tm: int = 8
    tn: int = 8
    data_bits: int = 16
    max_kernel: int = 5
    max_channels: int = 64
    max_size: int = 32
    max_batch: int = 32
    acc_bits: int = 0
    update_lanes: int = 1
    stochastic_rounding: bool = True
    pipeline: str = "deep"

    input_depth: int = 1024
    weight_depth: int = 512
    output_depth: int = 1024
    retention_cycles: int = 1675
    refresh: tuple = ("live", "none", "live")
    decay_injection: bool = False
    edram_banks: int = 8

    axi_data_bits: int = 64
    axi_addr_bits: int = 32
    max_burst_beats: int = 256
    max_outstanding_reads: int = 4

    def __post_init__(self):
        for f in fields(self):
            if f.type is int or f.type == "int":
                if f.name in ("acc_bits", "update_lanes"):
                    continue
                _positive(f.name, getattr(self, f.name))
        if self.data_bits != 16:
            raise ConfigError(f"data_bits must be 16 (the numerics contract), not "
                              f"{self.data_bits!r}")
        if self.max_kernel > self.max_size:
            raise ConfigError(f"max_kernel {self.max_kernel} exceeds max_size "
                              f"{self.max_size}: lower max_kernel or raise max_size")
        need = required_accumulator_bits(self.max_reduction, self.data_bits)
        if self.acc_bits == 0:
            object.__setattr__(self, "acc_bits", need)
        elif not isinstance(self.acc_bits, int) or self.acc_bits < need:
            raise ConfigError(f"acc_bits {self.acc_bits!r} is too narrow for the largest "
                              f"reduction ({self.max_reduction} products needs {need} bits): "
                              f"set acc_bits >= {need} or lower the limits")
        self._check_update()
        refresh = tuple(self.refresh)
        object.__setattr__(self, "refresh", refresh)
        if len(refresh) != len(REFRESHED):
            names = ", ".join(b.port_name for b in REFRESHED)
            raise ConfigError(f"refresh must name one policy per buffer ({names}), "
                              f"not {refresh!r}")
        for policy in refresh:
            if policy not in REFRESH_POLICIES:
                raise ConfigError(f"refresh policy {policy!r} does not exist; choose from "
                                  f"{', '.join(REFRESH_POLICIES)}")
        self._check_edram()
        if self.axi_data_bits not in (32, 64, 128):
            raise ConfigError(f"axi_data_bits must be 32, 64 or 128, not "
                              f"{self.axi_data_bits!r}")
        if self.max_burst_beats > 256:
            raise ConfigError(f"max_burst_beats must be <= 256 (AXI4 INCR), not "
                              f"{self.max_burst_beats!r}")
        if not 12 <= self.axi_addr_bits <= 32:
            raise ConfigError(f"axi_addr_bits must be in 12..32 (a 4 KiB page at least; the "
                              f"control registers hold 32-bit DRAM addresses), not "
                              f"{self.axi_addr_bits!r}")

    def _check_update(self):
        lanes, block = self.update_lanes, self.tm * self.tn
        if (not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 0 or
                (lanes and block % lanes)):
            raise ConfigError(f"update_lanes must be 0 (no SGD unit) or a divisor of tm*tn "
                              f"= {block}, not {lanes!r}")
        if lanes == 0 and self.acc_bits > 64:
            raise ConfigError(f"update_lanes 0 stores accumulators as 64-bit words, but "
                              f"acc_bits is {self.acc_bits}: lower the limits or set "
                              f"update_lanes >= 1")
        if not isinstance(self.stochastic_rounding, bool):
            raise ConfigError(f"stochastic_rounding must be true or false, not "
                              f"{self.stochastic_rounding!r}")
        if self.pipeline not in PIPELINES:
            raise ConfigError(f"pipeline must be \"deep\" (fast clocks) or \"shallow\" "
                              f"(slow clocks), not {self.pipeline!r}")

    def _check_edram(self):
        banks = self.edram_banks
        if banks & (banks - 1):
            raise ConfigError(f"edram_banks must be a power of two, not {banks!r}")
        for buffer, policy in zip(REFRESHED, self.refresh):
            depth = buffer.depth(self)
            if policy in ("periodic", "live"):
                if depth % banks:
                    raise ConfigError(f"{buffer.depth_field} {depth} is not a multiple of "
                                      f"edram_banks {banks}")
                check_refresh_budget(rows=depth // banks,
                                     retention_cycles=self.retention_cycles,
                                     where=f"{buffer.port_name} buffer "
                                           f"({buffer.depth_field} {depth}, {banks} banks)")

    @property
    def max_reduction(self):
        """The largest number of products one output sums, over FP, BP and WU."""
        k2 = self.max_kernel ** 2
        return max(self.max_channels * k2, self.max_batch * self.max_size ** 2)

    def policy(self, buffer):
        """Return the refresh policy of the ``Buffer`` ``buffer`` (``"none"`` for ``MST``)."""
        buffer = Buffer(buffer)
        return self.refresh[REFRESHED.index(buffer)] if buffer in REFRESHED else "none"

    def replace(self, **changes):
        """Return a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}


def load_config(path=None, **overrides):
    """Return the configuration from TOML file ``path`` (default config if None)."""
    values = {} if path is None else read_toml(path, "config file")
    values.update(overrides)
    known = {f.name for f in fields(AcceleratorConfig)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key {key!r}; known keys: "
                              f"{', '.join(sorted(known))}")
    if "refresh" in values:
        values["refresh"] = tuple(values["refresh"])
    return AcceleratorConfig(**values)
