"""Multiplication by an elaboration-time constant as shifted adds.

``times_constant(value, factor)`` never becomes a ``$mul`` cell, so it never takes a DSP
block (the iCE40UP5K has 8): address steps, index strides and descriptor extents that scale
a runtime value by a constant use it.
"""

from amaranth.hdl import Const

__all__ = ["times_constant"]


def times_constant(value, factor):
    """Return ``value * factor`` for an integer ``factor >= 0``: one shifted add per set bit."""
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 0:
        raise TypeError(f"factor must be a non-negative integer, not {factor!r}")
    terms = [value << i for i in range(factor.bit_length()) if factor >> i & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)
