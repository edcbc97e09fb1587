"""On-chip buffers behind one memory-port contract.

Exports ``MemoryPortSignature`` and ``SRAMBuffer`` (``memport``: the port every compute and
DMA block speaks, with 16-bit lane writes) and ``EDRAMBuffer`` with its
``RefreshController`` (``edram``: rows that forget after a retention time unless refreshed,
with the ``none`` / ``periodic`` / ``live`` / ``lifetime`` policies and decay injection).
"""

from .edram import EDRAMBuffer, RefreshController
from .memport import LANE_BITS, MemoryPortSignature, SRAMBuffer, row_lanes

__all__ = ["EDRAMBuffer", "LANE_BITS", "MemoryPortSignature", "RefreshController",
           "SRAMBuffer", "row_lanes"]
