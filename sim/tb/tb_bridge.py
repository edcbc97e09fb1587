"""cocotb tests of the UART host bridge (``hw.link.device.DeviceCore``) through the host client.

The client is ``firmware.bridge_client.BridgeClient``, the same code that drives a board; only
its transport differs: ``UartTransport`` wraps cocotbext-uart's ``UartSource``/``UartSink``.
Parameters (``EDGETRAIN_PARAMS``): divisor, dram_depth, max_words, timeout_cycles, seed,
config (``AcceleratorConfig`` fields of the engine; absent: no engine).
"""

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.uart import UartSink, UartSource

import numpy as np

from edgetrain.firmware.bridge_client import (
    BridgeClient,
    BridgeError,
    BridgeTimeout,
    Command,
    Status,
    encode_request)
from edgetrain.firmware.bridge_device import BridgeDevice
from edgetrain.hw.buffers import Buffer, pack_lanes, unpack_lanes
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.conv import CounterLayout
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields, pack_descriptor
from edgetrain.hw.link.device import STATUS_WORD, device_regions
from edgetrain.hw.link.memmap import REGION_BITS, map_words
from edgetrain.hw.link.registers import (
    DEVICE_ID,
    REG_COUNT,
    Register,
    decode_info,
    decode_layout,
    decode_word)
from edgetrain.sim.reference import engine as ref

PARAMS = json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))
CLK_NS = 10
CONFIG = AcceleratorConfig(**PARAMS["config"]) if PARAMS.get("config") else None
REGIONS = device_regions(CONFIG or AcceleratorConfig(), dram_depth=PARAMS["dram_depth"],
                         engine=CONFIG is not None)
MEM_WORDS = map_words(REGIONS)


class UartTransport:
    """cocotbext-uart as a bridge transport: ``write(data)`` and ``read(n)`` coroutines."""

    def __init__(self, dut, *, divisor, timeout_ns):
        baud = 1e9 / (CLK_NS * divisor)
        self.source = UartSource(dut.uart_rx, baud=baud)
        self.sink = UartSink(dut.uart_tx, baud=baud)
        for uart in (self.source, self.sink):
            uart.log.setLevel(logging.WARNING)
        self.timeout_ns = timeout_ns

    async def write(self, data):
        await self.source.write(data)
        await self.source.wait()

    async def read(self, n):
        data = bytearray()
        while len(data) < n:
            if self.sink.empty():
                await self.sink.wait(self.timeout_ns, "ns")
                if self.sink.empty():
                    raise BridgeTimeout(f"device sent {len(data)} of {n} expected bytes")
            data += self.sink.read_nowait(min(self.sink.count(), n - len(data)))
        return bytes(data)


async def setup(dut):
    """Start the clock, reset the device and return a ``BridgeClient`` wired to it."""
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.uart_rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    # The longest answer (max_words words) plus the frame timeout bounds every wait.
    byte_ns = CLK_NS * PARAMS["divisor"] * 10
    timeout_ns = (PARAMS["timeout_cycles"] * CLK_NS + byte_ns * (2 * PARAMS["max_words"] + 16))
    transport = UartTransport(dut, divisor=PARAMS["divisor"], timeout_ns=timeout_ns)
    return BridgeClient(transport, mem_data_bits=16, max_words=PARAMS["max_words"])


def status_fields(word):
    return decode_word(STATUS_WORD, word)


