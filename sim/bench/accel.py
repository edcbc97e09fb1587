"""Benchmark: whole layers on the accelerator, DRAM to DRAM, every load and store included.

Each layer of a set runs in FP, BP and WU as the tiled, double-buffered program of
``firmware/tiling.py`` on the generated accelerator (cocotb, ``sim/tb/tb_accel_bench.py``),
from start to done, with every result checked against the golden model. Per layer and phase:
cycles (and the planner's prediction of them, ``firmware/planner.py``: ``model_error``), PE
utilization = useful MACs / (Tm x Tn x cycles) with loads and stores included, the
DMA queues' busy fraction (each DMA direction moving data: the bus in use), the cycles each
queue's head waited for a token, and the banks' refreshes. Per set and phase: the same
utilization over all its layers (total useful MACs / total cycles).

Sets
    ``compute``: VGG-like 3x3 layers with deep channels, ``COMPUTE_PIXELS`` output pixels
    per batch (batch 4 at 8x8, 16 at 4x4): compute-bound in every phase, i.e. neither DMA
    direction needs more than ``COMPUTE_BOUND`` of the array's ideal cycles on the bus
    (``dma_bound``; at batch 4 the 4x4 layer's WU would need exactly all of them: its
    64-bit gradients take as many beats as the array takes cycles).
    ``digits``: every distinct conv of digits-cnn and digits-revnet (the reversible blocks'
    F and G), batch 8: the WU of a channel tile needs its whole batch on chip.

Refresh: the convs of each net of ``REFRESH_NETS``, as a training step runs them (FP, BP
but the first conv's, whose dx nobody needs, and WU), run again on an accelerator built with
each policy of ``REFRESH_COMPARED`` for ``ACT`` and ``OUT``, under two schedules: the
default tiles and the lifetime schedule's (``tile_layer(..., lifetime=True)``: every COMPUTE
short enough that its data die before they expire; WU cut along the batch). The banks'
refresh and violation counters of those runs are the policy's figures on the accelerator's
own trace. The ``lifetime`` build (no refresh at all) has ``decay_injection`` on, so a row
read after its retention fails the golden check: on the lifetime schedule that must not
happen; on the default one it does (``wrong_layers``, recorded, not raised).
"""

import json
import tempfile
from pathlib import Path

from edgetrain.errors import ConfigError
from edgetrain.firmware.nets import NETS, Conv, RevBlock
from edgetrain.firmware.planner import predict
from edgetrain.firmware.tiling import layer_program, operands, tile_layer
from edgetrain.hw.accel.isa import Opcode
from edgetrain.hw.accel.top import Accelerator
from edgetrain.hw.dma.descriptor import Descriptor
from edgetrain.hw.engine.descriptor import LayerShape
from edgetrain.sim.reference.engine import useful_macs
from edgetrain.sim.tb.runner import SIM_ROOT, check_simulator, run_cocotb

__all__ = ["PHASES", "layer_sets", "bench_accel", "bus_beats", "dma_bound", "predicted_cycles",
           "phase_utilization"]

PHASES = ("fp", "bp", "wu")
#: The nets whose layers run once per refresh policy, and the (policy, schedule) pairs
#: compared; ``fewer_than_periodic`` is against ``periodic`` on the same schedule.
REFRESH_NETS = ("digits-revnet",)
#: ``lifetime`` on the default schedule is there to lose data: its violations and wrong
#: layers are what the lifetime schedule saves.
REFRESH_COMPARED = (("periodic", "default"), ("live", "default"), ("lifetime", "default"),
                    ("periodic", "lifetime"), ("live", "lifetime"), ("lifetime", "lifetime"))
#: Output pixels per batch of every compute-set layer (the batch is this / H / W): a WU
#: block then sums 256 products per lane while its 64-bit gradients take 64 bus beats.
COMPUTE_PIXELS = 256
#: The most either DMA direction of a compute-set layer may need of the bus, as a fraction
#: of the array's ideal cycles, in every phase (``dma_bound``): the set's definition.
COMPUTE_BOUND = 0.5
DIGITS_BATCH = 8


