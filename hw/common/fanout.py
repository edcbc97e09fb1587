"""Broadcast nets: a control bit that reaches thousands of flip-flops, on a global network.

A few control bits of the conv engine each reach some 3,000 flip-flop enables or adder
inputs spread over a third of the die (the PE array's ``first``/``last`` and the updater's
shift). As ordinary nets, each is a routing tree over thousands of tiles, and together they
are where the ECP5 board build runs out of fabric routing. ECP5 has global networks meant
for clocks that reach every tile through dedicated wires; a DCCA buffer puts any net on
one (nextpnr then routes only the last hop inside each tile). ``broadcast`` does that on
ECP5 and is a plain wire everywhere else, including simulation without a vendor platform.
"""

from amaranth.hdl import Instance, Signal

__all__ = ["broadcast"]


def broadcast(m, platform, value, *, name):
    """Return a 1-bit signal equal to ``value``, driven through a DCCA on ECP5."""
    out = Signal(name=name)
    if getattr(platform, "family", None) == "ecp5":
        m.submodules[f"{name}_dcca"] = Instance("DCCA", i_CLKI=value, i_CE=1, o_CLKO=out)
    else:
        m.d.comb += out.eq(value)
    return out
