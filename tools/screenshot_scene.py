"""Run inside QGIS desktop (``qgis --code tools/screenshot_scene.py``) by :mod:`tools.screenshot`.

Walks through a new user's steps, one screenshot each: the install prompt and the installer dialog (the profile
starts without onnxruntime), the dock before a run, the dock after a run from its Run button with the styled result,
the legend, the Processing dialog, and the dock's "Adapt to your region" and "Scenario" sections unfolded and filled
in (with the Zion land cover added as a layer); Adapt then runs for one minute (a real fine-tuning child process:
one shot while it trains, one with the adapted model in the Model list); the scenario is not rendered. For each
step it writes ``ready_<name>`` (holding ``full`` or the crop ``x,y,w,h`` in screen pixels) into
``LCGAN_SHOT_WORK`` and waits for the caller's ``taken_<name>`` before going on.

The install itself is not downloaded here: after the installer's screenshot the packages of the repository's
``.venv`` are linked into the plugin's package folder (where the installer puts them, ``LCGAN_SHOT_RUNTIME``) and
the installer's own activation makes them usable, as after a real install. Parameters come from environment
variables (``LCGAN_SHOT_INPUT``, ``LCGAN_SHOT_LANDCOVER``, ``LCGAN_SHOT_MODEL``, ``LCGAN_SHOT_OUTPUT``,
``LCGAN_SHOT_WORK``).
"""

from __future__ import annotations

import faulthandler
import os
from pathlib import Path

from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QPushButton, QWidget
from qgis.utils import iface, plugins

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.storage.files import AtomicFile
from lcgan_qgis.installer import folders, plan, status

PLUGIN = "lcgan_qgis"
POLL_MS = 250
SETTLE_MS = 2500
WORK = Path(os.environ["LCGAN_SHOT_WORK"])
LEGEND_HEIGHT_PX = 360  # the Layers panel's top: the result group and its legend
DOCK_WIDTH_PX = 330  # about what QGIS gives a new panel beside the Layers panel
LAYERS_WIDTH_PX = 400  # wide enough for a result's name (input, direction, model)


def _geometry(widget: QWidget, max_height: int | None = None) -> str:
    top_left = widget.mapToGlobal(QPoint(0, 0))
    height = widget.height() if max_height is None else min(widget.height(), max_height)
    return f"{top_left.x()},{top_left.y()},{widget.width()},{height}"


def _shot(name: str, crop: object = "full", then: object = None) -> None:
    """Tell the caller to take ``name`` once the screen settled (``crop``: ``"full"``, or a callable giving
    ``x,y,w,h`` then), and run ``then`` once it was taken."""
    def ready() -> None:
        with AtomicFile(WORK / f"ready_{name}") as tmp:
            tmp.write_text(crop() if callable(crop) else crop, encoding="utf-8")
        _wait_for(WORK / f"taken_{name}", then)

    QTimer.singleShot(SETTLE_MS, ready)


def _wait_for(path: Path, then: object) -> None:
    if path.exists():
        if then is not None:
            then()
        return
    QTimer.singleShot(POLL_MS, lambda: _wait_for(path, then))


def _fail(message: str) -> None:
    with AtomicFile(WORK / "failed") as tmp:
        tmp.write_text(message, encoding="utf-8")


