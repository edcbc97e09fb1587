"""Adds: a buffer port with ``add_words`` adds ``w_data`` to a row, word by word, at one row
per cycle; a request that would meet the pending sum waits a cycle."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from edgetrain.hw.buffers.memport import MemoryPortSignature, SRAMBuffer

WORD = 16
WORDS = 3
DEPTH = 8
MASK = (1 << WORD) - 1


def _add(row, data):
    return sum((((row >> (WORD * i)) + (data >> (WORD * i))) & MASK) << (WORD * i)
               for i in range(WORDS))


def test_signature_has_w_add_only_with_add_words():
    sig = MemoryPortSignature(addr_bits=3, data_bits=WORD * WORDS, add_words=WORD)
    assert sig.members["w_add"].shape == 1
    assert "w_add" not in MemoryPortSignature(addr_bits=3, data_bits=WORD * WORDS).members
    assert sig != MemoryPortSignature(addr_bits=3, data_bits=WORD * WORDS)
    with pytest.raises(TypeError, match="add_words must be a positive integer dividing"):
        MemoryPortSignature(addr_bits=3, data_bits=40, add_words=16)


def _run(requests):
    """Drive ``requests`` ((kind, addr, data), kind read / write / add) one after the other,
    each held until accepted; return (the reads' rows, the cycles each request waited)."""
    dut = SRAMBuffer(depth=DEPTH, data_bits=WORD * WORDS, add_words=WORD)
    port = dut.port
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    reads, waits = [], []

    async def bench(ctx):
        for kind, addr, data in requests:
            ctx.set(port.addr, addr)
            ctx.set(port.w_data, data)
            ctx.set(port.r_en, kind == "read")
            ctx.set(port.w_en, kind != "read")
            ctx.set(port.w_add, kind == "add")
            waited = 0
            while True:
                ready = ctx.get(port.ready)
                await ctx.tick()
                if ready:
                    break
                waited += 1
            waits.append(waited)
            if kind == "read":         # the row, the cycle after the read was accepted
                reads.append(ctx.get(port.r_data))

    sim.add_testbench(bench)
    sim.run()
    return reads, waits


def test_adds_stream_and_wait_only_for_their_own_row():
    a, b = 0xFFFF_0001_0002, 0x0001_0001_FFFF
    reqs = [("write", 1, a), ("write", 2, a),
            ("add", 1, b), ("add", 2, b),        # back to back, other rows: no wait
            ("read", 2, 0),                      # the row of the add just before: waits
            ("add", 1, b), ("write", 3, 7),      # a plain write after an add: waits
            ("read", 1, 0), ("read", 3, 0)]
    reads, waits = _run(reqs)
    assert waits == [0, 0, 0, 0, 1, 0, 1, 0, 0]
    assert reads == [_add(a, b), _add(_add(a, b), b), 7]


def test_random_requests_match_a_row_model():
    rng = np.random.default_rng(7)
    rows = [0] * DEPTH
    reqs, expect = [], []
    for i in range(400):
        kind = ["read", "write", "add"][rng.integers(3)] if i >= DEPTH else "write"
        addr = int(rng.integers(DEPTH)) if i >= DEPTH else i
        data = int(rng.integers(1 << (WORD * WORDS), dtype=np.uint64))
        reqs.append((kind, addr, data))
        if kind == "read":
            expect.append(rows[addr])
        elif kind == "write":
            rows[addr] = data
        else:
            rows[addr] = _add(rows[addr], data)
    reads, waits = _run(reqs)
    assert reads == expect
    assert 0 < sum(waits) < len(reqs) // 2
