"""Where the plugin keeps its own files in the user's QGIS profile."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication


def openvino_cache_dir() -> str:
    """OpenVINO's compiled-model cache: ``<QGIS profile>/lcgan/openvino_cache`` (the profile's settings folder).

    The core makes it when first needed; a folder that cannot be written only costs the cache (it says so).
    """
    return str(Path(QgsApplication.qgisSettingsDirPath()) / "lcgan" / "openvino_cache")
