"""The dock's "Scenario" section: a land-cover change as imagery, before and after in one group.

It gathers what ``lcgan:render_scenario`` takes (the base land cover, the change as a changed raster or as polygons
with a new class, optionally the imagery already rendered from the base, a seed, the mode and margin, a name), starts a
:class:`ScenarioTask` (the core's :func:`~lcgan_qgis.core.run.scenario.run_scenario` on a worker thread), and when
it is done puts before, after and the change mask into a group named by the scenario
(:func:`~lcgan_qgis.plugin.scenario_layers.add_scenario_layers`). The bundled land cover -> RGB model renders.
"""

from __future__ import annotations

import re
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransformContext,
    QgsMapLayerProxyModel,
    QgsMessageLog,
    QgsProject,
    QgsTask,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QLineEdit, QSpinBox

from ...core.errors import LcganError
from ...core.model.contract import Direction
from ...core.resources import bundled_model_path
from ...core.run.settings import Execution, Rendering, RunSettings
from ..layers import layer_file
from ..scenario_layers import add_scenario_layers
from ..settings import openvino_cache_dir
from .options import raster_combo
from .output_box import new_file_in, start_folder
from .run_controls import add_run_controls

if TYPE_CHECKING:  # (the scenario module loads onnxruntime: imported when a scenario runs, not with the plugin)
    from ...core.run.scenario import ScenarioRequest, ScenarioResult

MESSAGE_TAG = "lcgan"


class ScenarioTask(QgsTask):
    """Runs one scenario; ``on_done(result, error)`` is called on the main thread."""

    def __init__(self, request: ScenarioRequest,
                 on_done: Callable[[ScenarioResult | None, str], None] | None = None) -> None:
        super().__init__(f"lcgan: scenario {request.scenario_name}", QgsTask.Flag.CanCancel)
        self.request = request
        self.result: ScenarioResult | None = None
        self.error = ""
        self._on_done = on_done

    def run(self) -> bool:
        from ...core.run.scenario import run_scenario

        try:
            self.result = run_scenario(self.request, lambda f: self.setProgress(100.0 * f), self.isCanceled,
                                       lambda m: QgsMessageLog.logMessage(m, MESSAGE_TAG, Qgis.MessageLevel.Info))
        except LcganError as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # a bug must not take QGIS down: its traceback goes to the log
            self.error = f"Unexpected error: {exc!r}"
            QgsMessageLog.logMessage(traceback.format_exc(), MESSAGE_TAG, Qgis.MessageLevel.Critical)
            return False
        return not self.result.canceled

    def finished(self, result: bool) -> None:
        if self._on_done is not None:
            self._on_done(self.result if result else None,
                          "" if result else (self.error or "Cancelled: nothing was written."))


