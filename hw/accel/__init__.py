"""The accelerator (issue 15): the blocks that compose the engine, DMAs and buffers.

Exports ``BufferBank`` (``banks``: a buffer as two ping-pong halves, SRAM or eDRAM-style
from the config, behind a ``compute`` and a ``dma`` port; ``half_depth``,
``bank_addr_bits``), ``BeatPort`` (``beats``: a bank's ``dma`` port as bus-beat rows, the
rows a ``ReshapeDMA`` addresses; ``beat_ratio``, ``beat_depth``, ``beat_addr_bits``) and
``DMACrossbar`` (``crossbar``: the load and store DMAs routed to the bank they select).
The instruction set is ``isa`` (layouts, host encode/decode, ``check_program``);
``Sequencer`` (``sequencer``) runs programs through ``InstructionFetch`` (``fetch``) and
three token-synchronised queues. On the compute queue beside the engine: ``PoolUnit``
(``pool``: 2x2 max-pool forward with argmax rows, and backward) and ``EltwiseUnit``
(``eltwise``: wrapping add/sub, ReLU-mask backward, copy), built from ``rowunit`` (operands,
row readers and writers on the ACT and OUT bank ports, the descriptor control).
``AXIArbiter`` (``axi_arbiter``) shares the one AXI4 port to DRAM between the fetch and the
two DMAs and answers bursts outside the DRAM window with DECERR; ``RegisterSlice``
(``regslice``) is its full-rate stream register. ``Accelerator`` (``top``) composes them
all behind the control registers of ``control`` (``Reg``: the register map).
"""

from .axi_arbiter import AXIArbiter
from .banks import BufferBank, bank_addr_bits, half_depth
from .beats import BeatPort, beat_addr_bits, beat_depth, beat_ratio
from .crossbar import DMACrossbar
from .eltwise import EltwiseOp, EltwiseUnit, eltwise_layout, encode_eltwise
from .pool import PoolMode, PoolUnit, encode_pool, pool_layout
from .regslice import RegisterSlice
from .rowunit import Operand
from .top import Accelerator

__all__ = ["AXIArbiter", "Accelerator", "BeatPort", "BufferBank", "DMACrossbar", "EltwiseOp", "EltwiseUnit",
           "Operand", "PoolMode", "PoolUnit", "RegisterSlice", "bank_addr_bits",
           "beat_addr_bits", "beat_depth", "beat_ratio", "eltwise_layout", "encode_eltwise",
           "encode_pool", "half_depth", "pool_layout"]
