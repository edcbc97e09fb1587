"""The AXI4 master interface (the subset a DMA needs: INCR bursts, one ID, no locks/QoS)."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXI4Signature", "AXI_OKAY", "AXI_INCR"]

AXI_OKAY = 0
AXI_INCR = 1


class AXI4Signature(wiring.Signature):
    """AXI4 from the master's side (``Out`` = driven by the master).

    Members keep the AXI channel-prefixed names (``awaddr``, ``rvalid``, ...), so a port
    named ``m_axi`` flattens to ``m_axi__awaddr`` etc. in Verilog, which cocotbext-axi finds
    with ``AxiBus.from_prefix(dut, "m_axi", bus_separator="__")``. IDs are 1 bit and always 0.
    """

    def __init__(self, *, addr_bits, data_bits):
        if not isinstance(addr_bits, int) or not 12 <= addr_bits <= 64:
            raise TypeError(f"addr_bits must be an integer in 12..64, not {addr_bits!r}")
        if data_bits not in (32, 64, 128):
            raise TypeError(f"data_bits must be 32, 64 or 128, not {data_bits!r}")
        self._addr_bits, self._data_bits = addr_bits, data_bits
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(1), f"{ch}addr": Out(addr_bits), f"{ch}len": Out(8),
                f"{ch}size": Out(3), f"{ch}burst": Out(2),
                f"{ch}valid": Out(1), f"{ch}ready": In(1),
            })
        members.update({
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(1), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(1), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)

    @property
    def addr_bits(self):
        return self._addr_bits

    @property
    def data_bits(self):
        return self._data_bits

    def __eq__(self, other):
        return (isinstance(other, AXI4Signature) and
                (self.addr_bits, self.data_bits) == (other.addr_bits, other.data_bits))

    def __repr__(self):
        return f"AXI4Signature(addr_bits={self.addr_bits}, data_bits={self.data_bits})"