class ScenarioPanel(QgsCollapsibleGroupBox):
    """Base, change (raster, or polygons + class), base render, seed, name, output; Render / Cancel."""

    def __init__(self, iface: Any = None, new_file: Callable[[str], str] | None = None) -> None:
        """``new_file(name)``: where a result goes when no file is chosen (the dock's output folder)."""
        super().__init__("Scenario: before / after")
        self.iface = iface
        self.new_file = new_file or (lambda name: new_file_in(start_folder(), name))
        self.setCollapsed(True)
        self.task: ScenarioTask | None = None
        self.group_name = ""
        rows = QFormLayout(self)
        rows.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)  # (labels above: the fields get the width)
        rows.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.base_combo = raster_combo()
        self.changed_combo = raster_combo(optional=True)
        self.polygons_combo = QgsMapLayerComboBox()
        self.polygons_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.polygons_combo.setAllowEmptyLayer(True)
        self.polygons_combo.setLayer(None)
        self.class_combo = QComboBox()
        self.refresh_classes()
        self.collapsedStateChanged.connect(lambda *_: self.refresh_classes())
        self.only_edit = QLineEdit()
        self.only_edit.setPlaceholderText("e.g. 41,42,43 (empty: every class)")
        self.render_combo = raster_combo(optional=True)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("local (fast)", "local")
        self.mode_combo.addItem("exact (= a full render)", "exact")
        self.mode_combo.setToolTip("local: the changed neighbourhood re-rendered and feathered into the base render "
                                   "within the margin; exact: every window the change reaches, equal to a full "
                                   "render of the changed map (slower)")
        self.margin_spin = QSpinBox()
        self.margin_spin.setRange(0, 256)  # (core.run.receptive_field.MAX_MARGIN_PX)
        self.margin_spin.setValue(32)  # (core.run.scenario_local.DEFAULT_MARGIN_PX)
        self.margin_spin.setSuffix(" px")
        self.margin_spin.setToolTip("Pixels farther than this from a change are the base render's, bit for bit")
        self.mode_combo.currentIndexChanged.connect(
            lambda *_: self.margin_spin.setEnabled(self.mode_combo.currentData() == "local"))
        self.name_edit = QLineEdit("scenario")
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif)")
        self.output_widget.lineEdit().setPlaceholderText("automatic name in the output folder")
        for label, widget in (("Base land cover", self.base_combo), ("Changed land cover", self.changed_combo),
                              ("Or: change polygons", self.polygons_combo), ("… turning to", self.class_combo),
                              ("… only these classes", self.only_edit),
                              ("Base render (optional)", self.render_combo), ("Texture seed", self.seed_spin),
                              ("Mode", self.mode_combo), ("Margin (local mode)", self.margin_spin),
                              ("Scenario name", self.name_edit), ("Output (after)", self.output_widget)):
            rows.addRow(label, widget)
        controls = add_run_controls(rows, "Render scenario", self.run, self.cancel)
        self.run_button, self.cancel_button = controls.start, controls.cancel
        self.progress_bar, self.status_label = controls.progress, controls.status

    def refresh_classes(self) -> None:
        """List the bundled model's classes, once they can be read (a new user installs onnxruntime after QGIS
        built this panel: the list fills when the section is unfolded)."""
        if self.class_combo.count() == 0:
            for cls in _classes():
                self.class_combo.addItem(f"{cls.code} {cls.name}", cls.code)

    def build_request(self) -> ScenarioRequest:
        """The request from the fields (main thread; drawn polygons are saved to a temporary GeoPackage).

        Raises:
            LcganError: a field the scenario cannot use (the message says which).
        """
        from ...core.errors import OptionError
        from ...core.run.scenario import ScenarioRequest

        base = self.base_combo.currentLayer()
        if base is None or not layer_file(base):
            raise OptionError("Choose the base land cover (a raster file).")
        changed, polygons = self.changed_combo.currentLayer(), self.polygons_combo.currentLayer()
        name = re.sub(r"[^\w.-]+", "_", self.name_edit.text()).strip("_") or "scenario"
        output = self.output_widget.filePath() or self.new_file(f"{name} after")
        try:
            only = tuple(int(c) for c in self.only_edit.text().replace(" ", "").split(",") if c)
        except ValueError:
            raise OptionError(f"Only these classes: {self.only_edit.text()!r} is not a list of codes like "
                              "41,42,43.") from None
        render = self.render_combo.currentLayer()
        mode = self.mode_combo.currentData()
        settings = RunSettings(execution=Execution(cache_dir=openvino_cache_dir()),
                               rendering=Rendering(seed=self.seed_spin.value()))
        return ScenarioRequest(
            output_path=output, base_path=str(layer_file(base)),
            changed_path=layer_file(changed) if changed is not None else None,
            polygons_path=_polygon_file(polygons) if polygons is not None and changed is None else None,
            to_class=self.class_combo.currentData() if polygons is not None and changed is None else None,
            from_classes=only, base_render_path=layer_file(render) if render is not None else None,
            settings=settings, name=self.name_edit.text().strip() or name, mode=mode,
            margin_px=self.margin_spin.value() if mode == "local" else None)

    def run(self) -> ScenarioTask | None:
        try:
            request = self.build_request()
        except LcganError as exc:
            self.status_label.setText(str(exc))
            return None
        self.group_name = request.scenario_name
        self.task = ScenarioTask(request, self._done)
        self.task.progressChanged.connect(lambda p: self.progress_bar.setValue(int(p)))
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status_label.setText("Rendering…")
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _done(self, result: ScenarioResult | None, error: str) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.task = None
        if result is None:
            self.status_label.setText(error)
            return
        try:
            add_scenario_layers(result, self.group_name, QgsProject.instance())
        except LcganError as exc:
            self.status_label.setText(str(exc))
            return
        area = "" if result.changed_ha is None else f" ({result.changed_ha:,.1f} ha)"
        self.status_label.setText(
            f"{result.changed_px:,} px changed{area}; {result.model_runs} re-rendered, {result.mode} mode, margin "
            f"{result.margin_px} px, in {result.seconds:.1f} s. Before and after are in the group 'Scenario: "
            f"{self.group_name}'.")


def _classes() -> list[Any]:
    from ...core.run.job import read_contract

    try:
        return list(read_contract(bundled_model_path(Direction.LANDCOVER_TO_RGB)).scheme.classes)
    except (LcganError, ImportError):
        return []


def _polygon_file(layer: QgsVectorLayer) -> str:
    """A file OGR reads with ``layer``'s polygons: its own file when it is a single-layer file, else a GeoPackage
    written to a temporary folder (a drawn memory layer, a database table, one layer of several)."""
    source = layer.source()
    if layer.providerType() == "ogr" and "|" not in source and Path(source).is_file():
        return source
    path = str(Path(tempfile.mkdtemp(prefix="lcgan-scenario-")) / "change.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, QgsCoordinateTransformContext(), options)
    return path