def _vgg(c, m, size):
    return (f"vgg-{c}x{m}-{size}x{size}",
            LayerShape(n=COMPUTE_PIXELS // size ** 2, c=c, h=size, w=size, m=m, k=3, pad=1))


_COMPUTE = (_vgg(64, 64, 8), _vgg(32, 64, 8), _vgg(64, 64, 4))


def _net_convs(net, batch):
    """``(name, LayerShape)`` of every conv of ``net`` (a reversible block's F and G)."""
    for s in net.shapes():
        c, h, w = s.in_shape
        if isinstance(s.layer, Conv):
            yield (f"{net.name} conv{s.index}",
                   LayerShape(n=batch, c=c, h=h, w=w, m=s.layer.out_channels, k=s.layer.kernel,
                              stride=s.layer.stride, pad=s.layer.pad))
        elif isinstance(s.layer, RevBlock):
            k = s.layer.kernel
            lay = LayerShape(n=batch, c=c // 2, h=h, w=w, m=c // 2, k=k, pad=k // 2)
            yield f"{net.name} rev{s.index}.F", lay
            yield f"{net.name} rev{s.index}.G", lay


def layer_sets():
    """Return ``{set: [(name, LayerShape)]}``; a digits layer's name lists every use."""
    uses = {}
    for net in ("digits-cnn", "digits-revnet"):
        for name, lay in _net_convs(NETS[net], DIGITS_BATCH):
            uses.setdefault(lay, []).append(name)
    digits = [(" = ".join(names) if len(names) < 3 else f"{names[0]} (+{len(names) - 1} "
               f"like it)", lay) for lay, names in uses.items()]
    return {"compute": list(_COMPUTE), "digits": digits}


def _training_convs(net, batch):
    """``(name, LayerShape, modes)`` of every conv of ``net`` as a training step runs it:
    FP, BP and WU, but no BP for the first one (the input needs no gradient)."""
    for i, (name, lay) in enumerate(_net_convs(net, batch)):
        yield name, lay, PHASES if i else ("fp", "wu")


def bus_beats(config, mode, layer, *, lifetime=None):
    """Return ``{"load": beats, "store": beats}``: the DRAM beats the tiled program of
    ``layer`` in ``mode`` moves in each direction (each beat takes the bus for a cycle)."""
    at = dict.fromkeys(operands(mode), 0)
    beats = {"load": 0, "store": 0}
    tiles = tile_layer(config, mode, layer, lifetime=lifetime)
    for insn in layer_program(config, mode, layer, at, tiles=tiles, finish=False):
        if insn.op in (Opcode.LOAD, Opcode.STORE):
            beats[insn.op.name.lower()] += Descriptor(**insn.body["dma"]).dram_beats
    return beats


def dma_bound(config, mode, layer, *, lifetime=None):
    """Return the busier DMA direction's beats over the engine's ideal cycles (useful MACs
    / (Tm x Tn)): how close to memory-bound ``layer`` is in ``mode`` (1.0: the bus needs as
    many cycles as the array)."""
    ideal = useful_macs(mode, layer) / (config.tm * config.tn)
    return max(bus_beats(config, mode, layer, lifetime=lifetime).values()) / ideal


def predicted_cycles(config, mode, layer, *, lifetime=None):
    """Return the planner's cycles (``firmware/planner.py``) of ``layer``'s tiled program."""
    at = {name: 0x100000 * (i + 1) for i, name in enumerate(operands(mode))}
    tiles = tile_layer(config, mode, layer, lifetime=lifetime)
    return predict(config, layer_program(config, mode, layer, at, tiles=tiles)).cycles


def phase_utilization(layers, config):
    """Total useful MACs / (Tm x Tn x total cycles) per phase over ``layers`` (figures)."""
    peak = config.tm * config.tn
    return {p: (sum(r["useful_macs"] for r in layers if r["mode"] == p) /
                (peak * sum(r["cycles"] for r in layers if r["mode"] == p)))
            for p in PHASES if any(r["mode"] == p for r in layers)}


def _figures(r, config):
    """The derived figures of one run: utilization, DMA busy and waits as fractions."""
    cycles = r["cycles"]
    q = r["queues"]
    return {"utilization": r["useful_macs"] / (config.tm * config.tn * cycles),
            "model_error": r["predicted"] / cycles - 1 if "predicted" in r else None,
            "dma_busy": {d: q[d]["busy"] / cycles for d in ("load", "store")},
            "compute_busy": q["compute"]["busy"] / cycles,
            "wait": {name: v["wait"] / cycles for name, v in q.items()},
            "refreshes": sum(b["refreshes"] for b in r["banks"].values())}


def _entries(chosen, config, *, lifetime=None):
    """The testbench's entries: ``chosen`` = {set: [(name, layer) or (name, layer, modes)]}
    (every phase unless ``modes`` says), tiled with ``lifetime`` (``tile_layer``)."""
    entries = []
    for set_name, layers in chosen.items():
        for name, lay, *modes in layers:
            for mode in (modes[0] if modes else PHASES):
                try:
                    tile_layer(config, mode, lay, lifetime=lifetime)
                except ConfigError as e:
                    raise ConfigError(f"{set_name} layer {name} ({mode}): {e}") from None
                entries.append({"set": set_name, "name": name, "mode": mode,
                                "layer": vars(lay), "lifetime": lifetime,
                                "dma_bound": dma_bound(config, mode, lay,
                                                       lifetime=lifetime),
                                "predicted": predicted_cycles(config, mode, lay,
                                                              lifetime=lifetime)})
    return entries


def _runs(simulator, config, entries, build, *, sample, seed, exact=True):
    """Run ``entries`` on the accelerator of ``config``; return the testbench's records
    (a mismatch raises ``AssertionError`` if ``exact``, else is only recorded)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "runs.json"
        params = {"config": config.to_dict(), "seed": seed, "layers": entries,
                  "sample": sample, "out": str(out), "exact": exact}
        run_cocotb(component=Accelerator(config=config), toplevel="accelerator",
                   test_module="edgetrain.sim.tb.tb_accel_bench", simulator=simulator,
                   build_dir=build, params=params)
        runs = json.loads(out.read_text())
    for r in runs:
        r.update(_figures(r, config))
    return runs


def _build_dir(build_dir, simulator, config, tag):
    if build_dir:
        return Path(build_dir) / tag
    return SIM_ROOT / "accel" / f"bench-{simulator}-{config.tm}x{config.tn}-{tag}"


def bench_accel(*, simulator, config, build_dir=None, sets=None, sample=512, seed=1,
                refresh=REFRESH_NETS, policies=REFRESH_COMPARED):
    """Run every layer of ``sets`` (default: all of ``layer_sets``) in FP, BP and WU, then
    the layers of each net in ``refresh`` once per policy in ``policies`` (the ``ACT`` and
    ``OUT`` buffers' ``refresh``; a build each).

    Returns the JSON document: ``sets`` = {set: {``utilization``: {fp, bp, wu}, ``layers``:
    [...]}}, ``refresh`` = {net: {"policy, schedule": {``refreshes``, ``violations``,
    ``stall_cycles``, ``cycles``, ``fewer_than_periodic``, ...}}} and ``config``. Raises
    ``ConfigError`` if a layer cannot be tiled for ``config``, ``AssertionError`` if a
    result mismatches the golden model (but in the runs made to lose data).
    """
    check_simulator(simulator)
    chosen = layer_sets()
    if sets:
        unknown = sorted(set(sets) - set(chosen))
        if unknown:
            raise ConfigError(f"unknown layer set {', '.join(unknown)}; choose from "
                              f"{', '.join(chosen)}")
        chosen = {name: chosen[name] for name in sets}
    main = "-".join(dict.fromkeys(config.refresh))
    runs = _runs(simulator, config, _entries(chosen, config),
                 _build_dir(build_dir, simulator, config, main), sample=sample, seed=seed)
    doc = {"simulator": simulator, "array": [config.tm, config.tn], "config": config.to_dict(),
           "sets": {}, "refresh": {}}
    for set_name in chosen:
        layers = [r for r in runs if r["set"] == set_name]
        doc["sets"][set_name] = {"utilization": phase_utilization(layers, config),
                                 "layers": layers}
    for net in refresh:
        doc["refresh"][net] = _refresh_runs(simulator, config, net, policies, build_dir,
                                            sample=sample, seed=seed)
    return doc


def _refresh_runs(simulator, config, net, policies, build_dir, *, sample, seed):
    """``{"policy, schedule": figures}`` of ``net``'s training convs (``REFRESH_COMPARED``)."""
    convs = {net: list(_training_convs(NETS[net], DIGITS_BATCH))}
    out = {}
    for policy, schedule in policies:
        cfg = config.replace(refresh=(policy, config.refresh[1], policy),
                             decay_injection=config.decay_injection or policy == "lifetime")
        tag = "-".join(dict.fromkeys(cfg.refresh)) + ("-decay" if cfg.decay_injection else "")
        expect_loss = policy == "lifetime" and schedule != "lifetime"
        runs = _runs(simulator, cfg, _entries(convs, cfg, lifetime=schedule == "lifetime"),
                     _build_dir(build_dir, simulator, cfg, tag), sample=sample, seed=seed,
                     exact=not expect_loss)
        out[f"{policy}, {schedule}"] = {
            "policy": policy, "schedule": schedule,
            **{k: sum(r["banks"][b][k] for r in runs for b in ("act", "out"))
               for k in ("refreshes", "violations", "stall_cycles")},
            "cycles": sum(r["cycles"] for r in runs), "runs": len(runs),
            "predicted": sum(r["predicted"] for r in runs),
            "tiles": sum(r["tiles"] for r in runs),
            "wrong_layers": sum(bool(r["mismatches"]) for r in runs),
            "utilization": phase_utilization(runs, config)}
    for fig in out.values():
        base = out.get(f"periodic, {fig['schedule']}", {}).get("refreshes")
        fig["fewer_than_periodic"] = 1 - fig["refreshes"] / base if base else None
    return out
