"""Shared fixtures: a real QgsApplication with Processing, the Zion sample, tiny ONNX models.

QGIS is started once per test session, only when a test asks for ``qgis_app`` (or ``processing``), so tests of
the core and the training package never pay for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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
def qgis_app() -> Iterator[object]:
    """One real QgsApplication (offscreen) for the whole session, with Processing initialised."""
    from qgis.core import QgsApplication

    app = QgsApplication.instance()
    owned = app is None
    if owned:
        QgsApplication.setPrefixPath("/usr", True)
        app = QgsApplication([], False)
        app.initQgis()
    plugins = "/usr/share/qgis/python/plugins"
    if plugins not in sys.path:
        sys.path.append(plugins)
    from processing.core.Processing import Processing
    from qgis.analysis import QgsNativeAlgorithms

    registry = QgsApplication.processingRegistry()
    if registry.providerById("native") is None:
        registry.addProvider(QgsNativeAlgorithms())
    Processing.initialize()
    yield app
    # exitQgis() at interpreter shutdown can crash on Debian's 3.22 with live layers; QGIS's own test-suite also
    # leaves the application to the process exit.


@pytest.fixture(scope="session")
def processing(qgis_app: object) -> object:
    """The ``processing`` module, ready to ``run`` algorithms."""
    import processing as processing_module

    return processing_module
