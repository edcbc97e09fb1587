"""cocotb testbench of ``ConvEngineTile``: random FP/BP/WU layers, compared bit for bit.

Parameters (``EDGETRAIN_PARAMS``): ``config`` (``AcceleratorConfig`` fields), ``modes``,
``shapes`` (random layers per mode), ``seed``, optional ``limits`` (``random_layer``
keywords), ``layers`` (explicit ``[mode, {n, c, h, w, m, k, stride, pad}]`` list instead of
random ones), ``backpressure`` (randomly withhold ``grad.ready``; host accesses wait for
``ready``, so buffers that stall work too), ``results`` (JSON path for
per-run results) and ``progress`` (a file that gets one line per finished run).

Every run fills the buffers through the host ports (the output region with junk first, so a
row the engine fails to write is a mismatch), writes one descriptor, waits for ``busy`` to
fall and compares every output element (padding lanes must be zero), the ReLU mask, the
saturation count, amax, every WU block and the useful-MAC counter with ``engine_ref``.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from edgetrain.hw.buffers import Buffer
from edgetrain.hw.config import AcceleratorConfig
from edgetrain.hw.engine.conv import CounterLayout, GradLayout
from edgetrain.hw.engine.descriptor import LayerShape, descriptor_fields, pack_descriptor
from edgetrain.sim.reference import engine as ref


class EngineHost:
    """Drive a ``ConvEngineTile``: buffer fills and reads, descriptors, grad collection."""

    def __init__(self, dut, cfg, *, rng, backpressure=False):
        self.dut, self.cfg, self.rng, self.backpressure = dut, cfg, rng, backpressure

    async def reset(self):
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        dut.desc__valid.value = 0
        dut.grad__ready.value = 1
        for buffer in Buffer:
            for sig in ("r_en", "w_en", "r_last", "addr", "w_data"):
                self._port(buffer, sig).value = 0
            lanes = self._port(buffer, "w_lanes")
            lanes.value = (1 << len(lanes)) - 1         # whole-row writes
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await FallingEdge(dut.clk)

    def _port(self, buffer, sig):
        return getattr(self.dut, f"host_{buffer.port_name}__{sig}")

    async def _accepted(self, buffer):
        """Wait until the request now presented on ``buffer``'s host port is accepted."""
        while not int(self._port(buffer, "ready").value):
            await FallingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)

    async def write_rows(self, buffer, rows, base=0):
        """Write the integer ``rows`` of ``Buffer`` ``buffer`` from row ``base`` on."""
        self._port(buffer, "w_en").value = 1
        for a, v in enumerate(rows):
            self._port(buffer, "addr").value = base + a
            self._port(buffer, "w_data").value = int(v)
            await self._accepted(buffer)
        self._port(buffer, "w_en").value = 0

    async def read_rows(self, buffer, count, base=0):
        """Return ``count`` integer rows of ``Buffer`` ``buffer`` from row ``base`` on."""
        out = []
        self._port(buffer, "r_en").value = 1
        for a in range(count):
            self._port(buffer, "addr").value = base + a
            await self._accepted(buffer)
            out.append(int(self._port(buffer, "r_data").value))
        self._port(buffer, "r_en").value = 0
        return out

    async def run(self, fields):
        """Write one descriptor, collect grad beats until ``busy`` falls; return them."""
        dut, layout = self.dut, GradLayout(self.cfg)
        dut.desc__payload.value = pack_descriptor(self.cfg, fields)
        dut.desc__valid.value = 1
        assert int(dut.desc__ready.value) == 1, "engine not idle"
        await FallingEdge(dut.clk)
        dut.desc__valid.value = 0
        beats, cycles, limit = [], 0, 20000 + 40 * self._bound(fields)
        while int(dut.busy.value):
            ready = 1 if not self.backpressure else int(self.rng.random() < 0.7)
            dut.grad__ready.value = ready
            if ready and int(dut.grad__valid.value):
                beat = layout.from_bits(int(dut.grad__payload.value))
                beats.append((beat.addr, [beat.acc[q] for q in range(len(beat.acc))]))
            await FallingEdge(dut.clk)
            cycles += 1
            assert cycles < limit, f"engine still busy after {cycles} cycles"
        dut.grad__ready.value = 1
        return beats

    @staticmethod
    def _bound(f):
        return (f["batch"] * f["out_tiles"] * f["red_tiles"] * f["out_h"] * f["out_w"] *
                f["kernel"] ** 2)

    def counters(self):
        lay = CounterLayout(self.cfg)
        view = lay.from_bits(int(self.dut.counters.value))
        return {name: view[name] for name, _ in lay}


