"""Pieces shared by the blocks: bus signatures, pipelines, broadcast nets, random bits.

``axi`` (``AXI4Signature``), ``pipe`` (``stage``, ``delay``, ``StreamPipeline``), ``fanout``
(``broadcast``: a control bit on a global network where the platform has one), ``rng``
(``RngBits``: the counter-based generator of the numerics contract), ``constmul``
(``times_constant``: multiplication by an elaboration-time constant without a DSP).
"""
