"""The channel-parallel conv engine: one Tm x Tn MAC array for FP, BP, WU and UPDATE.

Exports ``ConvEngine`` (``conv``), ``ConvEngineTile`` (``tile``: the engine with its
buffers), the runtime descriptor (``descriptor``: ``DescriptorLayout``, ``LayerShape``,
``MODES``) and the units it is built from: ``PEArray`` (``pe_array``),
``AddressGenerator`` (``addrgen``), ``DescriptorCheck`` (``check``), ``Requantizer``
(``requant``), ``WeightUpdater`` (``updater``) around ``SGDUpdate`` (``sgd``), and the
2x2 max-pool units ``MaxPool2x2`` / ``PoolBackward`` (``pool``).
"""

from .conv import ConvEngine
from .descriptor import MODES, DescriptorLayout, LayerShape
from .tile import ConvEngineTile

__all__ = ["ConvEngine", "ConvEngineTile", "DescriptorLayout", "LayerShape", "MODES"]
