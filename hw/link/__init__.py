"""The host link: what a host talks to over a serial line, independent of the board.

Exports ``DeviceCore`` (``device``: UART, bridge, registers, memory map and the engine tile,
what a board top instantiates), ``HostBridge`` with its frame protocol (``bridge``),
``UartRx`` / ``UartTx`` (``uart``), the register map and bank (``registers``) and the host
memory map of the buffers (``memmap``).
"""

from .bridge import HostBridge
from .device import DeviceCore

__all__ = ["DeviceCore", "HostBridge"]
