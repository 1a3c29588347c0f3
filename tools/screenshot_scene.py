"""Run inside QGIS desktop (``qgis --code tools/screenshot_scene.py``) by :mod:`tools.screenshot`.

Loads the input layer, opens the lcgan dock, runs a translation from its Run button, and when the styled result is
on the canvas writes the file named by ``LCGAN_SHOT_READY`` so the caller can take the screenshot. Parameters come
from environment variables (``LCGAN_SHOT_INPUT``, ``LCGAN_SHOT_MODEL``, ``LCGAN_SHOT_OUTPUT``).
"""

from __future__ import annotations

import os

from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget
from qgis.utils import iface, plugins

from lcgan_qgis.core.contract import Direction
from lcgan_qgis.core.files import AtomicFile

PLUGIN = "lcgan_qgis"
POLL_MS = 250


def _tidy_main_window() -> None:
    window = iface.mainWindow()
    window.setGeometry(QApplication.primaryScreen().availableGeometry())  # Xvfb has no window manager
    for dock in window.findChildren(QDockWidget):
        if dock.objectName() not in ("Layers", "LcganDock"):
            dock.hide()


def _finish(dock: object) -> None:
    outcome = dock.last_outcome
    if outcome is None:
        QTimer.singleShot(POLL_MS, lambda: _finish(dock))
        return
    status = "ok" if outcome.job is not None else f"failed: {outcome.error or 'canceled'}"
    canvas = iface.mapCanvas()
    canvas.zoomToFullExtent()
    canvas.refreshAllLayers()
    layers = iface.layerTreeView()
    layers.expandAll()
    QTimer.singleShot(4000, lambda: _signal_ready(status))


def _signal_ready(status: str) -> None:
    """Write the ready file whole (the caller polls for it and reads it at once)."""
    with AtomicFile(os.environ["LCGAN_SHOT_READY"]) as tmp:
        tmp.write_text(status, encoding="utf-8")


def main() -> None:
    _tidy_main_window()
    layer = QgsRasterLayer(os.environ["LCGAN_SHOT_INPUT"], "Zion Landsat 8 (2015-08-18)")
    QgsProject.instance().addMapLayer(layer)
    plugin = plugins[PLUGIN]
    plugin.action.setChecked(True)
    dock = plugin.dock
    layers_panel = iface.mainWindow().findChild(QDockWidget, "Layers")
    iface.mainWindow().resizeDocks([dock, layers_panel], [480, 330], Qt.Orientation.Horizontal)
    dock.set_direction(Direction.RGB_TO_LANDCOVER)
    dock.layer_combo.setLayer(layer)
    dock.model_widget.setFilePath(os.environ.get("LCGAN_SHOT_MODEL", ""))
    dock.output_widget.setFilePath(os.environ["LCGAN_SHOT_OUTPUT"])
    dock.options_box.setCollapsed(False)
    dock.run_button.click()
    QTimer.singleShot(POLL_MS, lambda: _finish(dock))


QTimer.singleShot(1500, main)
