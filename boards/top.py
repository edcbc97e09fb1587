"""The board top: clocking, the device core, the UART pins and the status LEDs of one board."""

from amaranth.hdl import Module
from amaranth.lib import io, wiring

from edgetrain.errors import ConfigError
from edgetrain.hw.link.device import DeviceCore
from .clocking import ecp5_pll_sync_domain
from .spram import SPRAMBuffer

__all__ = ["BoardTop", "board_config"]

BAUD = 115200
# Device LEDs (see DeviceCore) shown on boards with fewer LEDs: iCEBreaker green, red.
LED_MAP = {"icebreaker": (0, 2)}


def board_config(board, config):
    """Return ``config`` sized for ``board``, or raise ``ConfigError`` if it cannot fit."""
    if config.tm * config.tn > board.max_multipliers:
        d = board.defaults
        raise ConfigError(f"tm*tn = {config.tm}x{config.tn} needs {config.tm * config.tn} "
                          f"multipliers but {board.name} has {board.max_multipliers}: set "
                          f"tm*tn <= {board.max_multipliers} in the config "
                          f"(e.g. tm={d['tm']}, tn={d['tn']})")
    if config.tm != config.tn:
        raise ConfigError(f"the conv engine needs tm == tn, not tm={config.tm}, "
                          f"tn={config.tn}: set both to the same value")
    return config


class BoardTop(wiring.Component):
    """The whole design for ``board`` (a ``platforms.Board``) with accelerator ``config``.

    The host reaches the device over the board's USB UART at ``baud`` (8N1) with the framed
    protocol of ``edgetrain.hw.link.bridge``. ``engine=False`` leaves the conv engine out (the
    bridge, registers and the DRAM stand-in only: a link test). ``sync_mhz`` (one of the
    board's ``clocks_mhz``; default its ``sync_mhz``) clocks the device logic.
    """

    def __init__(self, *, board, config, baud=BAUD, engine=True, sync_mhz=None):
        self._board, self._engine = board, bool(engine)
        self._sync_mhz = board.check_clock(sync_mhz)
        self._config = board_config(board, config)
        if not isinstance(baud, int) or baud < 1200:
            raise ConfigError(f"baud must be an integer >= 1200, not {baud!r}")
        self._baud = baud
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        board = self._board
        if board.name.startswith("ulx3s"):
            m.submodules.clk_buf = clk_in = io.Buffer(
                "i", platform.request(platform.default_clk, dir="-"))
            sync_hz = ecp5_pll_sync_domain(m, platform, clk_in=clk_in.i, in_mhz=25,
                                           out_mhz=self._sync_mhz)
        else:
            sync_hz = platform.default_clk_frequency
        dram = SPRAMBuffer(banks=4) if board.memory == "spram" else None
        m.submodules.core = core = DeviceCore(
            config=self._config, divisor=round(sync_hz / self._baud),
            dram_depth=board.mem_depth, dram=dram, engine=self._engine)
        lines = {sub.name: "-" for sub in platform.lookup("uart", 0).ios}
        uart = platform.request("uart", 0, dir=lines)
        m.submodules.uart_rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.uart_rx.eq(rx.i), tx.o.eq(core.uart_tx)]
        for pin, device_led in enumerate(LED_MAP.get(board.name, range(8))):
            m.submodules[f"led{pin}_buf"] = led = io.Buffer(
                "o", platform.request("led", pin, dir="-"))
            m.d.comb += led.o.eq(core.leds[device_led])
        return m
