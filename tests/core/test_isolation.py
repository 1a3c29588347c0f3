"""Importing the core loads no QGIS, torch or rasterio (the source-level rules are in tests/test_layers.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_importing_core_loads_neither_qgis_nor_torch() -> None:
    code = (
        "import sys, lcgan_qgis.core, lcgan_qgis.core.model.contract, lcgan_qgis.core.model.scheme, "
        "lcgan_qgis.core.run.job, lcgan_qgis.core.run.engine, lcgan_qgis.cli;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'qgis', 'torch', 'rasterio', 'PyQt5', 'onnx'});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
