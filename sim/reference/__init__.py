"""Reference models: what each block must produce, built from the golden model.

``engine`` (a tile's expected outputs and buffer images), ``decay`` (``EDRAMModel``: the
eDRAM buffer cycle by cycle, refreshes and decay), ``dma_model`` / ``dma_cases`` (bursts and
bus figures; random transfers with expected results), ``lifetime`` (data lifetimes,
refreshes and energy of a training step), ``units`` (random beats for the arithmetic units
and their expected results). Import from the modules.
"""
