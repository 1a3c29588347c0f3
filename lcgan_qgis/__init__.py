"""lcgan QGIS plugin: land cover <-> imagery translation with a CycleGAN exported to ONNX.

QGIS calls :func:`classFactory`; everything QGIS-free lives in :mod:`lcgan_qgis.core`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def classFactory(iface: Any) -> Any:
    """QGIS entry point: build the plugin for the running QGIS interface."""
    from .plugin import LcganPlugin

    return LcganPlugin(iface)
