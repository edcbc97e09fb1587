# amaranth: UnusedElaboratable=no
"""The AXI arbiter and DRAM window guard, between three Python AXI4 masters (fetch, load,
store) and a Python AXI4 RAM, all pausing at random on every channel: every read beat and
the final memory are compared with a model, refused bursts must be answered DECERR without
reaching the RAM, and the AXI handshake rules are checked where the arbiter drives valid."""

import random
from dataclasses import dataclass, field

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from edgetrain.hw.accel.axi_arbiter import WRITE_QUEUE_DEPTH, AXIArbiter
from edgetrain.hw.accel.fetch import InstructionFetch
from edgetrain.hw.accel.isa import INSN_BYTES
from edgetrain.hw.accel.regslice import RegisterSlice
from edgetrain.hw.common.axi import AXI_INCR, AXI_OKAY
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.reshape import ReshapeDMA
from edgetrain.sim.tb.stream_sim import run_stream

CYCLE_LIMIT = 20_000
AXI_DECERR = 0b11       # AXI4: decode error, "no slave at the transaction address"
REQUESTERS = ("fetch", "load", "store")
HOLD_MORE = 100         # cycles a held RAM waits on: time for more bursts, were they let in


def initial_byte(addr):
    """The RAM's content at ``addr`` before any write (a hash, so a misrouted beat shows)."""
    return (addr * 2654435761 >> 13) & 0xFF


def inside(window, addr, length, beat_bytes):
    """The guard's rule: every byte of the burst's ``length + 1`` beats is in the window."""
    base, size = window
    return base <= addr and addr + (length + 1) * beat_bytes <= base + size


@dataclass
class Burst:
    """One burst of a master: AXI ``len``, and for a write its beats' data and strobes."""
    addr: int
    len: int
    inside: bool
    data: list = field(default_factory=list)
    strb: list = field(default_factory=list)


