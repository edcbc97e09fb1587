"""cocotb testbench of ``ReshapeDMA``: cocotbext-axi's AxiRam as DRAM, a buffer-port model.

Every transfer is checked against the layout module and the golden transforms (``np.pad`` for
zero padding, ``sim.conv.bp_weights`` for the BP weights): the buffer rows (or the DRAM image,
for stores) must match bit for bit, each row written exactly once. A monitor checks the AXI
protocol on every cycle (burst length, 4 KiB rule, alignment, valid held until ready with a
stable payload, W beats per burst and WLAST) and that the bursts are exactly those of
``layout.split_bursts``. Parameters arrive as JSON in ``EDGETRAIN_PARAMS``: ``data_bits``,
``buf_depth``, ``max_burst_beats``, ``seed``, ``cases``, ``axi_pause`` and ``buf_stall``
(probabilities of a paused AXI channel cycle / a buffer not-ready cycle), ``burst_gap`` (idle
data-channel cycles after each burst, a DRAM's per-burst cost), ``stats`` (a JSON path for
per-transfer bus figures), ``replay`` (a JSON file of descriptors to run instead of the
random tests: the benchmark's RTL measurement), ``mem_bytes`` (DRAM size).
"""

import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from edgetrain.hw.dma import layout as lay
from edgetrain.hw.dma.descriptor import Descriptor, descriptor_layout
from edgetrain.hw.dma.reshape import STATUS_LAYOUT
from edgetrain.sim.reference.dma_cases import KINDS, random_case

P = {"data_bits": 64, "buf_depth": 512, "max_burst_beats": 256, "seed": 1, "cases": 12,
     "axi_pause": 0.2, "buf_stall": 0.2, "stats": None, "addr_bits": 32, "burst_gap": 0,
     "max_outstanding_reads": 4,
     **json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))}
MEM_BYTES = P.get("mem_bytes", 1 << 16)


def _pauses(rng, prob):
    while True:
        yield int(rng.random() < prob)


def _burst_gaps(bench, gap):
    """Pause a data channel for ``gap`` cycles after each burst: a DRAM's per-burst cost."""
    seen = 0
    while True:
        if bench.bursts_done > seen:
            # several short bursts may end before the pause takes hold: a gap for each
            missed, seen = bench.bursts_done - seen, bench.bursts_done
            for _ in range(gap * missed):
                yield 1
        yield 0


def wake_combinational(handle, depth=0):
    """Toggle Yosys' per-module ``$auto...dump_module`` trigger regs; return how many.

    Icarus (compiled with -g2012) starts no ``always @*`` block whose inputs keep their initial
    values, so outputs that depend only on idle registers stay X. Yosys references that reg in
    every such block for exactly this purpose; writing it runs each block once.
    """
    count = 0
    for child in handle:
        if "dump_module" in child._name:
            child.value = 1
            count += 1
        elif depth < 4 and type(child).__name__.startswith("Hier"):
            count += wake_combinational(child, depth + 1)
    return count


