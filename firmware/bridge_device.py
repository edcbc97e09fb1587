"""A device behind the UART bridge, seen from the host: rows, descriptors, runs, counters.

``BridgeDevice`` builds on ``BridgeClient`` with the device's register map
(``boards.registers``) and memory map (``boards.memmap``): it moves whole buffer rows (wide
integers) as 16-bit lanes and runs one engine descriptor. It is transport-agnostic like the
client: the cocotb testbench and a board use the same code.
"""

import asyncio

from edgetrain.hw.link.device import STATUS_BITS
from edgetrain.hw.link.memmap import REGION_BITS
from edgetrain.hw.link.registers import Register, decode_layout
from .bridge_client import BridgeError

__all__ = ["BridgeDevice"]


class BridgeDevice:
    """The device of ``client`` whose memory regions are ``regions`` (``boards.memmap``)."""

    def __init__(self, client, regions):
        self.client = client
        self.regions = {r.name: (i, r) for i, r in enumerate(regions)}
        self._layout = None

    def _region(self, name):
        if name not in self.regions:
            raise BridgeError(f"device has no memory region {name!r}; it has "
                              f"{', '.join(self.regions)}")
        return self.regions[name]

    async def write_rows(self, name, rows, base=0):
        """Write the integer ``rows`` of region ``name`` from row ``base`` on."""
        index, r = self._region(name)
        for k, row in enumerate(rows):
            lanes = [(int(row) >> (16 * j)) & 0xFFFF for j in range(r.lanes)]
            await self.client.write_mem(index << REGION_BITS | r.word(base + k), lanes)

    async def read_rows(self, name, count, base=0):
        """Return ``count`` integer rows of region ``name`` from row ``base`` on."""
        index, r = self._region(name)
        rows = []
        for k in range(count):
            lanes = await self.client.read_mem(index << REGION_BITS | r.word(base + k), r.lanes)
            rows.append(sum(v << (16 * j) for j, v in enumerate(lanes)))
        return rows

    async def run(self, descriptor, *, poll_interval=0.0, max_polls=100_000):
        """Write the packed ``descriptor``, start the engine and wait for it; return STATUS."""
        words = (await self.layout())["desc_words"]
        if descriptor >> (32 * words):
            raise BridgeError(f"descriptor has more than the device's {32 * words} bits")
        for i in range(words):
            await self.client.write_reg(Register.DESC.value + i,
                                        descriptor >> (32 * i) & 0xFFFFFFFF)
        await self.client.start()
        for _ in range(max_polls):
            status = await self.client.status()
            if not status >> STATUS_BITS["busy"] & 1 and status >> STATUS_BITS["done"] & 1:
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
        return sum(v << (32 * i) for i, v in enumerate(values))
