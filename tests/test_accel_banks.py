# amaranth: UnusedElaboratable=no
"""Buffer banks, their beat-wide DMA side and the DMA crossbar, against a Python model of
the memory contents (a read returns the last write of that half and row)."""

import math
import random

import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from edgetrain.errors import ConfigError
from edgetrain.hw.accel.banks import BufferBank, bank_addr_bits, half_depth
from edgetrain.hw.accel.beats import BeatPort, beat_addr_bits, beat_depth, beat_ratio
from edgetrain.hw.accel.crossbar import DMACrossbar
from edgetrain.hw.buffers import REFRESHED, Buffer
from edgetrain.hw.buffers.edram import periodic_interval
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.dma.reshape import ReshapeDMA

# Small enough for the Python simulator; T = 4 and 32-bit beats give every ratio: ACT and
# OUT rows are 2 beats, WGT rows 8, MST rows 2.
BASE = dict(tm=4, tn=4, max_kernel=3, max_channels=8, max_size=8, max_batch=2,
            input_depth=32, weight_depth=8, output_depth=32, retention_cycles=64,
            edram_banks=2, axi_data_bits=32, refresh=("none", "none", "none"))


def config(**changes):
    return AcceleratorConfig(**{**BASE, **changes})


def with_policy(buffer, policy, **changes):
    """The test config with ``policy`` for ``buffer`` (one of ``REFRESHED``), SRAM else."""
    refresh = ["none"] * len(REFRESHED)
    if buffer in REFRESHED:
        refresh[REFRESHED.index(buffer)] = policy
    return config(refresh=tuple(refresh), **changes)


