"""Wide buffer rows as lanes: the 16-bit lane of the memory ports and the host's packing.

A row of ``data_bits`` holds ``row_lanes(data_bits)`` lanes of ``LANE_BITS``: lane ``k`` is
bits ``16k .. 16k + 15`` (the last lane possibly narrower). ``pack_lanes`` and
``unpack_lanes`` convert between a row (a Python integer) and its lane values; every host-side
image of a buffer (the testbenches, the reference models, the bridge client) goes through
them. They also pack wider lanes (``bits``): the master buffer's 64-bit words, 32-bit
register windows.
"""

__all__ = ["LANE_BITS", "pack_lanes", "row_lanes", "unpack_lanes"]

LANE_BITS = 16


def row_lanes(data_bits):
    """Return the number of 16-bit write lanes of a ``data_bits``-bit row."""
    return -(-data_bits // LANE_BITS)


def pack_lanes(values, bits=LANE_BITS):
    """Return the row (an integer) whose lane ``k`` holds ``values[k]``, two's complement.

    Each value is reduced to its low ``bits`` bits, so signed and unsigned values both fit.
    """
    mask, row = (1 << bits) - 1, 0
    for k, v in enumerate(values):
        row |= (int(v) & mask) << (bits * k)
    return row


def unpack_lanes(row, count, bits=LANE_BITS, *, signed=False):
    """Return the ``count`` lanes of ``bits`` of the integer ``row``, lowest lane first.

    ``signed`` reads each lane as two's complement; otherwise lanes are unsigned.
    """
    row, mask, top = int(row), (1 << bits) - 1, 1 << (bits - 1)
    lanes = [row >> (bits * k) & mask for k in range(count)]
    return [v - (1 << bits) if v & top else v for v in lanes] if signed else lanes