class Bench:
    """The arbiter between Python masters and a Python RAM (see the module docstring).

    ``pause`` is each side's chance per cycle to hold valid or ready low. ``hold_reads``
    makes the RAM answer no AR until it has that many, ``hold_writes`` no write until it
    has that many bursts' W beats and ``HOLD_MORE`` cycles have passed. The store master
    offers a burst's W beats independently of its AW (they may come first), or, with
    ``w_after_aw``, as the store DMA does: only once that burst's AW was accepted. ``log``
    records the cycle of every handshake per channel (``m_ar``, ``fetch_r``, ...);
    ``violations`` lists AXI handshake-rule breaks seen on a channel the arbiter drives
    valid on.
    """

    def __init__(self, cfg, window, *, seed=0, pause=0.3, hold_reads=0, hold_writes=0,
                 w_after_aw=False):
        self.cfg, self.window = cfg, window
        self.dut = AXIArbiter(config=cfg)
        self.beat = cfg.axi_data_bits // 8
        self.rnd, self.pause, self.hold_reads = random.Random(seed), pause, hold_reads
        self.hold_writes, self.w_after_aw = hold_writes, w_after_aw
        self.written = {}                       # address -> byte the RAM holds
        self.ram_bursts = []                    # (kind, addr, len) as the RAM saw them
        self.r_queue, self.aw_queue, self.b_queue = [], [], []
        self.log, self.violations, self.cycle = {}, [], 0
        self.w_sent = {}                        # store burst index -> beats accepted
        self.finished = 0                       # master processes that ran to their end
        self.errors = {}                        # window_error at the end, then after clear

    def _stamp(self, channel):
        self.log.setdefault(channel, []).append(self.cycle)

    def _paused(self):
        return self.rnd.random() < self.pause

    def ram_word(self, addr):
        return int.from_bytes(bytes(self.written.get(a, initial_byte(a))
                                    for a in range(addr, addr + self.beat)), "little")

    def expected_memory(self, store):
        memory = {}
        for burst in store:
            if burst.inside:
                for k, (word, strb) in enumerate(zip(burst.data, burst.strb)):
                    for i in range(self.beat):
                        if strb >> i & 1:
                            memory[burst.addr + k * self.beat + i] = word >> 8 * i & 0xFF
        return memory

    async def _clock(self, ctx):
        async for _ in ctx.tick():
            self.cycle += 1

    def _ram_requests(self, channel, queue):
        """The RAM's AR or AW process: accept requests at random into ``queue``."""
        axi = self.dut.m_axi
        valid, ready = getattr(axi, f"{channel}valid"), getattr(axi, f"{channel}ready")
        fields = [getattr(axi, f"{channel}{name}") for name in ("addr", "len", "size",
                                                                 "burst", "id")]

        async def process(ctx):
            while True:
                take = not self._paused()
                ctx.set(ready, take)
                _, _, got, addr, length, size, burst, ident = await ctx.tick().sample(
                    valid, *fields)
                if got and take:
                    self._stamp(f"m_{channel}")
                    assert (size, burst, ident) == (self.beat.bit_length() - 1, AXI_INCR, 0)
                    self.ram_bursts.append((channel, addr, length))
                    queue.append((addr, length))
        return process

    async def _ram_reads(self, ctx):
        axi = self.dut.m_axi
        while len(self.log.get("m_ar", ())) < self.hold_reads:
            await ctx.tick()
        while True:
            while not self.r_queue:
                await ctx.tick()
            addr, length = self.r_queue.pop(0)
            for k in range(length + 1):
                while self._paused():
                    await ctx.tick()
                ctx.set(axi.rdata, self.ram_word(addr + k * self.beat))
                ctx.set(axi.rresp, AXI_OKAY)
                ctx.set(axi.rlast, k == length)
                ctx.set(axi.rvalid, 1)
                await ctx.tick().until(axi.rready)
                self._stamp("m_r")
                ctx.set(axi.rvalid, 0)

    async def _ram_writes(self, ctx):
        axi, beat = self.dut.m_axi, 0
        while True:
            take = bool(self.aw_queue) and not self._paused()
            ctx.set(axi.wready, take)
            _, _, got, word, strb, last = await ctx.tick().sample(axi.wvalid, axi.wdata,
                                                                  axi.wstrb, axi.wlast)
            if not (got and take):
                continue
            self._stamp("m_w")
            addr, length = self.aw_queue[0]
            for i in range(self.beat):
                if strb >> i & 1:
                    self.written[addr + beat * self.beat + i] = word >> 8 * i & 0xFF
            assert last == (beat == length), f"wlast {last} on beat {beat} of len {length}"
            beat = 0 if last else beat + 1
            if last:
                self._stamp("m_wlast")
                self.b_queue.append(self.aw_queue.pop(0))

    async def _ram_responses(self, ctx):
        axi = self.dut.m_axi
        while len(self.log.get("m_wlast", ())) < self.hold_writes:
            await ctx.tick()
        for _ in range(HOLD_MORE if self.hold_writes else 0):
            await ctx.tick()
        while True:
            while not self.b_queue or self._paused():
                await ctx.tick()
            self.b_queue.pop(0)
            ctx.set(axi.bresp, AXI_OKAY)
            ctx.set(axi.bvalid, 1)
            await ctx.tick().until(axi.bready)
            self._stamp("m_b")
            ctx.set(axi.bvalid, 0)

    async def _request(self, ctx, port, channel, burst):
        """Offer one AR or AW on the requester ``port`` and hold it until accepted."""
        while self._paused():
            await ctx.tick()
        for name, value in (("addr", burst.addr), ("len", burst.len),
                            ("size", self.beat.bit_length() - 1), ("burst", AXI_INCR),
                            ("id", 0), ("valid", 1)):
            ctx.set(getattr(port, f"{channel}{name}"), value)
        await ctx.tick().until(getattr(port, f"{channel}ready"))
        ctx.set(getattr(port, f"{channel}valid"), 0)

    def _reader(self, name, bursts, max_open):
        """The AR and R processes of reader ``name`` (``fetch`` or ``load``)."""
        port, issued = getattr(self.dut, name), []

        async def requests(ctx):
            for burst in bursts:
                while len(issued) >= max_open:
                    await ctx.tick()
                await self._request(ctx, port, "ar", burst)
                self._stamp(f"{name}_ar")
                issued.append(burst)

        async def responses(ctx):
            for burst in bursts:
                for k in range(burst.len + 1):
                    await self._take_beat(ctx, port, name, burst, k, issued)
                issued.pop(0)
        return requests, responses

    async def _take_beat(self, ctx, port, name, burst, k, issued):
        while True:
            take = not self._paused()
            ctx.set(port.rready, take)
            _, _, got, word, resp, last = await ctx.tick().sample(port.rvalid, port.rdata,
                                                                  port.rresp, port.rlast)
            if got and take:
                break
        ctx.set(port.rready, 0)
        self._stamp(f"{name}_r")
        assert issued and issued[0] is burst, f"{name}: R beat before its AR"
        expect = (self.ram_word(burst.addr + k * self.beat), AXI_OKAY) if burst.inside \
            else (0, AXI_DECERR)
        assert (word, resp, last) == (*expect, k == burst.len), \
            f"{name} burst at {burst.addr:#x} beat {k}: {(word, resp, last)} != {expect}"

    def _writer(self, bursts):
        """The AW, W and B processes of the store master."""
        port, issued = self.dut.store, []

        async def requests(ctx):
            for burst in bursts:
                await self._request(ctx, port, "aw", burst)
                self._stamp("store_aw")
                issued.append(burst)

        async def data(ctx):
            for n, burst in enumerate(bursts):
                while self.w_after_aw and len(issued) <= n:
                    await ctx.tick()
                for k, (word, strb) in enumerate(zip(burst.data, burst.strb)):
                    while self._paused():
                        await ctx.tick()
                    ctx.set(port.wdata, word)
                    ctx.set(port.wstrb, strb)
                    ctx.set(port.wlast, k == burst.len)
                    ctx.set(port.wvalid, 1)
                    await ctx.tick().until(port.wready)
                    self._stamp("store_w")
                    self.w_sent[n] = k + 1
                    ctx.set(port.wvalid, 0)

        async def responses(ctx):
            for n, burst in enumerate(bursts):
                while True:
                    take = not self._paused()
                    ctx.set(port.bready, take)
                    _, _, got, resp = await ctx.tick().sample(port.bvalid, port.bresp)
                    if got and take:
                        break
                ctx.set(port.bready, 0)
                self._stamp("store_b")
                assert len(issued) > n and self.w_sent.get(n) == burst.len + 1, \
                    f"B of write {n} before its AW and all its W beats"
                assert resp == (AXI_OKAY if burst.inside else AXI_DECERR), f"write {n}: {resp}"
        return requests, data, responses

    def _channels(self):
        """(name, valid, ready, payload) of every channel on which the arbiter drives valid."""
        m, dut = self.dut.m_axi, self.dut
        return [("m_ar", m.arvalid, m.arready, (m.araddr, m.arlen, m.arsize, m.arburst)),
                ("m_aw", m.awvalid, m.awready, (m.awaddr, m.awlen, m.awsize, m.awburst)),
                ("m_w", m.wvalid, m.wready, (m.wdata, m.wstrb, m.wlast)),
                ("fetch_r", dut.fetch.rvalid, dut.fetch.rready,
                 (dut.fetch.rdata, dut.fetch.rresp, dut.fetch.rlast)),
                ("load_r", dut.load.rvalid, dut.load.rready,
                 (dut.load.rdata, dut.load.rresp, dut.load.rlast)),
                ("store_b", dut.store.bvalid, dut.store.bready, (dut.store.bresp,))]

    async def _monitor(self, ctx):
        """Check, per channel: valid stays high until ready, and the payload is stable."""
        channels, before = self._channels(), None
        signals = [s for _, valid, ready, payload in channels for s in (valid, ready, *payload)]
        while True:
            _, _, *values = await ctx.tick().sample(*signals)
            now, at = [], 0
            for name, _, _, payload in channels:
                now.append((name, values[at], values[at + 1], values[at + 2:at + 2 + len(
                    payload)]))
                at += 2 + len(payload)
            for (name, valid, ready, payload), (_, v, _, p) in zip(before or [], now):
                if valid and not ready and (not v or p != payload):
                    self.violations.append((self.cycle, name, payload, v, p))
            before = now

    def _host(self, masters):
        """Set the window; when every master is done, read ``window_error`` and clear it."""
        dut = self.dut

        async def host(ctx):
            ctx.set(dut.window_base, self.window[0])
            ctx.set(dut.window_size, self.window[1])
            while self.finished < masters:
                await ctx.tick()
            self.errors["end"] = self._window_error(ctx)
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            await ctx.tick()
            self.errors["cleared"] = self._window_error(ctx)
        return host

    def _window_error(self, ctx):
        value = ctx.get(self.dut.window_error)
        return {name: getattr(value, name) for name in REQUESTERS}

    def run(self, fetch=(), load=(), store=(), probe=None):
        """Run the masters' bursts to their end; fail after ``CYCLE_LIMIT`` cycles.
        ``probe(ctx)``, if given, runs after every other process in every cycle."""
        sim = Simulator(self.dut)
        sim.add_clock(1e-8)
        sim.add_testbench(self._clock, background=True)     # first: stamps see this cycle
        ram = (self._ram_requests("ar", self.r_queue), self._ram_requests("aw", self.aw_queue),
               self._ram_reads, self._ram_writes, self._ram_responses, self._monitor)
        for process in ram:
            sim.add_testbench(process, background=True)
        masters = [*self._reader("fetch", list(fetch), 1),
                   *self._reader("load", list(load), self.cfg.max_outstanding_reads),
                   *self._writer(list(store))]
        sim.add_testbench(self._host(len(masters)))
        for process in masters:
            sim.add_testbench(self._counted(process))
        if probe is not None:
            sim.add_testbench(probe, background=True)
        while sim.advance():
            assert self.cycle < CYCLE_LIMIT, f"no progress after {self.cycle} cycles"

    def _counted(self, process):
        async def counted(ctx):
            await process(ctx)
            self.finished += 1
        return counted


