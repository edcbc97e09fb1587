"""Bus figures of DMA tile transfers, tile-contiguous vs naive layout, from a cycle model.

Bursts are exact: the DRAM runs of each tile (``layout.runs``) cut by ``layout.split_bursts``,
the rule ``ReshapeDMA`` implements (the testbench checks the RTL's bursts against it).
Cycles come from a model of the RTL + cocotbext-axi ``AxiRam`` measured in the testbench with
no random pauses (``tests/test_dma_model.py`` re-checks it on every run):

* a transfer takes ``beats + 2`` bus cycles from its first address handshake to its last data
  beat (reads keep several bursts outstanding, so bursts cost nothing more on ``AxiRam``);
* a DRAM with a per-burst cost of ``gap`` idle data cycles (emulated in the testbench by
  pausing ``AxiRam``'s data channels after each burst) adds ``gap`` per burst after the first.

``busy_fraction`` is data beats / bus cycles. Layer sets: ``digits-cnn`` (from
``firmware.nets``) and ``VGG_LIKE`` below, batch 1.
"""

from dataclasses import dataclass

from edgetrain.firmware.nets import FC, Conv, get_net
from edgetrain.hw.dma.layout import ActivationLayout, Segment, WeightLayout, runs, split_bursts

__all__ = ["VGG_LIKE", "ConvShape", "layer_set", "transfer_cycles", "tensor_transfers",
           "set_figures", "layer_descriptors", "descriptor_figures"]


@dataclass(frozen=True)
class ConvShape:
    """One convolution: ``c`` -> ``m`` channels on an ``h`` x ``w`` input, ``k`` x ``k``."""
    name: str
    c: int
    m: int
    h: int
    w: int
    k: int
    pad: int


# The conv layers of a small VGG on 32x32 inputs (the one VGG-like set of the project).
VGG_LIKE = (
    ConvShape("conv1_1", 3, 64, 32, 32, 3, 1),
    ConvShape("conv1_2", 64, 64, 32, 32, 3, 1),
    ConvShape("conv2_1", 64, 128, 16, 16, 3, 1),
    ConvShape("conv2_2", 128, 128, 16, 16, 3, 1),
    ConvShape("conv3_1", 128, 256, 8, 8, 3, 1),
    ConvShape("conv3_2", 256, 256, 8, 8, 3, 1),
)


def layer_set(name):
    """Return the ``ConvShape`` tuple of ``"vgg-like"`` or a net of ``firmware.nets``."""
    if name == "vgg-like":
        return VGG_LIKE
    out = []
    for ls in get_net(name).shapes():
        c, h, w = ls.in_shape
        if isinstance(ls.layer, Conv):
            out.append(ConvShape(f"L{ls.index}", c, ls.layer.out_channels, h, w,
                                 ls.layer.kernel, ls.layer.pad))
        elif isinstance(ls.layer, FC):
            out.append(ConvShape(f"L{ls.index}-fc", c, ls.layer.out_features, h, w, h, 0))
    return tuple(out)


def transfer_cycles(beats, bursts, gap=0):
    """Bus cycles of one tile transfer (first address handshake to last data beat)."""
    return beats + 2 + max(bursts - 1, 0) * gap


def _tile_bursts(addresses, bus_bytes, max_beats):
    out = []
    for seg in runs(addresses):
        out += split_bursts(seg, bus_bytes=bus_bytes, max_beats=max_beats)
    return out


def _out_size(layer):
    return ((layer.h + 2 * layer.pad - layer.k) + 1, (layer.w + 2 * layer.pad - layer.k) + 1)


def tensor_transfers(layer, *, form, cfg, tile_side=8):
    """Yield ``(tensor, direction, [burst lists per tile], useful_bytes)`` of one layer.

    Tensors: input ``x`` and output gradient ``dy`` loads, ``y`` and ``dx`` stores, weights
    ``w`` (load) and ``dw`` (store). Tiles: ``tn``/``tm`` channels x ``tile_side`` square.
    """
    lanes = cfg.axi_data_bits // 16
    bus = cfg.axi_data_bits // 8
    oh, ow = _out_size(layer)
    acts = {"x": (layer.c, layer.h, layer.w, cfg.tn, "load"),
            "dx": (layer.c, layer.h, layer.w, cfg.tn, "store"),
            "y": (layer.m, oh, ow, cfg.tm, "store"),
            "dy": (layer.m, oh, ow, cfg.tm, "load")}
    for name, (ch, h, w, tc, direction) in acts.items():
        tile = (tc, min(tile_side, h), min(tile_side, w))
        lay = ActivationLayout(shape=(1, ch, h, w), tile=tile, form=form, lanes=lanes)
        tiles = [_tile_bursts(lay.region_addresses(*t), bus, cfg.max_burst_beats)
                 for t in lay.tiles()]
        yield name, direction, tiles, ch * h * w * 2
    for name, direction in (("w", "load"), ("dw", "store")):
        lay = WeightLayout(shape=(layer.m, layer.c, layer.k, layer.k), tile=(cfg.tm, cfg.tn),
                           form=form, lanes=lanes)
        tiles = [_tile_bursts(lay.region_addresses(*b), bus, cfg.max_burst_beats)
                 for b in lay.tiles()]
        yield name, direction, tiles, layer.m * layer.c * layer.k ** 2 * 2


