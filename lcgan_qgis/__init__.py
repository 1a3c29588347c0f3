"""lcgan QGIS plugin: land cover <-> imagery translation with a CycleGAN exported to ONNX.

QGIS calls :func:`classFactory`. The layers, one folder each (``docs/architecture.md``):

- :mod:`lcgan_qgis.core`: QGIS-free runtime (numpy, onnxruntime, GDAL's ``osgeo``); the job every caller runs;
- :mod:`lcgan_qgis.plugin`: the QGIS adapters, the only code importing ``qgis``;
- :mod:`lcgan_qgis.installer`: the plugin's package installer (QGIS-free), packages kept in the QGIS profile;
- :mod:`lcgan_qgis.tooling`: model tooling needing ``onnx`` (quantization), never imported by the runtime;
- :mod:`lcgan_qgis.cli`: the command line (``python -m lcgan_qgis``), QGIS-free.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def classFactory(iface: Any) -> Any:
    """QGIS entry point: build the plugin for the running QGIS interface."""
    from .installer.folders import add_deps_to_path

    add_deps_to_path()  # the installed packages (onnxruntime) first: some modules import them when loaded
    from .plugin.lcgan_plugin import LcganPlugin  # imports qgis: only when QGIS loads the plugin

    return LcganPlugin(iface)