@cocotb.test()
async def registers_memory_start(dut):
    """Registers, a multi-frame memory block round trip, START and STATUS all work."""
    client = await setup(dut)
    rng = random.Random(PARAMS.get("seed", 1))
    depth = PARAMS["dram_depth"]
    assert await client.read_reg(Register.ID.value) == DEVICE_ID
    info = decode_info(await client.read_reg(Register.INFO.value))
    assert info["dram_depth"] == depth and info["mem_data_bits"] == 16
    layout = decode_layout(await client.read_reg(Register.LAYOUT.value))
    assert layout["engine"] == (CONFIG is not None)
    for value in (0, 0xFFFFFFFF, rng.getrandbits(32)):
        await client.write_reg(Register.SCRATCH.value, value)
        assert await client.read_reg(Register.SCRATCH.value) == value
    await client.write_reg(Register.ID.value, 0x1234)        # read-only: ignored
    assert await client.read_reg(Register.ID.value) == DEVICE_ID
    await client.write_reg(Register.LEDS.value, 0b1010)
    assert int(dut.leds.value) >> 4 == 0b1010

    count = PARAMS["max_words"] * 2 + 3                       # three frames, the last partial
    base = rng.randrange(depth - count)
    words = [rng.getrandbits(16) for _ in range(count)]
    await client.write_mem(base, words)
    assert await client.read_mem(base, count) == words
    assert await client.read_mem(depth - 1, 1) == [0]         # last word, never written

    cycles_before = await client.read_reg(Register.CYCLES.value)
    assert await client.read_reg(Register.CYCLES.value) > cycles_before
    if CONFIG is not None:                                    # the engine needs a real layer
        layer = LayerShape(n=1, c=1, h=3, w=3, m=1, k=1)
        fields = descriptor_fields(CONFIG, "fp", layer)
        await BridgeDevice(client, REGIONS).run(pack_descriptor(CONFIG, fields))
    else:
        await client.start()
    await client.start()
    assert await client.read_reg(Register.STARTS.value) == 2
    for _ in range(100):
        fields = status_fields(await client.status())
        if not fields["busy"]:
            break
    assert fields == {"busy": 0, "done": 1, "bad_access": 0, "engine_error": 0,
                      "last_error": Status.OK, "frame_errors": 0}


async def expect_status(client, frame, status):
    """Send raw ``frame``; check the device answers it once with ``status``."""
    await client.send_raw(frame)
    response = await client.read_response()
    assert response.status == status, f"{frame.hex()}: {response.status} != {status}"
    assert response.payload == b""
    return response


def mem_frame(client, addr, words):
    payload = b"".join(w.to_bytes(2, "little") for w in words)
    return encode_request(Command.WRITE_MEM, addr, len(words), payload)


@cocotb.test()
async def bad_frames(dut):
    """Corrupted, truncated, unknown, oversized and misaddressed frames are answered with
    their error, change nothing, are counted in STATUS, and the bridge keeps working."""
    client = await setup(dut)
    rng = random.Random(PARAMS.get("seed", 1) + 1)
    depth, max_words = MEM_WORDS, PARAMS["max_words"]
    kept = [rng.getrandbits(16) for _ in range(8)]
    await client.write_mem(0, kept)
    errors = 0

    frame = bytearray(mem_frame(client, 0, [w ^ 0xFFFF for w in kept]))
    for position in (rng.randrange(7, len(frame) - 2), len(frame) - 1):
        broken = bytearray(frame)
        broken[position] ^= 1 << rng.randrange(8)            # one flipped bit
        await expect_status(client, bytes(broken), Status.BAD_CRC)
        errors += 1
    await expect_status(client, encode_request(0x7F, 0, 1), Status.UNKNOWN_COMMAND)
    errors += 1
    for bad in (encode_request(Command.READ_MEM, 0, 0),
                encode_request(Command.READ_MEM, 0, max_words + 1),
                encode_request(Command.READ_REG, Register.ID.value, 2),
                mem_frame(client, 0, [0] * (max_words + 1))):
        await expect_status(client, bad, Status.BAD_LENGTH)
        errors += 1
    for bad in (encode_request(Command.READ_MEM, depth - 1, 2),
                encode_request(Command.READ_REG, REG_COUNT, 1),
                mem_frame(client, depth - 2, [1, 2, 3])):
        await expect_status(client, bad, Status.BAD_ADDRESS)
        errors += 1
    await expect_status(client, bytes(frame[:9]), Status.TIMEOUT)   # truncated in the payload
    errors += 1
    await expect_status(client, bytes([0xA5, 0x42]), Status.TIMEOUT)  # garbage with a sync byte
    errors += 1
    assert await client.read_mem(0, len(kept)) == kept

    garbage = bytes(b for b in rng.randbytes(40) if b != 0xA5)      # no sync byte: ignored
    await client.send_raw(garbage)
    response = await client.request(Command.READ_REG, Register.ID.value, 1)
    assert response.command == Command.READ_REG.value and response.status == Status.OK
    assert int.from_bytes(response.payload, "little") == DEVICE_ID

    fields = status_fields(await client.status())
    assert fields["bad_access"] == 0
    assert fields["frame_errors"] == errors
    assert fields["last_error"] == Status.TIMEOUT
    assert int(dut.leds.value) >> 2 & 1, "error LED must be lit after a bad frame"
    try:
        await client.read_mem(depth, 1)
    except BridgeError as e:
        assert e.status == Status.BAD_ADDRESS
    else:
        raise AssertionError("reading past the memory must raise BridgeError")
    await client.write_reg(Register.SCRATCH.value, 0xC0FFEE)
    assert await client.read_reg(Register.SCRATCH.value) == 0xC0FFEE


