"""What becomes gates: the Amaranth components of an edgetrain accelerator.

``config`` holds ``AcceleratorConfig``, the one configuration object every block reads.
The blocks, one subpackage each:

- ``engine``: the channel-parallel conv engine (PE array, address generator, descriptor and
  its check, requantizer, SGD update path, pool units) and ``ConvEngineTile``.
- ``buffers``: the memory-port contract, plain SRAM and the eDRAM-style buffer with its
  refresh controller.
- ``dma``: the reshaping AXI4 DMA and the layout module (where every tensor element lives).
- ``link``: the host link: UART, framed bridge, register bank, memory map, ``DeviceCore``.
- ``common``: pieces shared by the blocks: AXI4 signature, pipelines, broadcast nets, the
  counter-based random generator, constant multipliers.

Nothing here imports ``sim``, ``firmware``, ``boards`` or the command line
(``tests/test_import_rules.py`` checks it).
"""
