"""A device behind the UART bridge, seen from the host: rows, descriptors, runs, counters.

``BridgeDevice`` builds on ``BridgeClient`` with the device's register map
(``hw.link.registers``), STATUS word (``hw.link.device.STATUS_WORD``) and memory map
(``hw.link.memmap``): it moves whole buffer rows (wide integers) as 16-bit lanes and runs one
engine descriptor. A buffer is named by its ``Buffer`` (``hw.buffers``); the DRAM stand-in by
its region name ``"dram"``. It is transport-agnostic like the client: the cocotb testbench
and a board use the same code.
"""

import asyncio

from edgetrain.hw.buffers.kinds import Buffer
from edgetrain.hw.buffers.lanes import pack_lanes, unpack_lanes
from edgetrain.hw.link.device import STATUS_WORD
from edgetrain.hw.link.memmap import REGION_BITS
from edgetrain.hw.link.registers import REGISTER_BITS, Register, decode_layout, decode_word
from .bridge_client import BridgeError

__all__ = ["BridgeDevice"]


class BridgeDevice:
    """The device of ``client`` whose memory regions are ``regions`` (``device_regions``)."""

    def __init__(self, client, regions):
        self.client = client
        self.regions = {r.name: (i, r) for i, r in enumerate(regions)}
        self._layout = None

    def _region(self, target):
        """Return ``(index, Region)`` of a ``Buffer`` or a region name."""
        name = target.port_name if isinstance(target, Buffer) else target
        if name not in self.regions:
            raise BridgeError(f"device has no memory region {name!r}; it has "
                              f"{', '.join(self.regions)}")
        return self.regions[name]

    async def write_rows(self, target, rows, base=0):
        """Write the integer ``rows`` of ``target`` (a ``Buffer`` or region name) from row
        ``base`` on."""
        index, r = self._region(target)
        for k, row in enumerate(rows):
            await self.client.write_mem(index << REGION_BITS | r.word(base + k),
                                        unpack_lanes(row, r.lanes))

    async def read_rows(self, target, count, base=0):
        """Return ``count`` integer rows of ``target`` (a ``Buffer`` or region name) from row
        ``base`` on."""
        index, r = self._region(target)
        rows = []
        for k in range(count):
            lanes = await self.client.read_mem(index << REGION_BITS | r.word(base + k), r.lanes)
            rows.append(pack_lanes(lanes))
        return rows

    async def status(self):
        """Return the device's STATUS word as a dict of ``STATUS_WORD`` fields."""
        return decode_word(STATUS_WORD, await self.client.status())

    async def run(self, descriptor, *, poll_interval=0.0, max_polls=100_000):
        """Write the packed ``descriptor``, start the engine and wait for it; return the
        final STATUS (a dict, as ``status``)."""
        words = (await self.layout())["desc_words"]
        if descriptor >> (REGISTER_BITS * words):
            raise BridgeError(f"descriptor has more than the device's "
                              f"{REGISTER_BITS * words} bits")
        for i, word in enumerate(unpack_lanes(descriptor, words, REGISTER_BITS)):
            await self.client.write_reg(Register.DESC.value + i, word)
        await self.client.start()
        for _ in range(max_polls):
            status = await self.status()
            if not status["busy"] and status["done"]:
                return status
            if poll_interval:
                await asyncio.sleep(poll_interval)
        raise BridgeError(f"engine still busy after {max_polls} status polls")

    async def layout(self):
        """Return the device's LAYOUT fields (descriptor/counter words, engine present)."""
        if self._layout is None:
            self._layout = decode_layout(await self.client.read_reg(Register.LAYOUT.value))
        return self._layout

    async def counters(self):
        """Return the engine counters window as one integer (LSB = first register)."""
        words = (await self.layout())["counter_words"]
        values = [await self.client.read_reg(Register.COUNTERS.value + i) for i in range(words)]
        return pack_lanes(values, REGISTER_BITS)
