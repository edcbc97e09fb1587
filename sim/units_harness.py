# amaranth: UnusedElaboratable=no
"""One Verilog top holding all arithmetic units, for their cocotb testbench (``tb_units``).

``UnitsHarness`` instantiates a ``Requantizer`` (ports ``rq_*``), an ``SGDUpdate``
(``up_*``), a ``MaxPool2x2`` (``mp_*``) and a ``PoolBackward`` (``pb_*``) side by side and
exposes every port of each under its prefix, so one build per simulator checks them all.
``payload_layouts`` gives the testbench the layouts to pack and unpack stream payloads.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow

from ..hw.pool import MaxPool2x2, PoolBackward
from ..hw.requant import Requantizer
from ..hw.update import SGDUpdate

__all__ = ["UnitsHarness", "make_units", "payload_layouts"]


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
