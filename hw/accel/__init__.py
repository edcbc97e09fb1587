"""The accelerator (issue 15): the blocks that compose the engine, DMAs and buffers.

Exports ``BufferBank`` (``banks``: a buffer as two ping-pong halves, SRAM or eDRAM-style
from the config, behind a ``compute`` and a ``dma`` port; ``half_depth``,
``bank_addr_bits``), ``BeatPort`` (``beats``: a bank's ``dma`` port as bus-beat rows, the
rows a ``ReshapeDMA`` addresses; ``beat_ratio``, ``beat_depth``, ``beat_addr_bits``) and
``DMACrossbar`` (``crossbar``: the load and store DMAs routed to the bank they select).
The instruction set is ``isa`` (layouts, host encode/decode, ``check_program``);
``Sequencer`` (``sequencer``) runs programs through ``InstructionFetch`` (``fetch``) and
three token-synchronised queues.
"""

from .banks import BufferBank, bank_addr_bits, half_depth
from .beats import BeatPort, beat_addr_bits, beat_depth, beat_ratio
from .crossbar import DMACrossbar

__all__ = ["BeatPort", "BufferBank", "DMACrossbar", "bank_addr_bits", "beat_addr_bits",
           "beat_depth", "beat_ratio", "half_depth"]
