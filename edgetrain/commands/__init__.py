"""Sub-commands of the edgetrain CLI."""