class Scene:
    """The steps, in order; each ends by asking for its screenshot."""

    def __init__(self) -> None:
        self.window = iface.mainWindow()
        self.plugin = plugins[PLUGIN]
        self.layer: QgsRasterLayer | None = None
        self.landcover: QgsRasterLayer | None = None
        self.dialog = None

    def start(self) -> None:
        self.window.setGeometry(QApplication.primaryScreen().availableGeometry())  # Xvfb has no window manager
        for dock in self.window.findChildren(QDockWidget):
            if dock.objectName() not in ("Layers", "LcganDock"):
                dock.hide()
        self.install_prompt()  # (what a new user sees when QGIS starts, before opening any data)

    def install_prompt(self) -> None:
        buttons = [b for b in iface.messageBar().findChildren(QPushButton) if b.text().startswith("Install")]
        if not buttons:
            _fail("no Install button in the message bar (is onnxruntime importable in QGIS's Python?)")
            return
        buttons[0].click()
        from lcgan_qgis.plugin.gui.deps_dialog import InstallOffer

        self.dialog = InstallOffer.offers[-1].dialog
        self.dialog.details.setCollapsed(True)
        self.dialog.adjustSize()
        centre = self.window.geometry().center()
        self.dialog.move(centre.x() - self.dialog.width() // 2, centre.y() - self.dialog.height() // 2)
        _shot("install", lambda: f"0,0,{self.window.width()},{self.dialog.geometry().bottom() + 24}",
              then=self.installed)

    def installed(self) -> None:
        """What a real install ends with: the packages in the plugin's folder, activated in this session."""
        self.dialog.close()
        target = folders.prepare_target()
        for entry in os.environ["LCGAN_SHOT_RUNTIME"].split(os.pathsep):
            module, _, folder = entry.partition("=")
            link = target / module
            if not link.exists():
                link.symlink_to(folder, target_is_directory=True)
        activation = status.activate([f"{d}=={v}" for d, v in plan.runtime_pins().items() if d != plan.CPU_WHEEL],
                                   {}, target)
        if not activation.ready:
            _fail(activation.message)
            return
        iface.messageBar().clearWidgets()
        self.plugin.dependencies_installed(activation)
        self.layer = QgsRasterLayer(os.environ["LCGAN_SHOT_INPUT"], "Zion Landsat 8 (2015-08-18)")
        QgsProject.instance().addMapLayer(self.layer)
        iface.mapCanvas().zoomToFullExtent()
        self.dock_before()

    def dock_before(self) -> None:
        self.plugin.action.setChecked(True)
        dock = self.plugin.dock
        layers_panel = self.window.findChild(QDockWidget, "Layers")
        self.window.resizeDocks([dock, layers_panel], [DOCK_WIDTH_PX, LAYERS_WIDTH_PX], Qt.Orientation.Horizontal)
        dock.set_direction(Direction.RGB_TO_LANDCOVER)
        dock.layer_combo.setLayer(self.layer)
        dock.model_widget.setFilePath(os.environ.get("LCGAN_SHOT_MODEL", ""))
        dock.output_widget.setFilePath("")  # results go to the output folder, named by model (files by default)
        dock.folder_widget.setFilePath(str(Path(os.environ["LCGAN_SHOT_OUTPUT"]).parent / "lcgan results"))
        _shot("dock_before", lambda: _geometry(dock), then=self.run)

    def run(self) -> None:
        self.plugin.dock.run_button.click()
        self._finished()

    def _finished(self) -> None:
        outcome = self.plugin.dock.last_outcome
        if outcome is None:
            QTimer.singleShot(POLL_MS, self._finished)
            return
        if outcome.job is None:
            _fail(f"the run failed: {outcome.error or 'canceled'}")
            return
        iface.mapCanvas().zoomToFullExtent()
        iface.mapCanvas().refreshAllLayers()
        iface.layerTreeView().expandAll()
        _shot("dock", then=self.legend)

    def legend(self) -> None:
        layers_panel = self.window.findChild(QDockWidget, "Layers")
        _shot("legend", lambda: _geometry(layers_panel, LEGEND_HEIGHT_PX), then=self.processing_dialog)

    def processing_dialog(self) -> None:
        import processing

        self.dialog = processing.createAlgorithmDialog("lcgan:rgb_to_landcover", {"INPUT": self.layer.id()})
        self.dialog.resize(820, 640)
        centre = self.window.geometry().center()
        self.dialog.move(centre.x() - 410, centre.y() - 320)
        self.dialog.show()
        _shot("processing", lambda: _geometry(self.dialog), then=self.adapt)

    def _unfold(self, section: QWidget, then: object) -> None:
        """Unfold ``section`` of the dock (folding the others) and scroll the dock to its top, then run ``then``."""
        dock = self.plugin.dock
        for box in (dock.options_box, dock.adapt_panel, dock.scenario_panel):
            box.setCollapsed(box is not section)

        def scroll() -> None:
            dock.widget().verticalScrollBar().setValue(section.mapTo(dock.body, QPoint(0, 0)).y() - 8)
            then()

        QTimer.singleShot(500, scroll)

    def adapt(self) -> None:
        self.dialog.close()
        self.landcover = QgsRasterLayer(os.environ["LCGAN_SHOT_LANDCOVER"], "Zion NLCD 2011 land cover")
        QgsProject.instance().addMapLayer(self.landcover)
        panel = self.plugin.dock.adapt_panel
        panel.imagery_combo.setLayer(self.layer)
        panel.landcover_combo.setLayer(self.landcover)
        panel.name_edit.setText("zion_canyons")
        self._unfold(panel, lambda: _shot("adapt", lambda: _geometry(self.plugin.dock), then=self.adapt_run))

    def adapt_run(self) -> None:
        """Press Adapt for a one-minute run: one shot while it trains, one when its model is in the Model list."""
        panel = self.plugin.dock.adapt_panel
        panel.minutes_spin.setValue(1.0)
        if panel.start() is None:
            _fail(f"Adapt did not start: {panel.status_label.text()}")
            return
        self._adapt_training()

    def _adapt_training(self) -> None:
        panel = self.plugin.dock.adapt_panel
        if panel.task is None:
            _fail(f"the adaptation ended before its first validation: {panel.status_label.text()}")
        elif panel.status_label.text().startswith("step "):
            _shot("adapt_running", lambda: _geometry(self.plugin.dock), then=self._adapt_finished)
        else:
            QTimer.singleShot(POLL_MS, self._adapt_training)

    def _adapt_finished(self) -> None:
        panel = self.plugin.dock.adapt_panel
        if panel.task is not None:
            QTimer.singleShot(POLL_MS, self._adapt_finished)
            return
        if not panel.status_label.text().startswith("Done"):
            _fail(f"the adaptation failed: {panel.status_label.text()}")
            return
        dock = self.plugin.dock
        dock.widget().verticalScrollBar().setValue(0)  # the Model list, with the adapted model chosen
        dock.input_box.model_combo.showPopup()
        _shot("adapt_done", lambda: _geometry(dock), then=self._adapt_closed)

    def _adapt_closed(self) -> None:
        self.plugin.dock.input_box.model_combo.hidePopup()
        self.scenario()

    def scenario(self) -> None:
        panel = self.plugin.dock.scenario_panel
        panel.base_combo.setLayer(self.landcover)
        panel.name_edit.setText("forest_to_shrub")
        panel.only_edit.setText("41,42,43")
        panel.refresh_classes()  # (filled when unfolded: QGIS started without onnxruntime)
        panel.class_combo.setCurrentIndex(max(panel.class_combo.findData(52), 0))  # (forest turning to shrub/scrub)
        self._unfold(panel, lambda: _shot("scenario_dock", lambda: _geometry(self.plugin.dock), then=self.done))

    def done(self) -> None:
        with AtomicFile(WORK / "done") as tmp:
            tmp.write_text("ok", encoding="utf-8")


FAULTS = (WORK / "faults.txt").open("w", encoding="utf-8")  # a crash's Python traceback, for the caller's message
faulthandler.enable(FAULTS)
SCENE = Scene()
QTimer.singleShot(2000, SCENE.start)
