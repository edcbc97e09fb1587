"""Board clock generation: the ECP5 PLL that turns the ULX3S's 25 MHz into the sync clock."""

from amaranth.hdl import Signal, Instance, ClockDomain
from amaranth.lib.cdc import AsyncFFSynchronizer

from edgetrain.errors import ConfigError

__all__ = ["ecp5_pll_sync_domain", "ECP5_PLL_SETTINGS"]

# EHXPLLL dividers from 25 MHz, as computed by `yowasp-ecppll -i 25 -o <MHz>`.
ECP5_PLL_SETTINGS = {
    100: dict(CLKI_DIV=1, CLKFB_DIV=4, CLKOP_DIV=6, CLKOP_CPHASE=2),
    75: dict(CLKI_DIV=1, CLKFB_DIV=3, CLKOP_DIV=8, CLKOP_CPHASE=4),
    60: dict(CLKI_DIV=5, CLKFB_DIV=12, CLKOP_DIV=10, CLKOP_CPHASE=4),
    50: dict(CLKI_DIV=1, CLKFB_DIV=2, CLKOP_DIV=12, CLKOP_CPHASE=5),
    45: dict(CLKI_DIV=5, CLKFB_DIV=9, CLKOP_DIV=13, CLKOP_CPHASE=6),
    40: dict(CLKI_DIV=5, CLKFB_DIV=8, CLKOP_DIV=15, CLKOP_CPHASE=7),
    35: dict(CLKI_DIV=5, CLKFB_DIV=7, CLKOP_DIV=17, CLKOP_CPHASE=8),
    30: dict(CLKI_DIV=5, CLKFB_DIV=6, CLKOP_DIV=20, CLKOP_CPHASE=9),
}


def ecp5_pll_sync_domain(m, platform, *, clk_in, in_mhz, out_mhz):
    """Create domain ``sync`` at ``out_mhz`` from pin clock ``clk_in`` through an EHXPLLL.

    The domain is held in reset until the PLL locks; its clock is constrained for nextpnr.
    The synchronised reset reaches the domain's flip-flops through a DCCA, i.e. on a global
    network: it goes to some 15k flip-flops of the 8x8 engine, and as an ordinary net it is
    one of the largest consumers of the fabric routing that the board build runs out of.
    """
    if in_mhz != 25 or out_mhz not in ECP5_PLL_SETTINGS:
        raise ConfigError(f"no ECP5 PLL setting for {in_mhz} -> {out_mhz} MHz; supported "
                          f"outputs from 25 MHz: {sorted(ECP5_PLL_SETTINGS)}")
    params = ECP5_PLL_SETTINGS[out_mhz]
    m.domains.sync = cd_sync = ClockDomain("sync")
    locked = Signal(name="pll_locked")
    m.submodules.pll = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=str(in_mhz), a_FREQUENCY_PIN_CLKOP=str(out_mhz),
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
        p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
        **{f"p_{k}": v for k, v in params.items()},
        i_CLKI=clk_in, i_CLKFB=cd_sync.clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
        i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
        o_CLKOP=cd_sync.clk, o_LOCK=locked)
    reset = Signal(name="pll_reset")
    m.submodules.reset_sync = AsyncFFSynchronizer(~locked, reset, o_domain="sync")
    m.submodules.reset_buf = Instance("DCCA", i_CLKI=reset, i_CE=1, o_CLKO=cd_sync.rst)
    platform.add_clock_constraint(cd_sync.clk, out_mhz * 1e6)
    return out_mhz * 1e6
