"""edgetrain: on-device CNN training accelerators for small FPGAs."""

__version__ = "0.1.0"
