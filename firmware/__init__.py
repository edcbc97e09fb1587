"""What runs training on the accelerator, on the host.

``nets`` (declarative networks: the one form the golden model trains and the firmware
compiles) and ``netfile`` (a net from a TOML file); ``bridge_client`` (``BridgeClient``:
the framed UART protocol over any transport, pyserial or cocotb) and ``bridge_device``
(``BridgeDevice``: the device's registers and buffers seen through the client).

Imports ``hw`` (register map, layouts) and nothing from ``sim`` or ``boards``.
"""