def run(dut, drivers, monitor=None):
    """Run the ``drivers``' benches to their end, the ``monitor``'s beside them."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for driver in drivers:
        sim.add_testbench(driver.bench)
    if monitor is not None:
        sim.add_testbench(monitor.bench, background=True)
    sim.run()


class PortDriver:
    """Drive one ``MemoryPortSignature`` port through a list of requests with random gaps,
    checking ``r_data`` against ``model`` on every clock edge after the first read.

    A request is ``("w", addr, data, lanes)``, ``("r", addr, last)``, ``("p", cycles)``
    (a pause) or ``("b", buffer)`` (set ``select`` to ``buffer``: then ``model`` is a dict
    of models by buffer). A model maps an address to its row; ``write(model, addr, data,
    lanes)`` applies an accepted write. ``wrong`` lists (read number, edge, expected, seen)
    of every edge at which ``r_data`` was not the row of the last accepted read.
    """

    def __init__(self, port, requests, model, *, write, seed, gaps=(0, 0, 0, 1, 3),
                 select=None):
        self.port, self.requests, self.models, self.write = port, requests, model, write
        self.model = model
        self.rng, self.gaps, self.select = random.Random(seed), gaps, select
        self.wrong, self.reads, self.expect, self.edge = [], 0, None, 0

    @property
    def wrong_reads(self):
        return {number for number, *_ in self.wrong}

    async def _tick(self, ctx, *signals):
        _, _, r_data, *rest = await ctx.tick().sample(self.port.r_data, *signals)
        if self.expect is not None and r_data != self.expect:
            self.wrong.append((self.reads, self.edge, self.expect, r_data))
        self.edge += 1
        return rest

    async def _issue(self, ctx, request):
        """Present ``request`` until it is accepted."""
        port, kind = self.port, request[0]
        ctx.set(port.addr, request[1])
        if kind == "w":
            ctx.set(port.w_data, request[2])
            if hasattr(port, "w_lanes"):
                lanes = len(port.w_lanes)
                ctx.set(port.w_lanes, (1 << lanes) - 1 if request[3] is None else request[3])
        else:
            ctx.set(port.r_last, request[2])
        ctx.set(port.w_en if kind == "w" else port.r_en, 1)
        while not (await self._tick(ctx, port.ready))[0]:
            pass
        ctx.set(port.w_en, 0)
        ctx.set(port.r_en, 0)

    async def bench(self, ctx):
        for request in self.requests:
            if request[0] == "b":
                ctx.set(self.select, request[1])
                self.model = self.models[request[1]]
                continue
            pause = request[1] if request[0] == "p" else self.rng.choice(self.gaps)
            for _ in range(pause):
                await self._tick(ctx)
            if request[0] == "p":
                continue
            await self._issue(ctx, request)
            if request[0] == "w":
                self.write(self.model, *request[1:])
            else:
                self.reads += 1
                self.expect = self.model.get(request[1], 0)
        await self._tick(ctx)


def lane_write(row_bits):
    """The model's write of a row with 16-bit lane enables (``None``: every lane)."""
    def write(model, addr, data, lanes):
        old, new = model.get(addr, 0), 0
        for k in range(-(-row_bits // 16)):
            take = data if lanes is None or lanes >> k & 1 else old
            new |= take & (0xFFFF << 16 * k)
        model[addr] = new & ((1 << row_bits) - 1)
    return write


def bank_rows(cfg, buffer, halves=(0, 1)):
    """The ``{half, row}`` addresses of ``buffer``'s rows in ``halves``."""
    top = bank_addr_bits(cfg, buffer) - 1
    return [h << top | r for h in halves for r in range(half_depth(cfg, buffer))]


def random_requests(rng, cfg, buffer, count, *, lanes, halves=(0, 1), last=True):
    """``count`` random reads and writes of ``buffer``'s rows in ``halves``."""
    rows, bits = bank_rows(cfg, buffer, halves), buffer.row_bits(cfg)
    out = []
    for _ in range(count):
        addr = rng.choice(rows)
        if rng.random() < 0.5:
            mask = rng.getrandbits(-(-bits // 16)) if lanes and rng.random() < 0.4 else None
            out.append(("w", addr, rng.getrandbits(bits), mask))
        else:
            out.append(("r", addr, int(last and rng.random() < 0.3)))
    return out


class BankMonitor:
    """Count edges and same-half collisions; check that a collision stalls ``dma`` only."""

    def __init__(self, bank):
        self.bank, self.edges, self.collisions, self.errors = bank, 0, 0, []
        self.counters = None

    async def bench(self, ctx):
        c, d = self.bank.compute, self.bank.dma
        top = len(c.addr) - 1
        while True:
            _, _, c_req, c_addr, c_ready, d_req, d_addr, d_ready = await ctx.tick().sample(
                c.r_en | c.w_en, c.addr, c.ready, d.r_en | d.w_en, d.addr, d.ready)
            self.edges += 1
            if c_req and d_req and c_addr >> top == d_addr >> top:
                self.collisions += 1
                if d_ready:
                    self.errors.append((self.edges, "dma accepted on compute's half"))
            if self.bank.lane_writes and not c_ready:
                self.errors.append((self.edges, "compute stalled by an SRAM bank"))
            self.counters = {k: ctx.get(getattr(self.bank.counters, k))
                             for k in ("refreshes", "stall_cycles", "violations")}


def run_bank(cfg, buffer, *, count=120, seed=1, halves=(0, 1)):
    """Random traffic on both ports of a bank; return (drivers, monitor)."""
    bank = BufferBank(config=cfg, buffer=buffer)
    rng, model = random.Random(seed), {}
    write = lane_write(buffer.row_bits(cfg))
    drivers = [
        PortDriver(bank.compute, random_requests(rng, cfg, buffer, count, halves=halves,
                                                 lanes=bank.lane_writes),
                   model, write=write, seed=seed + 1),
        PortDriver(bank.dma, random_requests(rng, cfg, buffer, count, halves=halves,
                                             lanes=False),
                   model, write=write, seed=seed + 2)]
    monitor = BankMonitor(bank)
    run(bank, drivers, monitor)
    return drivers, monitor


@pytest.mark.parametrize("buffer, policy", [
    (Buffer.ACT, "none"), (Buffer.ACT, "periodic"), (Buffer.ACT, "live"),
    (Buffer.ACT, "lifetime"), (Buffer.WGT, "none"), (Buffer.OUT, "live"), (Buffer.MST, "none"),
])
def test_bank_random_traffic_matches_the_model(buffer, policy):
    cfg = with_policy(buffer, policy)
    drivers, monitor = run_bank(cfg, buffer)
    for driver in drivers:
        assert driver.reads > 30 and driver.wrong == []
    assert monitor.collisions > 10 and monitor.errors == []
    counters = monitor.counters
    if policy == "none":
        assert counters == {"refreshes": 0, "stall_cycles": 0, "violations": 0}
    elif policy == "periodic":
        # Both halves' banks (2 x edram_banks) refresh once per interval from cycle 0.
        interval = periodic_interval(half_depth(cfg, buffer) // cfg.edram_banks,
                                     cfg.retention_cycles)
        assert counters["refreshes"] == 2 * cfg.edram_banks * math.ceil(monitor.edges / interval)
        assert counters["stall_cycles"] > 0
    elif policy == "live":
        assert counters["refreshes"] > 0
    else:
        assert counters["refreshes"] == 0


def test_same_half_collisions_stall_the_dma_and_lose_nothing():
    drivers, monitor = run_bank(config(), Buffer.ACT, count=80, seed=5, halves=(1,))
    assert monitor.collisions > 30 and monitor.errors == []
    for driver in drivers:
        assert driver.wrong == []


@pytest.mark.parametrize("policy", ["live", "lifetime"])
def test_decay_corrupts_the_rows_a_policy_lets_expire(policy):
    """The same traffic under both policies: each port writes six rows of its half, both
    wait 1.5 retention times, then read all twelve back."""
    cfg = with_policy(Buffer.ACT, policy, retention_cycles=40, decay_injection=True)
    bank = BufferBank(config=cfg, buffer=Buffer.ACT)
    rng, model = random.Random(9), {}
    bits = Buffer.ACT.row_bits(cfg)
    rows = [rng.sample(bank_rows(cfg, Buffer.ACT, (h,)), 6) for h in (0, 1)]
    wait = ("p", 3 * cfg.retention_cycles // 2)
    drivers = [PortDriver(port, [*(("w", a, rng.getrandbits(bits), None) for a in mine),
                                 wait, *(("r", a, 0) for a in mine + theirs)],
                          model, write=lane_write(bits), seed=seed)
               for port, mine, theirs, seed in ((bank.compute, rows[0], rows[1], 1),
                                                (bank.dma, rows[1], rows[0], 2))]
    monitor = BankMonitor(bank)
    run(bank, drivers, monitor)
    if policy == "live":
        assert all(d.wrong == [] for d in drivers)
        assert monitor.counters["violations"] == 0 and monitor.counters["refreshes"] > 0
    else:
        assert all(d.wrong_reads == set(range(1, 13)) for d in drivers)
        assert monitor.counters == {"refreshes": 0, "stall_cycles": 0, "violations": 24}


@pytest.mark.parametrize("policy", ["none", "live"])
def test_out_rows_move_their_values_and_load_with_mask_bits_zero(policy):
    """A store reads an OUT row's value lanes (not its ReLU mask bits); a load writes the
    values with mask bits 0."""
    cfg = with_policy(Buffer.OUT, policy)
    m = Module()
    m.submodules.bank = bank = BufferBank(config=cfg, buffer=Buffer.OUT)
    m.submodules.beats = beats = BeatPort(config=cfg, buffer=Buffer.OUT)
    wiring.connect(m, beats.bank, bank.dma)
    ratio, beat, values = beats.ratio, cfg.axi_data_bits, 16 * cfg.tm
    assert (ratio, bank.compute.w_data.shape().width) == (2, values + cfg.tm)
    rng = random.Random(4)
    rows = rng.sample(bank_rows(cfg, Buffer.OUT), 12)
    stored, loaded = rows[:6], rows[6:]
    out_rows = {a: rng.getrandbits(values + cfg.tm) | 1 << values for a in stored}
    beat_rows = {a * ratio + s: rng.getrandbits(beat) for a in loaded for s in range(ratio)}
    stores = {a * ratio + s: out_rows[a] >> beat * s & (1 << beat) - 1
              for a in stored for s in range(ratio)}
    loads = {a: sum(beat_rows[a * ratio + s] << beat * s for s in range(ratio))
             for a in loaded}
    assign = lane_write(values + cfg.tm)
    phases = [
        PortDriver(bank.compute, [("w", a, v, None) for a, v in out_rows.items()], {},
                   write=assign, seed=1),
        PortDriver(beats.beat, [("r", a, 0) for a in rng.sample(sorted(stores), len(stores))],
                   stores, write=None, seed=2),
        PortDriver(beats.beat, [("w", a, beat_rows[a], None)
                                for r in loaded for a in rng.sample(
                                    [r * ratio + s for s in range(ratio)], ratio)],
                   {}, write=assign, seed=3),
        PortDriver(bank.compute, [("r", a, 0) for a in loaded], loads, write=None, seed=4)]

    async def bench(ctx):
        for phase in phases:
            await phase.bench(ctx)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert phases[1].reads == 12 and phases[3].reads == 6
    assert phases[1].wrong == [] and phases[3].wrong == []


class BeatImage(dict):
    """A buffer's beat rows as the DMA sees them: the slots of a bank row take effect
    together, when the last one is written (``BeatPort``'s timing)."""

    def __init__(self, ratio):
        super().__init__()
        self.ratio, self.pending = ratio, {}

    def write(self, addr, data):
        row = self.pending.setdefault(addr // self.ratio, {})
        row[addr % self.ratio] = data
        if len(row) == self.ratio:
            for slot, value in self.pending.pop(addr // self.ratio).items():
                self[addr - addr % self.ratio + slot] = value


def beat_rows(cfg, buffer):
    """The beat addresses of ``buffer``'s window, in order."""
    ratio = beat_ratio(cfg, buffer)
    return [a * ratio + s for a in bank_rows(cfg, buffer) for s in range(ratio)]


def dma_side(cfg, requesters=2):
    """The four banks behind a ``DMACrossbar``: (module, crossbar, banks)."""
    m = Module()
    m.submodules.crossbar = crossbar = DMACrossbar(config=cfg, requesters=requesters)
    banks = {}
    for b in Buffer:
        m.submodules[b.port_name] = banks[b] = BufferBank(config=cfg, buffer=b)
        wiring.connect(m, getattr(crossbar, b.port_name), banks[b].dma)
    return m, crossbar, banks


def load_transfers(rng, cfg, count):
    """Writes of whole bank rows (their slots in random order), then a few reads, buffer
    by buffer (the reads make two requesters read one buffer in turn)."""
    out = []
    for _ in range(count):
        b = rng.choice(list(Buffer))
        ratio = beat_ratio(cfg, b)
        out.append(("b", b))
        for row in rng.sample(bank_rows(cfg, b), 3):
            out += [("w", row * ratio + s, rng.getrandbits(cfg.axi_data_bits), None)
                    for s in rng.sample(range(ratio), ratio)]
        out += [("r", a, 0) for a in rng.sample(beat_rows(cfg, b), 3)]
    return out


def store_transfers(rng, cfg, count):
    """Reads of random beat rows, buffer by buffer (the last of a row's slots with r_last)."""
    out = []
    for _ in range(count):
        b = rng.choice(list(Buffer))
        ratio = beat_ratio(cfg, b)
        out.append(("b", b))
        out += [("r", a, int(a % ratio == ratio - 1)) for a in rng.sample(beat_rows(cfg, b), 10)]
    return out


class CrossbarMonitor:
    """Count edges with two requesters on one buffer and on different buffers; check that
    one buffer accepts one request per edge, and in turn: of two contending requesters the
    one it did not serve last."""

    def __init__(self, crossbar):
        self.crossbar, self.contested, self.winners, self.parallel = crossbar, 0, set(), 0
        self.errors, self.served = [], {}

    async def bench(self, ctx):
        reqs, selects = self.crossbar.requester, self.crossbar.buffer
        while True:
            _, _, *seen = await ctx.tick().sample(
                *(x for r, b in zip(reqs, selects) for x in (r.r_en | r.w_en, b, r.ready)))
            (want0, buf0, ready0), (want1, buf1, ready1) = seen[:3], seen[3:]
            if want0 and want1 and buf0 == buf1:
                self.contested += 1
                if ready0 and ready1:
                    self.errors.append("two requesters accepted on one buffer")
                elif ready0 or ready1:
                    winner = 0 if ready0 else 1
                    if self.served.get(buf0) == winner:
                        self.errors.append(f"requester {winner} served twice in a row")
                    self.winners.add(winner)
            elif want0 and want1 and ready0 and ready1:
                self.parallel += 1
            for i, (want, buf, ready) in enumerate((seen[:3], seen[3:])):
                if want and ready:
                    self.served[buf] = i


@pytest.mark.parametrize("axi_data_bits", [32, 64])
def test_crossbar_routes_two_requesters_to_the_banks(axi_data_bits):
    """A load DMA writes and a store DMA reads random rows of random buffers, on the same
    buffer and on different ones; periodic and live refreshes stall them at random. (With
    64-bit beats ACT, OUT and MST rows are one beat.)"""
    cfg = config(input_depth=24, refresh=("periodic", "none", "live"),
                 axi_data_bits=axi_data_bits)
    m, crossbar, _ = dma_side(cfg)
    rng = random.Random(11)
    images = {b: BeatImage(beat_ratio(cfg, b)) for b in Buffer}
    drivers = [
        PortDriver(crossbar.requester[0], load_transfers(rng, cfg, 16), images,
                   write=lambda image, addr, data, lanes: image.write(addr, data),
                   select=crossbar.buffer[0], seed=1),
        PortDriver(crossbar.requester[1], store_transfers(rng, cfg, 16), images, write=None,
                   select=crossbar.buffer[1], seed=2)]
    monitor = CrossbarMonitor(crossbar)
    run(m, drivers, monitor)
    assert [d.reads for d in drivers] == [48, 160]
    assert drivers[0].wrong == [] and drivers[1].wrong == []
    assert monitor.errors == [] and monitor.winners == {0, 1}
    assert monitor.contested > 20 and monitor.parallel > 20
    assert all(not image.pending for image in images.values())


def test_crossbar_refuses_addresses_outside_the_window():
    """ACT has 12 rows a half (24 beats): beats 24..31 lie between the halves, 56.. beyond
    the upper half, 64.. would alias ACT rows if cut to ACT's 6 address bits. Each is
    accepted at once, changes nothing, reads 0 and sets the requester's window error."""
    cfg = config(input_depth=24)
    assert (beat_depth(cfg, Buffer.ACT), beat_addr_bits(cfg, Buffer.ACT)) == (56, 6)
    m, crossbar, banks = dma_side(cfg)
    port, rng = crossbar.requester[0], random.Random(3)
    valid = [0, 1, 22, 23, 32, 33, 54, 55]
    values = {a: rng.getrandbits(32) for a in valid}
    outside = [24, 31, 56, 63, 64, 64 + 1, 64 + 32, 255]
    seen = {}

    async def access(ctx, addr, *, data=None, at_once=False):
        ctx.set(port.addr, addr)
        ctx.set(port.w_data, data or 0)
        ctx.set(port.w_en if data is not None else port.r_en, 1)
        _, _, ready = await ctx.tick().sample(port.ready)
        while not ready:
            assert not at_once, f"address {addr} waited"
            _, _, ready = await ctx.tick().sample(port.ready)
        ctx.set(port.w_en, 0)
        ctx.set(port.r_en, 0)
        return ctx.get(port.r_data)

    async def bench(ctx):
        ctx.set(crossbar.buffer[0], Buffer.ACT)
        for a in valid:
            await access(ctx, a, data=values[a])
        errors = []
        for a in outside:
            await access(ctx, a, data=0xFFFF_FFFF, at_once=True)
            errors.append(ctx.get(crossbar.error.window))
            seen[a] = await access(ctx, a, at_once=True)
        seen["errors"] = errors
        seen["valid"] = {a: await access(ctx, a) for a in valid}
        ctx.set(crossbar.clear, 1)
        await ctx.tick()
        ctx.set(crossbar.clear, 0)
        seen["cleared"] = ctx.get(crossbar.error.as_value())
        seen["after"] = await access(ctx, 1)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["errors"] == [0b01] * len(outside)
    assert [seen[a] for a in outside] == [0] * len(outside)
    assert seen["valid"] == values
    assert seen["cleared"] == 0 and seen["after"] == values[1]


def test_crossbar_flags_interleaved_row_writes_until_cleared():
    """WGT rows are 8 beats: a write to another row before the first is complete."""
    m, crossbar, _ = dma_side(config())
    port, seen = crossbar.requester[0], []

    async def bench(ctx):
        ctx.set(crossbar.buffer[0], Buffer.WGT)
        for addr in (0, 8, 9):
            ctx.set(port.addr, addr)
            ctx.set(port.w_en, 1)
            await ctx.tick()
            seen.append(ctx.get(crossbar.error.rows))
        ctx.set(port.w_en, 0)
        ctx.set(crossbar.clear, 1)
        await ctx.tick()
        ctx.set(crossbar.clear, 0)
        seen.append(ctx.get(crossbar.error.as_value()))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [0, 1, 1, 0]


def test_bank_and_beat_geometry():
    """{half, row} and {half, row, slot}: with power-of-two halves the beat rows are
    contiguous (``depth * ratio``); the crossbar's port fits a ReshapeDMA of its
    ``buf_depth``."""
    cfg = config()
    assert [half_depth(cfg, b) for b in Buffer] == [16, 4, 16, 64]
    assert [bank_addr_bits(cfg, b) for b in Buffer] == [5, 3, 5, 7]
    assert [beat_ratio(cfg, b) for b in Buffer] == [2, 8, 2, 2]
    assert [beat_depth(cfg, b) for b in Buffer] == [b.depth(cfg) * beat_ratio(cfg, b)
                                                    for b in Buffer]
    bank = BufferBank(config=cfg, buffer=Buffer.ACT)
    assert bank.lane_writes and "w_lanes" not in bank.dma.signature.members
    assert not BufferBank(config=with_policy(Buffer.ACT, "live"), buffer=Buffer.ACT).lane_writes
    crossbar = DMACrossbar(config=cfg)
    assert crossbar.buf_depth == beat_depth(cfg, Buffer.MST) == 256
    dma = ReshapeDMA.from_config(cfg, buf_depth=crossbar.buf_depth)
    Fragment.get(dma, None)     # built in hw/dma: elaborate it, or it warns when collected
    assert dma.buf.signature == crossbar.requester[0].signature.flip()


@pytest.mark.parametrize("changes, buffer, message", [
    (dict(input_depth=33), Buffer.ACT,
     "input_depth 33 cannot be split into two ping-pong halves of >= 2 rows: set "
     "input_depth to an even number >= 4"),
    (dict(output_depth=2), Buffer.OUT, "output_depth 2 cannot be split"),
    (dict(weight_depth=1, update_lanes=16), Buffer.MST,
     r"the master buffer's 1 rows \(weight_depth 1 x 1 rows per block\) cannot be split .* "
     r"set weight_depth to an even number >= 4"),
    (dict(input_depth=24, edram_banks=8, refresh=("lifetime", "none", "none")), Buffer.ACT,
     r"input_depth 24: each ping-pong half of the eDRAM-style act buffer \(12 rows\) must be "
     r"a multiple of edram_banks 8: set input_depth to a multiple of 16 or lower edram_banks"),
])
def test_bank_refuses_depths_it_cannot_halve(changes, buffer, message):
    with pytest.raises(ConfigError, match=message):
        BufferBank(config=config(**changes), buffer=buffer)


@pytest.mark.parametrize("changes, buffer, message", [
    (dict(tm=2, tn=2, axi_data_bits=64), Buffer.ACT,
     r"act buffer rows move 32 bits \(tm 2\), less than one axi_data_bits 64 bus beat: choose "
     r"axi_data_bits <= 32 or a larger tm"),
    (dict(axi_data_bits=128), Buffer.MST, r"mst buffer rows move 64 bits \(update_lanes 1\)"),
    (dict(tm=6, tn=6, axi_data_bits=64), Buffer.OUT,
     r"out buffer rows move 96 bits \(tm 6\), 1.5 axi_data_bits 64 bus beats, not a power of two"),
    (dict(tm=12, tn=12, max_channels=12, axi_data_bits=64), Buffer.ACT,
     r"3 axi_data_bits 64 bus beats, not a power of two .*: choose a power-of-two tm"),
])
def test_beat_port_refuses_rows_that_are_not_whole_beats(changes, buffer, message):
    with pytest.raises(ConfigError, match=message):
        BeatPort(config=config(**changes), buffer=buffer)
    with pytest.raises(ConfigError, match="buffer rows move .* bus beat"):
        DMACrossbar(config=config(**changes))


def test_bank_parameters_are_checked():
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig, not 3"):
        BufferBank(config=3, buffer=Buffer.ACT)
    with pytest.raises(TypeError, match="buffer must be a Buffer, not 'act'"):
        BufferBank(config=config(), buffer="act")
    with pytest.raises(TypeError, match="requesters must be a positive integer, not 0"):
        DMACrossbar(config=config(), requesters=0)


def bank_verilog(buffer=Buffer.ACT, **changes):
    return verilog.convert(BufferBank(config=config(**changes), buffer=buffer),
                           name="bank", emit_src=False)


def test_refresh_policy_changes_the_generated_bank():
    assert (bank_verilog(refresh=("periodic", "none", "none")) !=
            bank_verilog(refresh=("none", "none", "none")))


@pytest.mark.parametrize("changes", [
    dict(refresh=("live", "none", "none")), dict(refresh=("lifetime", "none", "none")),
    dict(retention_cycles=80), dict(edram_banks=4), dict(decay_injection=True),
])
def test_every_edram_field_changes_the_generated_bank(changes):
    """Each field of an eDRAM-style ACT bank (periodic, 64 cycles, 2 banks, no decay)."""
    base = dict(refresh=("periodic", "none", "none"))
    assert bank_verilog(**base) != bank_verilog(**{**base, **changes})
