"""Read a net from a TOML file in the declarative form of ``firmware.nets``.

::

    name = "my-net"
    input_shape = [1, 8, 8]
    classes = 10
    [[layers]]
    type = "Conv"          # Conv, ReLU, MaxPool, FC or RevBlock
    out_channels = 8
    kernel = 3
    pad = 1

Each ``[[layers]]`` table names the layer type and its fields. Every problem (a missing file,
an unknown type or field, a bad size, shapes that do not chain) raises ``ConfigError``.
"""

from edgetrain.errors import ConfigError
from edgetrain.tomlfile import read_toml
from . import nets

__all__ = ["load_net_file", "LAYER_TYPES"]

LAYER_TYPES = {cls.__name__: cls for cls in (nets.Conv, nets.ReLU, nets.MaxPool, nets.FC,
                                             nets.RevBlock)}


def _layer(i, table):
    table = dict(table)
    kind = table.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ConfigError(f"layer {i}: unknown type {kind!r}; choose from "
                          f"{', '.join(LAYER_TYPES)}")
    try:
        return LAYER_TYPES[kind](**table)
    except TypeError:
        raise ConfigError(f"layer {i}: {kind} does not take the fields "
                          f"{', '.join(sorted(table))}") from None


def load_net_file(path):
    """Return the ``Net`` described by TOML file ``path`` (validated)."""
    doc = read_toml(path, "net file")
    layers = doc.get("layers", [])
    if not layers:
        raise ConfigError(f"net file {str(path)!r} has no [[layers]]")
    classes = doc.get("classes", 10)
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ConfigError(f"net file {str(path)!r}: classes must be a positive integer, "
                          f"not {classes!r}")
    return nets.Net(str(doc.get("name", path)), tuple(doc.get("input_shape", ())),
                    tuple(_layer(i, t) for i, t in enumerate(layers)), classes)