class DMABench:
    """Drives one DUT: DRAM, buffer model, protocol monitor and descriptor submission."""

    def __init__(self, dut):
        self.dut = dut
        logging.getLogger(f"cocotb.{dut._name}.m_axi").setLevel(logging.WARNING)
        self.lanes = P["data_bits"] // 16
        self.bus_bytes = P["data_bits"] // 8
        self.rng = random.Random(P["seed"])
        self.layout = descriptor_layout(addr_bits=P["addr_bits"],
                                        buf_addr_bits=(P["buf_depth"] - 1).bit_length())
        self.rows = [0] * P["buf_depth"]
        self.violations = []
        self.bursts, self.beats, self.writes, self.cycle = [], 0, {}, 0
        self.first = self.last = None
        self.bursts_done = 0
        self.reads_in_flight = self.most_in_flight = 0

    async def start(self):
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi", bus_separator="__"), dut.clk,
                          dut.rst, size=MEM_BYTES)
        prng = random.Random(P["seed"] + 1)
        for port in (self.ram.read_if.ar_channel, self.ram.read_if.r_channel,
                     self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                     self.ram.write_if.b_channel):
            if P["axi_pause"]:
                port.set_pause_generator(_pauses(prng, P["axi_pause"]))
        if P["burst_gap"]:
            for port in (self.ram.read_if.r_channel, self.ram.write_if.w_channel):
                port.set_pause_generator(_burst_gaps(self, P["burst_gap"]))
        if cocotb.SIM_NAME.lower().startswith("icarus"):
            wake_combinational(dut)
        dut.desc__valid.value = 0
        dut.desc__payload.value = 0
        dut.clear.value = 0
        dut.buf__ready.value = 1
        dut.buf__r_data.value = 0
        dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        cocotb.start_soon(self._buffer())
        cocotb.start_soon(self._monitor())

    def violation(self, text):
        self.violations.append(f"cycle {self.cycle}: {text}")

    async def _buffer(self):
        """The buffer port: random ``ready``, reads answered one cycle after acceptance."""
        dut, pending, held = self.dut, None, None
        while True:
            await RisingEdge(dut.clk)
            if pending is not None:
                dut.buf__r_data.value = self.rows[pending]
                pending = None
            ready = self.rng.random() >= P["buf_stall"]
            dut.buf__ready.value = int(ready)
            await FallingEdge(dut.clk)
            w_en, r_en = int(dut.buf__w_en.value), int(dut.buf__r_en.value)
            req = (w_en, r_en, int(dut.buf__addr.value) if w_en or r_en else 0,
                   int(dut.buf__w_data.value) if w_en else 0)
            if held is not None and req != held:
                self.violation(f"buffer request changed while not ready: {held} -> {req}")
            held = None
            if req[0] and req[1]:
                self.violation("buffer read and write in the same cycle")
            if not (req[0] or req[1]):
                continue
            if not ready:
                held = req
            elif req[0]:
                self.rows[req[2]] = req[3]
                self.writes[req[2]] = self.writes.get(req[2], 0) + 1
            else:
                pending = req[2]

    async def _monitor(self):
        """Check the AXI protocol each cycle and record bursts and data beats."""
        dut = self.dut
        held = {"ar": None, "aw": None, "w": None}
        aw_lens, w_count = [], 0
        while True:
            await FallingEdge(dut.clk)
            self.cycle += 1
            for ch in ("ar", "aw"):
                valid = int(getattr(dut, f"m_axi__{ch}valid").value)
                ready = int(getattr(dut, f"m_axi__{ch}ready").value)
                pay = tuple(int(getattr(dut, f"m_axi__{ch}{f}").value)
                            for f in ("addr", "len", "size", "burst"))
                self._check_held(held, ch, valid, ready, pay)
                if valid and ready:
                    self._check_burst(ch, *pay)
                    if ch == "aw":
                        aw_lens.append(pay[1])
                    else:
                        self._read_issued()
            wv, wr = int(dut.m_axi__wvalid.value), int(dut.m_axi__wready.value)
            wpay = (int(dut.m_axi__wdata.value), int(dut.m_axi__wlast.value))
            self._check_held(held, "w", wv, wr, wpay)
            if wv and wr:
                if not aw_lens:
                    self.violation("W beat with no burst")
                else:
                    if wpay[1] != (w_count == aw_lens[0]):
                        self.violation(f"WLAST {wpay[1]} on beat {w_count + 1} of a "
                                       f"{aw_lens[0] + 1}-beat burst")
                    w_count += 1
                    self.bursts_done += wpay[1]
                    if w_count == aw_lens[0] + 1:
                        aw_lens.pop(0)
                        w_count = 0
                self._data_beat()
            if int(dut.m_axi__rvalid.value) and int(dut.m_axi__rready.value):
                self.bursts_done += int(dut.m_axi__rlast.value)
                self.reads_in_flight -= int(dut.m_axi__rlast.value)
                self._data_beat()

    def _check_held(self, held, ch, valid, ready, pay):
        if held[ch] is not None and (not valid or pay != held[ch]):
            self.violation(f"{ch.upper()} valid dropped or payload changed before ready")
        held[ch] = pay if valid and not ready else None

    def _check_burst(self, ch, addr, length, size, burst):
        beats = length + 1
        if self.first is None:
            self.first = self.cycle
        if beats > P["max_burst_beats"]:
            self.violation(f"{ch} burst of {beats} beats > {P['max_burst_beats']}")
        if addr % self.bus_bytes:
            self.violation(f"{ch} address {addr:#x} not aligned to {self.bus_bytes} bytes")
        if addr // 4096 != (addr + beats * self.bus_bytes - 1) // 4096:
            self.violation(f"{ch} burst {addr:#x}+{beats} beats crosses 4 KiB")
        if 1 << size != self.bus_bytes or burst != 1:
            self.violation(f"{ch} size {size} / burst type {burst} is not full-width INCR")
        self.bursts.append((addr, beats))

    def _read_issued(self):
        self.reads_in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.reads_in_flight)
        if self.reads_in_flight > P["max_outstanding_reads"]:
            self.violation(f"{self.reads_in_flight} reads outstanding > "
                           f"{P['max_outstanding_reads']}")

    def _data_beat(self):
        self.beats += 1
        self.last = self.cycle

    async def run(self, desc, *, timeout=None):
        """Submit ``desc``, wait for idle (failing on a hang); return the status dict."""
        dut = self.dut
        self.bursts, self.beats, self.writes, self.first, self.last = [], 0, {}, None, None
        await FallingEdge(dut.clk)
        dut.desc__payload.value = desc.payload(self.layout)
        dut.desc__valid.value = 1
        while not int(dut.desc__ready.value):
            await FallingEdge(dut.clk)
        await RisingEdge(dut.clk)
        dut.desc__valid.value = 0
        limit = timeout or 40 * desc.dram_beats * self.lanes + 2000
        for _ in range(limit):
            await FallingEdge(dut.clk)
            status = STATUS_LAYOUT.from_bits(int(dut.status.value))
            if not status.busy and int(dut.desc__ready.value):
                return {name: status[name] for name, _ in STATUS_LAYOUT}
        raise AssertionError(f"DMA did not return to idle within {limit} cycles: {desc}")

    async def clear(self):
        self.dut.clear.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.clear.value = 0

    def expect_bursts(self, desc):
        want = [b for a, n in desc.segments(self.bus_bytes)
                for b in lay.split_bursts(lay.Segment(a, n), bus_bytes=self.bus_bytes,
                                          max_beats=P["max_burst_beats"])]
        assert self.bursts == want, f"bursts {self.bursts[:6]}... differ from {want[:6]}..."

    def stats(self, kind, desc):
        return {"kind": kind, "beats": self.beats, "bursts": len(self.bursts),
                "cycles": (self.last - self.first + 1) if self.first else 0,
                "desc": desc.__dict__}


