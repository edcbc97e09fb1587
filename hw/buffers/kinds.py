"""The accelerator's on-chip buffers, one name each: the names its instructions use.

``Buffer`` is an Amaranth enumeration (2 bits, so an instruction field can name one):

``ACT``  activations: FP and WU read x, BP reads dy; ``T`` int16 lanes per row.
``WGT``  weights: one ``T`` x ``T`` block of int16 per row (BP reads it transposed).
``OUT``  outputs: FP/BP write ``T`` int16 lanes then ``T`` ReLU-mask bits; WU reads dy here.
``MST``  master weights: UPDATE reads and writes 64-bit words (int32 master, int32 velocity;
         without an SGD unit the gradient accumulators), ``master_lanes`` per row.

Each member gives, for an ``AcceleratorConfig``, its ``depth`` (rows), ``row_bits`` (the
port's data width), ``addr_bits`` and ``port_signature``, and ``port_name`` is the name of
its engine port, of the tile's host port (``host_<port_name>``) and of its host memory
region. The config keeps the field names users' TOML files use: ``Buffer.depth_field``
maps ``ACT``, ``WGT`` and ``OUT`` to ``input_depth``, ``weight_depth`` and
``output_depth``, and the config's ``refresh`` list has one policy per buffer of
``REFRESHED`` (``ACT``, ``WGT``, ``OUT``, in that order). ``MST`` is sized from the weight
buffer and is never refreshed.
"""

from amaranth.lib import enum

from .lanes import LANE_BITS
from .memport import MemoryPortSignature

__all__ = ["Buffer", "MASTER_WORD_BITS", "REFRESHED", "master_depth", "master_lanes",
           "master_rows_per_block"]

#: Bits of one master-buffer word: master (low 32) and velocity (high 32), or an accumulator.
MASTER_WORD_BITS = 64


def master_lanes(cfg):
    """Return the weights (64-bit words) in one master-buffer row."""
    return cfg.update_lanes or cfg.tn


def master_rows_per_block(cfg):
    """Return the master-buffer rows of one T x T weight block."""
    return cfg.tm * cfg.tn // master_lanes(cfg)


def master_depth(cfg):
    """Return the rows of the master buffer (every weight row's block)."""
    return cfg.weight_depth * master_rows_per_block(cfg)


class Buffer(enum.Enum, shape=2):
    """One on-chip buffer of the conv engine (see the module docstring)."""
    ACT = 0
    WGT = 1
    OUT = 2
    MST = 3

    @property
    def port_name(self):
        """The name of the buffer's engine port, host port suffix and memory region."""
        return self.name.lower()

    @property
    def depth_field(self):
        """The ``AcceleratorConfig`` field of the depth (``None`` for ``MST``)."""
        return _DEPTH_FIELDS.get(self)

    def depth(self, cfg):
        """Return the rows of this buffer in configuration ``cfg``."""
        if self is Buffer.MST:
            return master_depth(cfg)
        return getattr(cfg, self.depth_field)

    def row_bits(self, cfg):
        """Return the width of one row (the port's ``data_bits``) in configuration ``cfg``."""
        t = cfg.tm
        return {Buffer.ACT: LANE_BITS * t, Buffer.WGT: LANE_BITS * t * t,
                Buffer.OUT: (LANE_BITS + 1) * t,
                Buffer.MST: MASTER_WORD_BITS * master_lanes(cfg)}[self]

    def addr_bits(self, cfg):
        """Return the width of a row address (at least 1) in configuration ``cfg``."""
        return max(1, (self.depth(cfg) - 1).bit_length())

    def port_signature(self, cfg, *, lane_writes=False):
        """Return the ``MemoryPortSignature`` of this buffer's port in configuration ``cfg``."""
        return MemoryPortSignature(addr_bits=self.addr_bits(cfg), data_bits=self.row_bits(cfg),
                                   lane_writes=lane_writes)


_DEPTH_FIELDS = {Buffer.ACT: "input_depth", Buffer.WGT: "weight_depth",
                 Buffer.OUT: "output_depth"}

#: The buffers that may be eDRAM-style, in the order of the config's ``refresh`` list.
REFRESHED = (Buffer.ACT, Buffer.WGT, Buffer.OUT)
