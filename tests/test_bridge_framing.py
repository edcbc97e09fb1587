# amaranth: UnusedElaboratable=no
"""Pure-Python and Amaranth-simulator checks of the bridge framing (CRC, frame layout)."""

import asyncio
import random
import struct

import pytest
from amaranth.hdl import Module, Mux, Signal
from amaranth.sim import Simulator

from edgetrain.firmware.bridge_client import BridgeClient, Command, crc16, encode_request
from edgetrain.hw.link.bridge import CRC16_INIT, HostBridge, crc16_step, REQUEST_SYNC


def test_crc16_check_value():
    # The published check value of CRC-16/CCITT-FALSE.
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


def test_request_layout():
    frame = encode_request(Command.WRITE_MEM, 0x1234, 2, b"\x01\x02\x03\x04")
    assert frame[0] == REQUEST_SYNC
    assert frame[1:7] == bytes([Command.WRITE_MEM.value, 0x34, 0x12, 0, 0, 2])
    assert frame[7:11] == b"\x01\x02\x03\x04"
    crc = crc16(frame[1:11])
    assert frame[11:] == bytes([crc >> 8, crc & 0xFF])
    with pytest.raises(ValueError):
        encode_request(Command.READ_MEM, 1 << 32, 1)


def _random_frames(rng, count):
    frames = []
    for _ in range(count):
        command = rng.choice(list(Command))
        payload = rng.randbytes(rng.randrange(0, 40))
        frames.append(encode_request(command, rng.getrandbits(32), rng.randrange(256), payload))
    return frames


def test_crc16_step_matches_host():
    """The hardware's one-byte CRC update equals the host CRC, byte after byte, and over
    each random frame it ends at the CRC the host encoded (``binascii.crc_hqx``)."""
    m = Module()
    crc, byte, restart = Signal(16, init=CRC16_INIT), Signal(8), Signal()
    m.d.sync += crc.eq(crc16_step(Mux(restart, CRC16_INIT, crc), byte))
    frames = _random_frames(random.Random(3), 12)

    async def bench(ctx):
        for frame in frames:
            body, (want,) = frame[1:-2], struct.unpack(">H", frame[-2:])
            for i, b in enumerate(body):
                ctx.set(restart, i == 0)
                ctx.set(byte, b)
                await ctx.tick()
                assert ctx.get(crc) == crc16(body[:i + 1])
            assert ctx.get(crc) == want

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("kwargs", [dict(mem_data_bits=12), dict(max_words=0),
                                    dict(mem_depth=1 << 25), dict(timeout_cycles=1.5)])
def test_bridge_parameters_are_validated(kwargs):
    args = dict(reg_count=6, mem_depth=256, mem_data_bits=16, max_words=16,
                timeout_cycles=1000) | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        HostBridge(**args)


def test_client_rejects_oversized_words():
    client = BridgeClient(transport=None, mem_data_bits=16, max_words=4)
    with pytest.raises(ValueError, match="65536"):
        asyncio.run(client.write_mem(0, [1 << 16]))
