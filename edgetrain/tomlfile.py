"""Read a user's TOML file, turning a missing or malformed file into a one-line error."""

import tomllib

from .errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path, what):
    """Return the parsed TOML document at ``path``; ``what`` names it in errors ("config file")."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} {str(path)!r} is not valid TOML: {e}") from None
