"""The golden model: the specification every hardware block equals bit for bit.

``numerics`` (the contract: formats, requantization, rounding, wrapping adds, SGD),
``formats`` (delayed scaling), ``conv`` (exact accumulators of FP, BP, WU), ``layers``,
``pool``, ``rev`` (the reversible block), ``plan`` (a net's conv slots and formats), ``net``
(``FixedNet``: one fixed-point training step), ``float_layers`` / ``float_net`` (the float
twin), ``storage`` (stored activation bytes), ``digits`` (the data) and ``train`` (the
training loop of ``edgetrain train --backend golden``). Import from the modules.
"""
