#!/usr/bin/env bash
# Regenerate constraints.txt, the exact versions `make install` and CI use, from a fresh venv
# that resolves pyproject.toml's ranges. Usage: scripts/lock.sh [PYTHON]
set -euo pipefail
PYTHON=${1:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check ".[sim,boards,plot,test]"
{
    echo "# Exact versions for scripts/install.sh and CI (pyproject.toml holds the ranges)."
    echo "# Regenerate with scripts/lock.sh."
    "$tmp/venv/bin/python" -m pip freeze --exclude edgetrain | LC_ALL=C sort -f
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"
