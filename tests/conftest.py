"""Shared fixtures: the Zion sample and Processing; the real QgsApplication comes from pytest-qgis.

pytest-qgis (pinned in requirements/dev.txt, configured in pyproject.toml) starts one offscreen QgsApplication per
test session and provides ``qgis_app``, ``qgis_processing`` and ``qgis_new_project``. Its ``qgis_iface`` is not
used: its message bar records text instead of showing widgets, and its toolbar and menu methods are MagicMocks,
while the plugin's tests check the real message-bar entry, its Install button and the real toolbar
(``tests/plugin/stand_in.py`` wraps a real QMainWindow, QgsMapCanvas and QgsMessageBar instead).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
ZION_DIR = (REPO.parent / "shared" / "data" / "zion").resolve()
ZION_FILES = ("nlcd2011.tif", "nlcd2011_on_landsat_grid.tif", "landsat8_rgb.tif")


def _zion_missing() -> str | None:
    missing = [f for f in ZION_FILES if not (ZION_DIR / f).is_file()]
    if missing:
        return f"the real Zion sample is absent ({ZION_DIR}: missing {', '.join(missing)})"
    return None


@pytest.fixture(scope="session")
def zion_dir() -> Path:
    """Folder of the real NLCD 2011 + Landsat 8 Zion sample; skips the test clearly when it is absent."""
    reason = _zion_missing()
    if reason:
        pytest.skip(reason)
    return ZION_DIR


@pytest.fixture(scope="session")
def processing(qgis_processing: None) -> object:
    """The ``processing`` module, ready to ``run`` algorithms: pytest-qgis's Processing plus QGIS's native
    algorithms, which the desktop registers itself."""
    from qgis.analysis import QgsNativeAlgorithms
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    if registry.providerById("native") is None:
        registry.addProvider(QgsNativeAlgorithms())
    import processing as processing_module

    return processing_module