# --- stimulus ---------------------------------------------------------------------------

def regions(window):
    """Split the window in three: fetch reads, load reads, store writes (no read races a
    write, so every read beat has one right answer)."""
    base, size = window
    third = size // 3 // 64 * 64
    return {"fetch": (base, base + third), "load": (base + third, base + 2 * third),
            "store": (base + 2 * third, base + size)}


def random_burst(rnd, span, beat, length, align, window, want_inside):
    """A burst of ``length`` (AXI len) starting in ``span``, ``align``-aligned, not crossing
    4 KiB, lying inside the window or not as ``want_inside`` says (None: not checked)."""
    nbytes = (length + 1) * beat
    while True:
        addr = rnd.randrange(span[0], span[1] - nbytes + 1) // align * align
        if addr // 4096 != (addr + nbytes - 1) // 4096 or addr < span[0]:
            continue
        if want_inside is None or inside(window, addr, length, beat) == want_inside:
            return addr


def bursts(rnd, cfg, window, who, count, *, refused=0.0):
    """``count`` random bursts of requester ``who``, a ``refused`` share of them outside."""
    beat, base, size = cfg.axi_data_bits // 8, *window
    outside = [(max(0, base - 1024), base + 512), (base + size - 512, base + size + 1024)]
    outside = [(lo, min(hi, 1 << cfg.axi_addr_bits)) for lo, hi in outside]
    outside = [(lo, hi) for lo, hi in outside if lo < base or hi > base + size]
    out = []
    for _ in range(count):
        length = INSN_BYTES // beat - 1 if who == "fetch" else rnd.randrange(16)
        align = INSN_BYTES if who == "fetch" else beat
        bad = rnd.random() < refused
        spans = [s for s in outside if s[1] - s[0] > (length + 1) * beat] if bad else None
        span = rnd.choice(spans) if bad else regions(window)[who]
        addr = random_burst(rnd, span, beat, length, align, window, not bad)
        burst = Burst(addr, length, not bad)
        if who == "store":
            burst.data = [rnd.getrandbits(8 * beat) for _ in range(length + 1)]
            burst.strb = [rnd.getrandbits(beat) for _ in range(length + 1)]
        out.append(burst)
    return out


