# amaranth: UnusedElaboratable=no
"""One Verilog top holding all arithmetic units, for their cocotb testbench (``tb_units``).

``UnitsHarness`` instantiates a ``Requantizer`` (ports ``rq_*``), an ``SGDUpdate``
(``up_*``), a ``MaxPool2x2`` (``mp_*``) and a ``PoolBackward`` (``pb_*``) side by side and
exposes every port of each under its prefix, so one build per simulator checks them all.
``payload_layouts`` gives the testbench the layouts to pack and unpack stream payloads;
``simulate_units`` builds and runs it (for ``edgetrain sim units`` and the tests).
"""


from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow

from edgetrain.errors import ConfigError
from edgetrain.hw.engine.pool import MaxPool2x2, PoolBackward
from edgetrain.hw.engine.requant import Requantizer
from edgetrain.hw.engine.sgd import SGDUpdate

__all__ = ["UnitsHarness", "make_units", "payload_layouts", "simulate_units"]


def make_units(params):
    """Return {prefix: unit} for ``params`` (lanes_rq, lanes_up, lanes_pool, acc_bits)."""
    return {
        "rq": Requantizer(lanes=params["lanes_rq"], acc_bits=params["acc_bits"]),
        "up": SGDUpdate(lanes=params["lanes_up"], acc_bits=params["acc_bits"]),
        "mp": MaxPool2x2(lanes=params["lanes_pool"]),
        "pb": PoolBackward(lanes=params["lanes_pool"]),
    }


def payload_layouts(params):
    """Return {"<prefix>_<stream>": payload layout} of every stream port of the harness."""
    return {f"{prefix}_{name}": member.signature.members["payload"].shape
            for prefix, unit in make_units(params).items()
            for name, member in unit.signature.members.items() if member.is_signature}


class UnitsHarness(wiring.Component):
    """Every port of every unit, renamed ``<prefix>_<port>`` (see ``make_units``)."""

    def __init__(self, params):
        self._units = make_units(params)
        super().__init__({f"{prefix}_{name}": member
                          for prefix, unit in self._units.items()
                          for name, member in unit.signature.members.items()})

    def elaborate(self, platform):
        m = Module()
        for prefix, unit in self._units.items():
            m.submodules[prefix] = unit
            for name, member in unit.signature.members.items():
                outer, inner = getattr(self, f"{prefix}_{name}"), getattr(unit, name)
                if member.is_signature:
                    wiring.connect(m, wiring.flipped(outer), inner)
                elif member.flow == Flow.In:
                    m.d.comb += inner.eq(outer)
                else:
                    m.d.comb += outer.eq(inner)
        return m


def simulate_units(*, simulator, beats, seed, lanes_rq=4, lanes_up=2, lanes_pool=4,
                   acc_bits=47, build_dir=None, waves=False):
    """Build the harness for ``simulator`` and run ``tb_units``; raise AssertionError on any
    mismatch. ``beats`` requantizer beats, half as many update beats, about ``beats / 4``
    pooling windows each way."""
    from .runner import SIM_ROOT, run_cocotb
    if not isinstance(beats, int) or beats < 4:
        raise ConfigError(f"beats must be an integer >= 4, not {beats!r}")
    params = {"lanes_rq": lanes_rq, "lanes_up": lanes_up, "lanes_pool": lanes_pool,
              "acc_bits": acc_bits, "beats": beats, "seed": seed}
    tag = f"{simulator}-r{lanes_rq}-u{lanes_up}-p{lanes_pool}-a{acc_bits}"
    return run_cocotb(component=UnitsHarness(params), toplevel="units", simulator=simulator,
                      test_module="edgetrain.sim.tb.tb_units", params=params, waves=waves,
                      build_dir=build_dir or SIM_ROOT / "units" / tag, fast_compile=True)
