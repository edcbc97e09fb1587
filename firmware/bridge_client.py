"""Host side of the framed UART bridge (``edgetrain.hw.link.bridge``): framing and an async client.

``BridgeClient`` talks to the bridge through any *transport* with two coroutines,
``write(data: bytes)`` and ``read(n) -> bytes`` (exactly ``n`` bytes, or raise
``BridgeTimeout``). ``SerialTransport`` is the pyserial one for a board; the cocotb testbench
(``edgetrain.sim.tb.tb_bridge``) wraps cocotbext-uart in the same two methods, so the client
code that is checked in simulation is the code that drives a board.

Frames are packed and parsed with ``struct`` in the formats of ``hw.link.bridge``'s docstring:
``REQUEST_HEADER`` (command, address, count; little-endian), ``RESPONSE_HEADER`` (command,
status, payload length) and ``CRC_FORMAT`` (big-endian: high byte first).
"""

import binascii
import struct
from typing import NamedTuple

from edgetrain.errors import ToolError
from edgetrain.hw.link.bridge import (
    REQUEST_SYNC,
    RESPONSE_SYNC,
    CRC16_INIT,
    Command,
    Status,
    word_bytes)

__all__ = ["crc16", "encode_request", "Response", "BridgeError", "BridgeTimeout",
           "BridgeClient", "SerialTransport", "Command", "Status"]

MAX_GARBAGE = 4096
REQUEST_HEADER = struct.Struct("<BBIB")     # sync, command, address, count
RESPONSE_HEADER = struct.Struct("<BBH")     # command, status, payload length (after sync)
CRC_FORMAT = struct.Struct(">H")


def crc16(data, crc=CRC16_INIT):
    """Return the CRC-16/CCITT-FALSE of ``data`` (bytes), continuing from ``crc``.

    ``binascii.crc_hqx`` is this CRC (polynomial 0x1021, no reflection) from any start value;
    the bridge's ``crc16_step`` computes the same in hardware.
    """
    return binascii.crc_hqx(bytes(data), crc)


def encode_request(command, addr=0, count=0, payload=b""):
    """Return the request frame bytes (sync, header, payload, CRC) for ``command``."""
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"addr must fit 32 bits, not {addr!r}")
    if not 0 <= count < 256:
        raise ValueError(f"count must fit 8 bits, not {count!r}")
    code = command.value if isinstance(command, Command) else int(command)
    frame = REQUEST_HEADER.pack(REQUEST_SYNC, code, addr, count) + bytes(payload)
    return frame + CRC_FORMAT.pack(crc16(frame[1:]))


class Response(NamedTuple):
    """One decoded response frame."""
    command: int
    status: Status
    payload: bytes


class BridgeError(ToolError):
    """The bridge answered with an error status, or its answer was malformed."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class BridgeTimeout(BridgeError):
    """The transport delivered fewer bytes than a response needs before its timeout."""


class BridgeClient:
    """Registers, memory blocks, start and status of a device behind a ``HostBridge``.

    ``mem_data_bits`` and ``max_words`` must match the bridge's parameters. Memory words are
    unsigned integers of ``mem_data_bits``. Errors reported by the device raise
    ``BridgeError`` with its ``status``; the device stays usable afterwards.
    """

    def __init__(self, transport, *, mem_data_bits, max_words):
        self.transport = transport
        self.mem_data_bits, self.max_words = mem_data_bits, max_words
        self.word_bytes = word_bytes(mem_data_bits)

    async def send_raw(self, data):
        """Write raw bytes (tests use it to inject garbage and broken frames)."""
        await self.transport.write(bytes(data))

    async def read_response(self):
        """Return the next ``Response``, skipping bytes until a response sync byte."""
        for _ in range(MAX_GARBAGE):
            if (await self.transport.read(1))[0] == RESPONSE_SYNC:
                break
        else:
            raise BridgeError(f"no response sync byte in {MAX_GARBAGE} bytes from the device")
        header = await self.transport.read(RESPONSE_HEADER.size)
        command, code, length = RESPONSE_HEADER.unpack(header)
        payload = await self.transport.read(length) if length else b""
        (crc,) = CRC_FORMAT.unpack(await self.transport.read(CRC_FORMAT.size))
        if crc16(header + payload) != crc:
            raise BridgeError("response frame failed its CRC check")
        try:
            status = Status(code)
        except ValueError:
            raise BridgeError(f"response carries unknown status {code}") from None
        return Response(command, status, payload)

    async def request(self, command, addr=0, count=0, payload=b""):
        """Send one request frame and return its ``Response`` (whatever its status)."""
        await self.transport.write(encode_request(command, addr, count, payload))
        return await self.read_response()

    async def _call(self, command, addr=0, count=0, payload=b""):
        response = await self.request(command, addr, count, payload)
        if response.status != Status.OK:
            raise BridgeError(f"{Command(command).name} at address {addr:#06x} failed: "
                              f"{response.status.name}", response.status)
        return response.payload

    async def read_reg(self, addr):
        """Return the 32-bit register at ``addr``."""
        return int.from_bytes(await self._call(Command.READ_REG, addr, 1), "little")

    async def write_reg(self, addr, value):
        """Write the 32-bit ``value`` to the register at ``addr``."""
        await self._call(Command.WRITE_REG, addr, 1, int(value).to_bytes(4, "little"))

    async def start(self):
        """Pulse the device's start signal."""
        await self._call(Command.START)

    async def status(self):
        """Return the device's 32-bit status word."""
        return int.from_bytes(await self._call(Command.STATUS), "little")

    async def read_mem(self, addr, count):
        """Return ``count`` memory words from ``addr`` on (split into frames as needed)."""
        words, wb = [], self.word_bytes
        for base in range(0, count, self.max_words):
            n = min(self.max_words, count - base)
            data = await self._call(Command.READ_MEM, addr + base, n)
            words += [int.from_bytes(data[i * wb:(i + 1) * wb], "little") for i in range(n)]
        return words

    async def write_mem(self, addr, words):
        """Write the memory ``words`` from ``addr`` on (split into frames as needed)."""
        words = list(words)
        for w in words:
            if not 0 <= w < 1 << self.mem_data_bits:
                raise ValueError(f"memory word {w!r} does not fit {self.mem_data_bits} bits")
        for base in range(0, len(words), self.max_words):
            chunk = words[base:base + self.max_words]
            payload = b"".join(w.to_bytes(self.word_bytes, "little") for w in chunk)
            await self._call(Command.WRITE_MEM, addr + base, len(chunk), payload)


class SerialTransport:
    """A pyserial port as a bridge transport (blocking I/O behind the async methods)."""

    def __init__(self, port, *, baud=115200, timeout=1.0):
        import serial
        try:
            self.serial = serial.Serial(port, baud, timeout=timeout)
        except serial.SerialException as e:
            raise ToolError(f"cannot open serial port {port!r}: {e}; check the board is "
                            f"plugged in and pass the right --port") from None

    async def write(self, data):
        self.serial.write(data)
        self.serial.flush()

    async def read(self, n):
        data = self.serial.read(n)
        if len(data) < n:
            raise BridgeTimeout(f"device sent {len(data)} of {n} expected bytes before the "
                                f"timeout; check the port, the baud rate and the bitstream")
        return data

    def close(self):
        self.serial.close()