def traffic(cfg, window, seed, *, refused=(), share=0.3, counts=(16, 48, 32)):
    """Random bursts per requester; those named in ``refused`` get a ``share`` outside."""
    rnd = random.Random(seed)
    return {who: bursts(rnd, cfg, window, who, n, refused=share if who in refused else 0.0)
            for who, n in zip(REQUESTERS, counts)}


def check_run(bench, work):
    """What every run must show: handshakes kept, the RAM saw exactly the inside bursts
    (in each requester's order), the memory is the model's, and the sticky bits."""
    assert bench.violations == []
    seen_reads = [(a, n) for kind, a, n in bench.ram_bursts if kind == "ar"]
    seen_writes = [(a, n) for kind, a, n in bench.ram_bursts if kind == "aw"]
    for who in ("fetch", "load"):
        span = regions(bench.window)[who]
        mine = [(a, n) for a, n in seen_reads if span[0] <= a < span[1]]
        assert mine == [(b.addr, b.len) for b in work[who] if b.inside]
    assert len(seen_reads) == sum(b.inside for who in ("fetch", "load") for b in work[who])
    assert seen_writes == [(b.addr, b.len) for b in work["store"] if b.inside]
    assert bench.written == bench.expected_memory(work["store"])
    refused = {who: int(any(not b.inside for b in work[who])) for who in REQUESTERS}
    assert bench.errors == {"end": refused, "cleared": dict.fromkeys(REQUESTERS, 0)}