async def check_case(bench, case):
    """Run one case; raise on any mismatch, duplicate write or protocol violation."""
    bench.ram.write(0, bytes(case.image))
    for addr, value in case.rows_before.items():
        bench.rows[addr] = value
    status = await bench.run(case.desc)
    errors = [k for k, v in status.items() if v and k != "busy"]
    assert not errors, f"{case.kind}: good descriptor raised {errors}: {case.desc}"
    assert not bench.violations, "\n".join(bench.violations[:10])
    bench.expect_bursts(case.desc)
    if case.expect_rows is not None:
        assert set(bench.writes) == set(case.expect_rows), \
            f"{case.kind}: wrote rows {sorted(bench.writes)[:8]}..., expected " \
            f"{sorted(case.expect_rows)[:8]}..."
        dup = [a for a, c in bench.writes.items() if c != 1]
        assert not dup, f"{case.kind}: rows written more than once: {dup[:8]}"
        bad = [a for a, v in case.expect_rows.items() if bench.rows[a] != v]
        assert not bad, f"{case.kind}: {len(bad)} mismatching rows, first {bad[:8]}"
    if case.expect_image is not None:
        got = bench.ram.read(0, len(case.expect_image))
        bad = [i for i in range(0, len(got), 2) if got[i:i + 2] != case.expect_image[i:i + 2]]
        assert not bad, f"{case.kind}: {len(bad)} mismatching DRAM elements, first at " \
                        f"{bad[:8]}"