def set_figures(layers, *, cfg, gap=0, tile_side=8):
    """Return per-tensor rows and per-form totals of one layer set."""
    rows, totals = [], {}
    for form in ("tiled", "naive"):
        t = {"bursts": 0, "beats": 0, "bus_cycles": 0, "bytes": 0, "tiles": 0}
        for layer in layers:
            for name, direction, tiles, useful in tensor_transfers(layer, form=form, cfg=cfg,
                                                                   tile_side=tile_side):
                bursts = sum(len(b) for b in tiles)
                beats = sum(n for b in tiles for _, n in b)
                cycles = sum(transfer_cycles(sum(n for _, n in b), len(b), gap) for b in tiles)
                rows.append({"set_layer": layer.name, "tensor": name, "dir": direction,
                             "form": form, "tiles": len(tiles), "bursts": bursts,
                             "beats": beats, "bytes": useful, "bus_cycles": cycles})
                for key, v in (("bursts", bursts), ("beats", beats), ("bus_cycles", cycles),
                               ("bytes", useful), ("tiles", len(tiles))):
                    t[key] += v
        t["busy_fraction"] = t["beats"] / t["bus_cycles"] if t["bus_cycles"] else 0.0
        totals[form] = t
    totals["burst_ratio"] = totals["naive"]["bursts"] / max(totals["tiled"]["bursts"], 1)
    return rows, totals


def layer_descriptors(layer, *, form, cfg, tile_side=8, limit=8):
    """Return ``[(tensor, Descriptor)]``: the first ``limit`` tiles of each tensor of
    ``layer`` as ``ReshapeDMA`` descriptors (naive tiles as raw transfers), for the RTL."""
    from edgetrain.hw.dma import program as prog
    bus = cfg.axi_data_bits // 8
    lanes = bus // 2
    oh, ow = _out_size(layer)
    out, base = [], 0
    acts = (("x", layer.c, layer.h, layer.w, cfg.tn, False),
            ("dx", layer.c, layer.h, layer.w, cfg.tn, True),
            ("y", layer.m, oh, ow, cfg.tm, True), ("dy", layer.m, oh, ow, cfg.tm, False))
    for name, ch, h, w, tc, store in acts:
        lay = ActivationLayout(shape=(1, ch, h, w), tile=(tc, min(tile_side, h),
                                                          min(tile_side, w)),
                               form=form, lanes=lanes, base=base)
        move = prog.activation_store if store else prog.activation_load
        out += [(name, _tile_descriptor(prog, move, lay, t, form, store, bus))
                for t in list(lay.tiles())[:limit]]
        base += lay.size_bytes
    for name, store in (("w", False), ("dw", True)):
        lay = WeightLayout(shape=(layer.m, layer.c, layer.k, layer.k), tile=(cfg.tm, cfg.tn),
                           form=form, lanes=lanes, base=base)
        move = prog.weight_store if store else prog.weight_load
        out += [(name, _tile_descriptor(prog, move, lay, b, form, store, bus))
                for b in list(lay.tiles())[:limit]]
    return out


def _tile_descriptor(prog, move, lay, tile, form, store, bus):
    """The descriptor moving ``tile`` of ``lay``: ``move`` in the tiled form, a raw transfer
    of the tile's address runs in the naive form."""
    if form == "naive":
        return prog.raw_transfer(lay.region_addresses(*tile), store=store, bus_bytes=bus)
    return move(lay, tile, bus_bytes=bus)


def descriptor_figures(descs, *, bus_bytes, max_beats, gap=0):
    """Return model ``{bursts, beats, bus_cycles}`` of ``[(tensor, Descriptor)]``."""
    t = {"bursts": 0, "beats": 0, "bus_cycles": 0}
    for _, d in descs:
        bursts = [b for a, n in d.segments(bus_bytes)
                  for b in split_bursts(Segment(a, n), bus_bytes=bus_bytes, max_beats=max_beats)]
        beats = sum(n for _, n in bursts)
        t["bursts"] += len(bursts)
        t["beats"] += beats
        t["bus_cycles"] += transfer_cycles(beats, len(bursts), gap)
    return t