# --- tests ------------------------------------------------------------------------------

MID = dict(axi_addr_bits=16, axi_data_bits=64, max_outstanding_reads=4)
TOP = dict(axi_addr_bits=32, axi_data_bits=128, max_outstanding_reads=2)
NARROW = dict(axi_addr_bits=16, axi_data_bits=32, max_outstanding_reads=1)
WINDOWS = {"mid": (MID, (0x2340, 0x3000)), "top": (TOP, ((1 << 32) - 0x3000 + 0x40,
                                                          0x3000 - 0x40)),
           "narrow": (NARROW, (0x1040, 0x1800))}


@pytest.mark.parametrize("name", list(WINDOWS))
def test_concurrent_traffic_inside_the_window(name):
    fields, window = WINDOWS[name]
    cfg = AcceleratorConfig(**fields)
    work = traffic(cfg, window, seed=len(name))
    bench = Bench(cfg, window, seed=1)
    bench.run(**work)
    check_run(bench, work)
    # Fetch and load reads were interleaved on m_axi, not one requester after the other.
    fetch_span = regions(window)["fetch"]
    order = [fetch_span[0] <= a < fetch_span[1] for kind, a, _ in bench.ram_bursts
             if kind == "ar"]
    assert sum(x != y for x, y in zip(order, order[1:])) >= 4


@pytest.mark.parametrize("refused", [("fetch",), ("load",), ("store",), REQUESTERS])
def test_bursts_outside_the_window_get_decerr_and_never_reach_dram(refused):
    fields, window = WINDOWS["mid"]
    cfg = AcceleratorConfig(**fields)
    work = traffic(cfg, window, seed=7, refused=refused)
    assert all(any(not b.inside for b in work[who]) for who in refused)
    # Good bursts follow bad ones: the traffic after a refusal must still be served.
    assert all(any(b.inside for b in work[who][work[who].index(
        next(b for b in work[who] if not b.inside)):]) for who in refused)
    bench = Bench(cfg, window, seed=len(refused))
    bench.run(**work)
    check_run(bench, work)


