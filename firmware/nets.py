"""Networks in one declarative form: a ``Net`` is an input shape and a chain of layers.

The golden model trains a ``Net`` directly; the firmware compiles the same object into a
descriptor program; the benchmarks read its shapes. Shapes are per sample, ``(C, H, W)``.

Layers
    ``Conv(out_channels, kernel, stride=1, pad=0)`` (no bias), ``ReLU()``, ``MaxPool()``
    (2x2, stride 2), ``FC(out_features)`` (a conv whose kernel covers its input; flattens),
    ``RevBlock(kernel=3)``: an additive-coupling reversible block over the channel halves,
    ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``, with ``F = G = ReLU(Conv(C/2 -> C/2, kernel,
    pad=kernel//2))``; the channel count must be even and is kept.
"""

from dataclasses import dataclass

from edgetrain.errors import ConfigError

__all__ = ["Conv", "ReLU", "MaxPool", "FC", "RevBlock", "Net", "LayerShape", "NETS", "get_net"]


def _positive(what, name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{what}: {name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class Conv:
    out_channels: int
    kernel: int
    stride: int = 1
    pad: int = 0

    def out_shape(self, shape):
        c, h, w = shape
        for name in ("out_channels", "kernel", "stride"):
            _positive("Conv", name, getattr(self, name))
        if not isinstance(self.pad, int) or self.pad < 0:
            raise ConfigError(f"Conv: pad must be a non-negative integer, not {self.pad!r}")
        if self.kernel > h + 2 * self.pad or self.kernel > w + 2 * self.pad:
            raise ConfigError(f"Conv: kernel {self.kernel} is larger than the padded input "
                              f"{h + 2 * self.pad}x{w + 2 * self.pad}; lower kernel or add "
                              f"padding")
        return (self.out_channels, (h + 2 * self.pad - self.kernel) // self.stride + 1,
                (w + 2 * self.pad - self.kernel) // self.stride + 1)


@dataclass(frozen=True)
class ReLU:
    def out_shape(self, shape):
        return shape


@dataclass(frozen=True)
class MaxPool:
    def out_shape(self, shape):
        c, h, w = shape
        if h % 2 or w % 2:
            raise ConfigError(f"MaxPool: input {h}x{w} must have even sides for 2x2 pooling")
        return (c, h // 2, w // 2)


@dataclass(frozen=True)
class FC:
    out_features: int

    def out_shape(self, shape):
        _positive("FC", "out_features", self.out_features)
        return (self.out_features, 1, 1)


@dataclass(frozen=True)
class RevBlock:
    kernel: int = 3

    def out_shape(self, shape):
        c, h, w = shape
        _positive("RevBlock", "kernel", self.kernel)
        if c % 2:
            raise ConfigError(f"RevBlock: needs an even channel count to split, not {c}")
        if self.kernel % 2 == 0:
            raise ConfigError(f"RevBlock: kernel must be odd to keep the shape, not "
                              f"{self.kernel}")
        return shape


@dataclass(frozen=True)
class LayerShape:
    """One layer of a net with its per-sample input and output shapes."""
    index: int
    layer: object
    in_shape: tuple
    out_shape: tuple


@dataclass(frozen=True)
class Net:
    name: str
    input_shape: tuple
    layers: tuple
    classes: int = 10

    def __post_init__(self):
        self.shapes()  # validate the chain at construction

    def shapes(self):
        """Return a ``LayerShape`` per layer; raise ``ConfigError`` if shapes do not chain."""
        shape = tuple(self.input_shape)
        if len(shape) != 3:
            raise ConfigError(f"net {self.name!r}: input_shape must be (C, H, W), not "
                              f"{self.input_shape!r}")
        for i, v in enumerate(shape):
            _positive(f"net {self.name!r}", "input_shape", v)
        out = []
        for i, layer in enumerate(self.layers):
            try:
                nxt = layer.out_shape(shape)
            except ConfigError as e:
                raise ConfigError(f"net {self.name!r} layer {i}: {e}") from None
            out.append(LayerShape(i, layer, shape, nxt))
            shape = nxt
        if shape != (self.classes, 1, 1):
            raise ConfigError(f"net {self.name!r}: output shape {shape} does not match "
                              f"{self.classes} classes; end with FC({self.classes})")
        return out


NETS = {
    "digits-cnn": Net("digits-cnn", (1, 8, 8), (
        Conv(16, 3, pad=1), ReLU(),
        Conv(16, 3, pad=1), ReLU(),
        Conv(16, 3, pad=1), ReLU(),
        Conv(16, 3, pad=1), ReLU(),
        MaxPool(), FC(10))),
    "digits-revnet": Net("digits-revnet", (1, 8, 8), (
        Conv(16, 3, pad=1), ReLU(),
        RevBlock(3), RevBlock(3), RevBlock(3),
        MaxPool(), FC(10))),
}


def get_net(name):
    """Return the named net, or raise ``ConfigError`` listing the known ones."""
    try:
        return NETS[name]
    except KeyError:
        raise ConfigError(f"unknown net {name!r}; choose from {', '.join(NETS)}") from None
