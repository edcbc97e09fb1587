"""Broadcast nets go on ECP5 global networks through DCCA buffers, and nowhere else."""

import re

from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from edgetrain.boards.platforms import BOARDS
from edgetrain.boards.top import BoardTop
from edgetrain.hw.common.fanout import broadcast


class _ECP5:
    family = "ecp5"


def test_broadcast_is_a_dcca_on_ecp5_only():
    for platform, expected in ((_ECP5(), 1), (None, 0)):
        m = Module()
        en = Signal(name="en")
        out = broadcast(m, platform, en, name="en_g")
        outputs = _dcca_outputs(rtlil.convert(m, ports=[en, out]))
        assert len(outputs) == expected, (platform, outputs)
        assert all("en_g" in o for o in outputs)


def test_broadcast_without_a_vendor_is_the_value():
    m = Module()
    src = Signal()
    out = broadcast(m, None, src, name="copy")
    seen = []

    async def bench(ctx):
        for v in (0, 1, 0):
            ctx.set(src, v)
            seen.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [0, 1, 0]


def _dcca_outputs(rtlil):
    """Return the names of the wires the DCCA cells of an RTLIL text drive on CLKO."""
    cells = re.findall(r"cell \\DCCA .*?\n(.*?)\n\s*end", rtlil, re.S)
    return [re.search(r"connect \\CLKO (\S+)", c).group(1) for c in cells]


def test_ulx3s_reset_goes_through_a_dcca():
    board = BOARDS["ulx3s-85f"]
    top = BoardTop(board=board, config=board.default_config(), engine=False)
    rtlil = board.make_platform().prepare(top, name="top").files["top.il"]
    outputs = _dcca_outputs(rtlil)
    assert len(outputs) == 1, outputs
    assert "rst" in outputs[0], outputs
