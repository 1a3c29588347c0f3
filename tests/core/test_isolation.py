"""The core stays QGIS-free and torch-free; the plugin never needs torch or rasterio."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = {"qgis", "torch", "rasterio", "PyQt5", "PyQt6"}
FORBIDDEN_IN_PLUGIN = {"torch", "rasterio", "PyQt5", "PyQt6", "training"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_importing_core_loads_neither_qgis_nor_torch() -> None:
    code = (
        "import sys, lcgan_qgis.core, lcgan_qgis.core.contract, lcgan_qgis.core.scheme;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'qgis', 'torch', 'rasterio', 'PyQt5'});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_core_sources_import_no_forbidden_package() -> None:
    offenders = {
        str(p.relative_to(REPO)): sorted(_imported_roots(p) & FORBIDDEN_IN_CORE)
        for p in (REPO / "lcgan_qgis" / "core").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_plugin_sources_import_no_torch_rasterio_or_direct_pyqt() -> None:
    offenders = {
        str(p.relative_to(REPO)): sorted(_imported_roots(p) & FORBIDDEN_IN_PLUGIN)
        for p in (REPO / "lcgan_qgis").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
