"""Errors a user can cause. The CLI prints their message on one line and exits with code 2."""


class EdgetrainError(Exception):
    """An error the user can fix; its message names the bad value and the fix."""


class ConfigError(EdgetrainError, ValueError):
    """An invalid accelerator configuration or network description."""


class ToolError(EdgetrainError):
    """A missing or failing external tool (simulator, synthesis, programmer)."""


class OutputError(EdgetrainError):
    """A file or folder a command must write that cannot be created or written."""