@cocotb.test(skip=bool(P.get("replay")))
async def random_transfers(dut):
    """Randomized loads and stores of every kind, compared bit for bit."""
    bench = DMABench(dut)
    await bench.start()
    rng = np.random.default_rng(P["seed"])
    stats = []
    for i in range(P["cases"]):
        kind = KINDS[i % len(KINDS)]
        case = random_case(rng, kind, lanes=bench.lanes, depth=P["buf_depth"],
                           mem=MEM_BYTES)
        await check_case(bench, case)
        stats.append(bench.stats(kind, case.desc))
        dut._log.info(f"case {i} {kind}: {bench.beats} beats, {len(bench.bursts)} bursts, "
                      f"{stats[-1]['cycles']} cycles: ok")
    dut._log.info(f"most reads outstanding: {bench.most_in_flight}")
    if any(st["bursts"] >= 4 and "load" in st["kind"] for st in stats):
        assert bench.most_in_flight >= min(2, P["max_outstanding_reads"]), \
            f"multi-burst loads never had several reads outstanding ({bench.most_in_flight})"
    if P["stats"]:
        with open(P["stats"], "w") as f:
            json.dump(stats, f)


@cocotb.test(skip=bool(P.get("replay")))
async def bad_descriptors(dut):
    """Each bad descriptor sets its error bit, moves nothing, and the DMA stays usable."""
    bench = DMABench(dut)
    await bench.start()
    depth, bus = P["buf_depth"], bench.bus_bytes
    bad = {
        "err_zero": Descriptor(dram_addr=0, seg_beats=0, buf_addr=0, n0=1),
        "err_align": Descriptor(dram_addr=bus // 2, seg_beats=2, buf_addr=0, n0=2),
        "err_bounds": Descriptor(dram_addr=0, seg_beats=depth + 1, buf_addr=0, n0=depth + 1),
        "err_length": Descriptor(dram_addr=0, seg_beats=4, buf_addr=0, n0=3),
    }
    bad_neg = Descriptor(dram_addr=0, seg_beats=4, buf_addr=1, n0=4, s0=-1)
    good = random_case(np.random.default_rng(P["seed"]), "act_load", lanes=bench.lanes,
                       depth=depth, mem=MEM_BYTES)
    for want, desc in [*bad.items(), ("err_bounds", bad_neg)]:
        status = await bench.run(desc, timeout=20)
        raised = [k for k, v in status.items() if v]
        assert raised == [want], f"{desc} raised {raised}, expected [{want!r}]"
        assert not bench.bursts and not bench.writes, f"{want}: the bad descriptor moved data"
        await bench.clear()
        await check_case(bench, good)


@cocotb.test(skip=bool(P.get("replay")))
async def error_responses(dut):
    """An AXI SLVERR on a read or a write sets ``err_resp``; the transfer still ends."""
    bench = DMABench(dut)
    await bench.start()
    rng = np.random.default_rng(P["seed"] + 7)
    for kind, port in (("act_load", bench.ram.read_if), ("act_store", bench.ram.write_if)):
        case = random_case(rng, kind, lanes=bench.lanes, depth=P["buf_depth"], mem=MEM_BYTES)
        bench.ram.write(0, bytes(case.image))
        healthy = port._read if kind == "act_load" else port._write

        async def failing(*args):
            raise OSError("injected DRAM error")
        if kind == "act_load":
            port._read = failing
        else:
            port._write = failing
        for addr, value in case.rows_before.items():
            bench.rows[addr] = value
        status = await bench.run(case.desc)
        raised = [k for k, v in status.items() if v]
        assert raised == ["err_resp"], f"{kind} with SLVERR raised {raised}"
        assert not bench.violations, "\n".join(bench.violations[:10])
        if kind == "act_load":
            port._read = healthy
        else:
            port._write = healthy
        await bench.clear()
        await check_case(bench, case)


@cocotb.test(skip=not P.get("replay"))
async def replay(dut):
    """Run the descriptors of the JSON file ``replay`` on random DRAM contents; record bus
    figures in ``stats``. Checks protocol and bursts (the data is not checked here)."""
    bench = DMABench(dut)
    await bench.start()
    with open(P["replay"]) as f:
        items = json.load(f)
    bench.ram.write(0, np.random.default_rng(P["seed"]).integers(
        0, 256, size=MEM_BYTES, dtype=np.uint8).tobytes())
    stats = []
    for item in items:
        desc = Descriptor(**item["desc"])
        status = await bench.run(desc)
        raised = [k for k, v in status.items() if v]
        assert not raised, f"{item['tensor']}: {raised} for {desc}"
        assert not bench.violations, "\n".join(bench.violations[:10])
        bench.expect_bursts(desc)
        stats.append({**bench.stats(item["tensor"], desc), "form": item["form"]})
    with open(P["stats"], "w") as f:
        json.dump(stats, f)
