"""The reshaping DMA: AXI4 bursts between DRAM and a buffer, converting layouts on the way.

Exports ``ReshapeDMA`` (``reshape``) and its ``Descriptor`` (``descriptor``); the builders
of descriptors per transfer kind (``program``); the layout module (``layout``: the one
source of truth for where every tensor element lives in DRAM and in a buffer row); and the
parts of the DMA: ``BurstIssuer`` (``burst``), ``BufferWalker`` (``walk``),
``WideRowAdapter`` (``rows``).
"""

from .descriptor import Descriptor
from .reshape import ReshapeDMA

__all__ = ["Descriptor", "ReshapeDMA"]
