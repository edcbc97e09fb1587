"""On-chip buffers behind one memory-port contract, and the one name of each buffer.

Exports ``Buffer`` (``kinds``: the enumeration ``ACT``, ``WGT``, ``OUT``, ``MST`` with each
buffer's depth and row width from the config, the names the instruction set uses),
``MemoryPortSignature`` and ``SRAMBuffer`` (``memport``: the port every compute and DMA
block speaks, with 16-bit lane writes), the lane helpers (``lanes``: ``LANE_BITS``,
``row_lanes``, ``pack_lanes``, ``unpack_lanes``) and ``EDRAMBuffer`` with its
``RefreshController`` (``edram``: rows that forget after a retention time unless refreshed,
with the ``none`` / ``periodic`` / ``live`` / ``lifetime`` policies and decay injection).
"""

from .edram import EDRAMBuffer, RefreshController
from .kinds import REFRESHED, Buffer
from .lanes import LANE_BITS, pack_lanes, row_lanes, unpack_lanes
from .memport import MemoryPortSignature, SRAMBuffer

__all__ = ["Buffer", "EDRAMBuffer", "LANE_BITS", "MemoryPortSignature", "REFRESHED",
           "RefreshController", "SRAMBuffer", "pack_lanes", "row_lanes", "unpack_lanes"]