async def run_case(host, case):
    """Run ``case`` on the engine; return a result dict (``ok``, ``error``, counters)."""
    cfg, t, lay = host.cfg, host.cfg.tm, case.layer
    if case.mode == "fp":
        await host.write_rows(Buffer.ACT, ref.pack_rows(case.x, t))
        await host.write_rows(Buffer.WGT, ref.pack_weight_rows(case.w, t))
    elif case.mode == "bp":
        await host.write_rows(Buffer.ACT, ref.pack_rows(case.dy, t))
        await host.write_rows(Buffer.WGT, ref.pack_weight_rows(case.w, t))
    else:
        await host.write_rows(Buffer.ACT, ref.pack_rows(case.x, t))
        await host.write_rows(Buffer.OUT, ref.pack_rows(case.dy, t))
    if case.mode == "update":
        await host.write_rows(Buffer.MST, _master_image(host, case))
    out_shape = ((lay.n, lay.m, lay.out_h, lay.out_w) if case.mode == "fp"
                 else (lay.n, lay.c, lay.h, lay.w))
    n_out = out_shape[0] * -(-out_shape[1] // t) * out_shape[2] * out_shape[3]
    if case.mode in ("fp", "bp"):
        junk = [int(host.rng.integers(0, 1 << min(62, Buffer.OUT.row_bits(cfg))))
                for _ in range(n_out)]
        await host.write_rows(Buffer.OUT, junk)
    fields = descriptor_fields(cfg, case.mode, lay, shift=case.shift,
                               stochastic=case.rounding == "stochastic", key=case.key,
                               relu=case.relu, **case.sgd)
    beats = await host.run(fields)
    cnt = host.counters()
    want = ref.expected(case)
    errors = []
    if cnt["macs"] != ref.useful_macs(case.mode, lay):
        errors.append(f"useful MACs {cnt['macs']} != {ref.useful_macs(case.mode, lay)}")
    if case.mode == "wu":
        errors += _check_grads(beats, ref.grad_blocks(want["acc"], t))
    elif case.mode == "update":
        errors += await _check_update(host, case, beats, cnt, want)
    else:
        rows = await host.read_rows(Buffer.OUT, n_out)
        errors += _check_outputs(rows, out_shape, t, want)
        if cnt["saturations"] != want["saturations"]:
            errors.append(f"saturations {cnt['saturations']} != {want['saturations']}")
        if cnt["amax"] != want["amax"]:
            errors.append(f"amax {cnt['amax']} != {want['amax']}")
    return {"mode": case.mode, "layer": vars(lay), "rounding": case.rounding,
            "relu": case.relu, "shift": case.shift, "ok": not errors,
            "error": "; ".join(errors[:3]), **{k: cnt[k] for k in
                                               ("busy_cycles", "macs", "stall_cycles",
                                                "saturations")}}


def _check_outputs(rows, shape, t, want):
    data, mask = ref.unpack_rows(rows, shape, t)
    c = shape[1]
    errors = []
    for name, got, exp in (("data", data, want["data"]), ("mask", mask, want["mask"])):
        bad = np.argwhere(got[:, :c] != exp)
        if len(bad):
            i = tuple(bad[0])
            errors.append(f"{len(bad)} {name} mismatches, first at {i}: "
                          f"{got[:, :c][i]} != {exp[i]}")
        if np.any(got[:, c:]):
            errors.append(f"{name} padding lanes are not zero")
    return errors


def _master_image(host, case):
    """The master rows before an UPDATE run: masters and velocities, or (without an SGD
    unit) junk, so that a row the engine fails to write is a mismatch."""
    t, lanes = host.cfg.tm, host.cfg.update_lanes
    if lanes:
        return ref.pack_master_rows(case.master, case.velocity, t, lanes)
    rows = len(ref.pack_master_rows(case.master, case.velocity, t, t))
    return [int.from_bytes(host.rng.bytes(Buffer.MST.row_bits(host.cfg) // 8), "little")
            for _ in range(rows)]


def _mismatches(name, got, exp, lay):
    """Compare the logical part of a padded ``[M, C, K, K]`` tensor; padding must be 0."""
    errors = []
    bad = np.argwhere(got[:lay.m, :lay.c] != exp)
    if len(bad):
        i = tuple(bad[0])
        errors.append(f"{len(bad)} {name} mismatches, first at {i}: "
                      f"{got[:lay.m, :lay.c][i]} != {exp[i]}")
    if np.any(got[lay.m:]) or np.any(got[:, lay.c:]):
        errors.append(f"{name} padding lanes are not zero")
    return errors


async def _check_update(host, case, beats, cnt, want):
    t, lay, lanes = host.cfg.tm, case.layer, host.cfg.update_lanes
    shape = (lay.m, lay.c, lay.k, lay.k)
    rows = await host.read_rows(Buffer.MST, len(_master_image(host, case)))
    errors = [f"{len(beats)} grad beats left the engine in UPDATE mode"] if beats else []
    if lanes == 0:
        # No SGD unit: the buffer holds the exact batch-summed WU accumulators.
        errors += _mismatches("accumulator", ref.unpack_gradient_rows(rows, shape, t),
                              want["acc"], lay)
        sat = 0
    else:
        got = ref.unpack_master_rows(rows, shape, t, lanes)
        for name, g in zip(("master", "velocity"), got):
            errors += _mismatches(name, g, want[name], lay)
        sat = want["saturations"]
    if cnt["saturations"] != sat:
        errors.append(f"saturations {cnt['saturations']} != {sat}")
    return errors


def _check_grads(beats, blocks):
    got = {}
    for addr, lanes in beats:
        if addr in got:
            return [f"weight block {addr} emitted twice"]
        got[addr] = lanes
    if set(got) != set(blocks):
        return [f"blocks emitted {sorted(got)[:8]}... != expected {len(blocks)} blocks"]
    bad = [a for a in blocks if got[a] != blocks[a]]
    if bad:
        a = bad[0]
        q = next(q for q in range(len(blocks[a])) if got[a][q] != blocks[a][q])
        return [f"{len(bad)} blocks differ, first {a} lane {q}: {got[a][q]} != {blocks[a][q]}"]
    return []


def _cases(params, cfg):
    if params.get("layers"):
        rng = np.random.default_rng(params.get("seed", 0))
        for mode, shape in params["layers"]:
            yield ref.random_case(rng, cfg, mode, layer=LayerShape(**shape))
        return
    for mode in params.get("modes", ("fp", "bp", "wu", "update")):
        for k in range(params.get("shapes", 4)):
            rng = np.random.default_rng([params.get("seed", 0), ref.MODES_SEED[mode], k])
            yield ref.random_case(rng, cfg, mode, **params.get("limits", {}))


@cocotb.test()
async def engine_matches_golden_model(dut):
    params = json.loads(os.environ.get("EDGETRAIN_PARAMS", "{}"))
    cfg = AcceleratorConfig(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in params["config"].items()})
    host = EngineHost(dut, cfg, rng=np.random.default_rng(params.get("seed", 0)),
                      backpressure=params.get("backpressure", False))
    await host.reset()
    results = []
    for case in _cases(params, cfg):
        res = await run_case(host, case)
        results.append(res)
        if params.get("progress"):
            with open(params["progress"], "a") as f:
                f.write(json.dumps({"mode": res["mode"], "ok": res["ok"]}) + "\n")
    if params.get("results"):
        with open(params["results"], "w") as f:
            json.dump(results, f, indent=1)
    failed = [r for r in results if not r["ok"]]
    assert not failed, (f"{len(failed)}/{len(results)} runs mismatched; first: "
                        f"{failed[0]['mode']} {failed[0]['layer']}: {failed[0]['error']}")