EDGES = {
    # 64-bit beats, window [0x2340, 0x5340)
    "mid": (MID, (0x2340, 0x3000), [
        (0x2340, 0, True), (0x2338, 0, False), (0x2338, 1, False), (0x5338, 0, True),
        (0x5338, 1, False), (0x5330, 1, True), (0x5340, 0, False), (0x0000, 3, False),
        (0x2400, 15, True)]),
    # 128-bit beats, the window ends at the top of the address space
    "top": (TOP, ((1 << 32) - 0x1000, 0x1000), [
        ((1 << 32) - 16, 0, True), ((1 << 32) - 16, 1, False), ((1 << 32) - 0x1000, 255, True),
        ((1 << 32) - 0x1010, 0, False), ((1 << 32) - 32, 1, True), (0x10, 0, False)]),
    "one_beat": (NARROW, (0x1040, 4), [(0x1040, 0, True), (0x1040, 1, False),
                                       (0x103C, 0, False), (0x1044, 0, False)]),
    "below_a_beat": (TOP, (0x1000, 15), [(0x1000, 0, False), (0x0FF0, 0, False)]),
    "empty": (MID, (0x2000, 0), [(0x2000, 0, False), (0x1FF8, 0, False)]),
    # base + size - beat would be negative: nothing may pass
    "empty_at_zero": (MID, (0, 0), [(0, 0, False), (0x100, 3, False)]),
    "below_a_beat_at_zero": (MID, (0, 4), [(0, 0, False), (0x100, 0, False)]),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_window_edges(name):
    fields, window, cases = EDGES[name]
    cfg = AcceleratorConfig(**fields)
    beat = cfg.axi_data_bits // 8
    assert [inside(window, a, n, beat) for a, n, _ in cases] == [ok for *_, ok in cases]
    rnd = random.Random(5)
    load = [Burst(a, n, ok) for a, n, ok in cases]
    store = [Burst(a, n, ok, [rnd.getrandbits(8 * beat) for _ in range(n + 1)],
                   [(1 << beat) - 1] * (n + 1)) for a, n, ok in cases]
    refused = int(not all(ok for *_, ok in cases))
    for work in ({"load": load}, {"store": store}):     # apart: they share addresses
        bench = Bench(cfg, window, seed=2)
        bench.run(**work)
        who, = work
        assert bench.violations == []
        assert [(a, n) for _, a, n in bench.ram_bursts] == [(a, n) for a, n, ok in cases if ok]
        assert bench.written == bench.expected_memory(work.get("store", ()))
        assert bench.errors["end"] == {**dict.fromkeys(REQUESTERS, 0), who: refused}


def test_latency_and_full_throughput():
    """With nobody pausing and W after its AW (as the store DMA does): AR and AW reach DRAM 3
    cycles after the requester's handshake, W beats 2 cycles after once their AW was decided
    (the first leaves the cycle after its AW), R and B 1 cycle after DRAM's; bursts stream a
    beat per cycle."""
    cfg = AcceleratorConfig(**MID)
    window = WINDOWS["mid"][1]
    spans = regions(window)
    load = [Burst(spans["load"][0], 15, True), Burst(spans["load"][0] + 128, 15, True)]
    store = [Burst(spans["store"][0], 15, True, list(range(16)), [0xFF] * 16)]
    bench = Bench(cfg, window, pause=0.0, w_after_aw=True)
    bench.run(load=load, store=store)
    log = bench.log
    assert [m - r for m, r in zip(log["m_ar"], log["load_ar"])] == [3, 3]
    assert [m - r for m, r in zip(log["m_aw"], log["store_aw"])] == [3]
    assert log["m_w"][0] == log["m_aw"][0] + 1
    assert [m - r for m, r in zip(log["m_w"], log["store_w"])][2:] == [2] * 14
    assert [r - m for m, r in zip(log["m_r"], log["load_r"])] == [1] * 32
    assert [r - m for m, r in zip(log["m_b"], log["store_b"])] == [1]
    for channel in ("load_r", "m_r", "m_w"):
        assert set(b - a for a, b in zip(log[channel], log[channel][1:])) == {1}, channel


def test_order_queue_holds_every_read_the_requesters_can_have_open():
    """The RAM answers nothing until it has seen max_outstanding_reads + 1 ARs: a shallower
    order queue would stall AR and deadlock."""
    fields = dict(MID, max_outstanding_reads=3)
    cfg = AcceleratorConfig(**fields)
    window = WINDOWS["mid"][1]
    work = traffic(cfg, window, seed=3, counts=(1, 3, 0))
    bench = Bench(cfg, window, pause=0.0, hold_reads=4)
    bench.run(**work)
    assert len(bench.log["m_ar"]) == 4 and bench.log["m_ar"][-1] < bench.log["m_r"][0]


def test_write_queues_stop_the_store_when_full():
    """DRAM holds every B until it has WRITE_QUEUE_DEPTH bursts: the arbiter lets no further
    burst's last beat through (it would lose its place in the B order), then all complete."""
    cfg = AcceleratorConfig(**MID)
    window = WINDOWS["mid"][1]
    store = traffic(cfg, window, seed=6, counts=(0, 0, 10))["store"]
    store[6] = Burst(window[0] - 64, 1, False, [1, 2], [0xFF] * 2)
    bench = Bench(cfg, window, hold_writes=WRITE_QUEUE_DEPTH)
    bench.run(store=store)
    assert bench.written == bench.expected_memory(store)
    first_b = bench.log["m_b"][0]
    assert sum(c <= first_b for c in bench.log["m_wlast"]) == WRITE_QUEUE_DEPTH
    assert bench.violations == []


# The one output an input reaches within the cycle: the load's arready, from the fetch's
# arvalid (the fetch goes first).
PRIORITY_PATH = "load__arready"


def test_no_combinational_path_crosses_the_arbiter():
    """In every cycle of random traffic, flipping any input of the arbiter (m_axi's, a
    requester's, the window, clear) changes no output before the clock edge, but the load's
    arready (from the fetch's arvalid only)."""
    cfg = AcceleratorConfig(**MID)
    window = WINDOWS["mid"][1]
    bench = Bench(cfg, window, seed=4)
    members = list(bench.dut.signature.flatten(bench.dut))
    inputs = [value for _, flow, value in members if flow.flow is wiring.In]
    outputs = [value for path, flow, value in members if flow.flow is wiring.Out and
               "__".join(path) != PRIORITY_PATH]
    load_arready = bench.dut.load.arready
    found = set()

    async def probe(ctx):
        async for _ in ctx.tick():
            before = [ctx.get(o) for o in outputs]
            for signal in inputs:
                value = ctx.get(signal)
                ready = ctx.get(load_arready)
                ctx.set(signal, value ^ ((1 << len(signal)) - 1))
                if [ctx.get(o) for o in outputs] != before:
                    found.add(signal.name)
                if ctx.get(load_arready) != ready and signal is not bench.dut.fetch.arvalid:
                    found.add(f"{signal.name} -> {PRIORITY_PATH}")
                ctx.set(signal, value)
    bench.run(**traffic(cfg, window, seed=4, refused=REQUESTERS, counts=(8, 24, 16)),
              probe=probe)
    assert found == set()
    assert len(outputs) == len([f for _, f, _ in members if f.flow is wiring.Out]) - 1
    assert len(bench.log["m_r"]) > 100


def test_register_slice_passes_every_beat_in_order_at_full_rate():
    dut = RegisterSlice(shape=16)
    beats = [random.Random(k).getrandbits(16) for k in range(200)]
    stalled = run_stream(dut, beats, apply=lambda ctx, b: ctx.set(dut.i.payload, b),
                         collect=int, p_valid=0.7, p_ready=0.5, seed=1)
    assert stalled.outputs == beats
    dut = RegisterSlice(shape=16)
    free = run_stream(dut, beats, apply=lambda ctx, b: ctx.set(dut.i.payload, b),
                      collect=int)
    assert free.outputs == beats
    assert set(b - a for a, b in zip(free.out_cycles, free.out_cycles[1:])) == {1}


def test_parameters_are_checked():
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig, not None"):
        AXIArbiter(config=None)
    with pytest.raises(TypeError, match="shape must be a shape or a data layout, not 'wide'"):
        RegisterSlice(shape="wide")


def test_the_three_requesters_connect():
    cfg = AcceleratorConfig(**MID)
    m = Module()
    m.submodules.arbiter = arbiter = AXIArbiter(config=cfg)
    m.submodules.fetch = fetch = InstructionFetch(addr_bits=cfg.axi_addr_bits,
                                                  data_bits=cfg.axi_data_bits)
    m.submodules.load = load = ReshapeDMA.from_config(cfg, buf_depth=64)
    m.submodules.store = store = ReshapeDMA.from_config(cfg, buf_depth=64)
    for requester, port in ((fetch, arbiter.fetch), (load, arbiter.load),
                            (store, arbiter.store)):
        wiring.connect(m, requester.m_axi, port)
    Fragment.get(m, None)