@cocotb.test()
async def memory_regions(dut):
    """Rows of every region round-trip as lanes; accesses outside a region set bad_access."""
    client = await setup(dut)
    device = BridgeDevice(client, REGIONS)
    rng = random.Random(PARAMS.get("seed", 1) + 2)
    for index, r in enumerate(REGIONS):
        base = rng.randrange(r.depth - 3)
        rows = [rng.getrandbits(r.data_bits) for _ in range(3)]
        await device.write_rows(r.name, rows, base)
        lane = rng.randrange(r.lanes)                 # a single-lane write keeps the others
        await client.write_mem(index << REGION_BITS | r.word(base + 1, lane), [0xBEEF])
        lanes = unpack_lanes(rows[1], r.lanes)
        lanes[lane] = 0xBEEF
        rows[1] = pack_lanes(lanes) & ((1 << r.data_bits) - 1)
        assert await device.read_rows(r.name, 3, base) == rows, r.name
    assert status_fields(await client.status())["bad_access"] == 0
    partial = [(i, r) for i, r in enumerate(REGIONS) if r.lanes < 1 << r.lane_bits]
    for index, r in partial:                                  # a lane past the row's end
        row = await device.read_rows(r.name, 1)
        await client.write_mem(index << REGION_BITS | r.word(0, r.lanes), [0x1234])
        assert status_fields(await client.status())["bad_access"] == 1, r.name
        assert await client.read_mem(index << REGION_BITS | r.word(0, r.lanes), 1) == [0]
        assert await device.read_rows(r.name, 1) == row, r.name
    last = REGIONS[-1]
    outside = (len(REGIONS) - 1) << REGION_BITS | last.word(last.depth, 0)
    assert await client.read_mem(outside, 1) == [0]            # past the last row
    assert status_fields(await client.status())["bad_access"] == 1


def decode_counters(value):
    return decode_word(CounterLayout(CONFIG), value)


@cocotb.test(skip=CONFIG is None)
async def engine_through_bridge(dut):
    """A forward conv runs on the engine with operands, descriptor and results all moved by
    the bridge client, and matches the golden model bit for bit."""
    client = await setup(dut)
    device = BridgeDevice(client, REGIONS)
    t = CONFIG.tm
    rng = np.random.default_rng(PARAMS.get("seed", 1))
    for mode, layer in (("fp", LayerShape(n=1, c=3, h=4, w=5, m=2, k=3, stride=1, pad=1)),
                        ("bp", LayerShape(n=1, c=2, h=5, w=4, m=3, k=3, stride=2, pad=1))):
        case = ref.random_case(rng, CONFIG, mode, layer=layer)
        operand = case.x if mode == "fp" else case.dy
        await device.write_rows(Buffer.ACT, ref.pack_rows(operand, t))
        await device.write_rows(Buffer.WGT, ref.pack_weight_rows(case.w, t))
        out_shape = ((layer.n, layer.m, layer.out_h, layer.out_w) if mode == "fp"
                     else (layer.n, layer.c, layer.h, layer.w))
        n_out = out_shape[0] * -(-out_shape[1] // t) * out_shape[2] * out_shape[3]
        fields = descriptor_fields(CONFIG, mode, layer, shift=case.shift,
                                   stochastic=case.rounding == "stochastic", key=case.key,
                                   relu=case.relu)
        status = await device.run(pack_descriptor(CONFIG, fields))
        assert status["bad_access"] == 0 and status["engine_error"] == 0
        want = ref.expected(case)
        data, mask = ref.unpack_rows(await device.read_rows(Buffer.OUT, n_out), out_shape, t)
        c = out_shape[1]
        assert np.array_equal(data[:, :c], want["data"]), f"{mode}: output data differ"
        assert np.array_equal(mask[:, :c], want["mask"]), f"{mode}: ReLU mask differs"
        counters = decode_counters(await device.counters())
        assert counters["macs"] == ref.useful_macs(mode, layer)
        assert counters["saturations"] == want["saturations"]
        assert counters["amax"] == want["amax"]
