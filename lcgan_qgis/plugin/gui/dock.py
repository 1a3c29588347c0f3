"""The lcgan dock panel: choose a layer, a direction and a model, set options, run in the background.

The panel only gathers parameters: it builds a :class:`~lcgan_qgis.core.run.request.TranslationRequest` (through
:func:`lcgan_qgis.plugin.requests.translation_request`) and a reader over a clone of the layer's provider, starts a
:class:`~lcgan_qgis.plugin.tasks.TranslateTask`, and when the task is done adds the styled result to the project.
It never loads a model for inference or tiles a raster itself. Its parts are widgets of their own (bands, terrain
rows, options, output folder), and it remembers its choices (:mod:`.dock_state`).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsDockWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import InputRasterError, LcganError
from ...core.model.contract import Direction
from ...core.run.request import TranslationRequest
from ...installer.plan import is_openvino
from ...installer.status import DependencyStatus, check_openvino, check_runtime
from ..layers import direction_misfit, layer_file, reader_for
from ..qgis_reader import ProviderReader, has_native_grid
from ..requests import translation_request
from ..settings import openvino_cache_dir
from ..styling import add_polygon_layer, add_result_layer, result_layer_name
from ..tasks import TaskOutcome, TranslateTask
from . import messages
from .adapt_panel import AdaptPanel
from .area import extent_wkt, features_wkt
from .deps_dialog import InstallDialog, copy_diagnostics
from .dock_state import DockState
from .input_box import InputBox
from .model_info import ModelInfoBox
from .options import OptionsBox, set_shown
from .output_box import OutputBox
from .scenario_panel import ScenarioPanel
from .terrain_box import TerrainBox

EXTENT_WHOLE, EXTENT_CANVAS, EXTENT_FEATURES = "layer", "canvas", "features"
EXTENTS = (("Whole layer", EXTENT_WHOLE), ("Visible map extent", EXTENT_CANVAS),
           ("Polygon features", EXTENT_FEATURES))
MIN_COMBO_CHARS = 8  # what a combo box shows at the least (its popup shows items whole)
#: The choices the dock remembers across sessions (name -> attribute).
REMEMBERED = ("direction_combo", "model_widget", "bundled_combo", "seed_spin", "extent_combo", "overlap_spin",
              "batch_spin", "device_combo", "precision_combo", "backend_combo", "radiometry_combo", "check_gsd",
              "confidence_check", "polygons_check", "min_area_spin", "all_classes_check")


def form(labels_above: bool = True) -> QFormLayout:
    """A form whose labels sit above their fields (the fields get the panel's whole width), or beside them while
    they fit."""
    layout = QFormLayout()
    policy = QFormLayout.RowWrapPolicy
    layout.setRowWrapPolicy(policy.WrapAllRows if labels_above else policy.WrapLongRows)
    layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return layout


class LcganDock(QgsDockWidget):
    """The panel. ``iface`` needs ``mapCanvas()`` and ``messageBar()``."""

    def __init__(self, iface: Any, parent: QWidget | None = None) -> None:
        super().__init__("lcgan: land cover ↔ imagery", parent)
        self.setObjectName("LcganDock")
        self.iface = iface
        self.task: TranslateTask | None = None
        self.last_outcome: TaskOutcome | None = None
        self.result_layers: list[QgsRasterLayer] = []
        self._notes: list[str] = []
        self._installer: InstallDialog | None = None
        self._build()
        self.state = DockState((name, getattr(self, name)) for name in REMEMBERED)
        self.state.restore()
        self._connect()
        self.state.follow()
        self._direction_changed()

    # -- layout: one small builder per part, so a new field is one method ------------------------------------
    def _build(self) -> None:
        body = QWidget()
        self.body = body
        layout = QVBoxLayout(body)
        self.input_box = self._adopt(InputBox(form(), form(labels_above=False)))
        layout.addWidget(self.input_box)
        self.terrain_box = self._adopt(TerrainBox(form()))
        layout.addWidget(self.terrain_box)
        layout.addWidget(self._build_model())
        layout.addLayout(self._build_area())
        self.options_box = self._adopt(OptionsBox(form()))
        layout.addWidget(self.options_box)
        self.output_box = OutputBox(form())
        self.output_widget, self.folder_widget = self.output_box.output_widget, self.output_box.folder_widget
        layout.addWidget(self.output_box)
        layout.addLayout(self._build_run())
        self.adapt_panel = AdaptPanel(self.iface)
        layout.addWidget(self.adapt_panel)
        self.scenario_panel = ScenarioPanel(self.iface, self.output_box.new_file)
        layout.addWidget(self.scenario_panel)
        layout.addStretch(1)
        for combo in body.findChildren(QComboBox):  # (a combo box as wide as its longest item clips the panel)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(min(combo.minimumContentsLength() or MIN_COMBO_CHARS, MIN_COMBO_CHARS))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)

    def _adopt(self, part: Any) -> Any:
        """Make ``part``'s fields the dock's own attributes (one place builds them)."""
        for name in part.FIELDS:
            setattr(self, name, getattr(part, name))
        return part

    def _build_model(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.info_box = ModelInfoBox()
        column.addWidget(self.info_box)
        self.install_button = QPushButton("Install onnxruntime…")
        self.install_button.setVisible(False)
        column.addWidget(self.install_button)
        return box

    def _build_area(self) -> QFormLayout:
        rows = form()
        self.extent_combo = QComboBox()
        for text, value in EXTENTS:
            self.extent_combo.addItem(text, value)
        rows.addRow("Area", self.extent_combo)
        self.polygon_combo = QgsMapLayerComboBox()
        self.polygon_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.selected_only = QCheckBox("Selected features only")
        self.polygons_label = QLabel("Polygons")
        rows.addRow(self.polygons_label, self.polygon_combo)
        rows.addRow("", self.selected_only)
        return rows

    def _build_run(self) -> QVBoxLayout:
        column = QVBoxLayout()
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        column.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setVisible(False)  # shown while a task runs
        column.addWidget(self.progress_bar)
        self.diagnostics_button = QPushButton("Copy diagnostics")
        self.diagnostics_button.setToolTip("Copy versions, execution providers, GPU driver and folders to the "
                                           "clipboard, for a bug report.")
        column.addWidget(self.diagnostics_button)
        return column

    def _connect(self) -> None:
        self.direction_combo.currentIndexChanged.connect(self._direction_changed)
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.model_widget.fileChanged.connect(self.refresh_model_info)
        self.model_combo.currentIndexChanged.connect(self.refresh_model_info)
        self.adapt_panel.model_added.connect(lambda folder: self.input_box.refresh_models(self.direction, folder))
        self.bundled_combo.currentIndexChanged.connect(self.refresh_model_info)
        self.device_combo.currentIndexChanged.connect(self.refresh_model_info)
        self.openvino_button.clicked.connect(self.install_openvino)
        self.extent_combo.currentIndexChanged.connect(self._extent_mode_changed)
        self.polygons_check.toggled.connect(self._polygons_changed)
        # (unfolding a QgsCollapsibleGroupBox shows every child again: the direction's rows are re-applied)
        self.options_box.collapsedStateChanged.connect(lambda *_: self._show_direction_rows())
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.install_button.clicked.connect(lambda: self.open_installer())
        self.diagnostics_button.clicked.connect(copy_diagnostics)
        project = QgsProject.instance()
        project.layersAdded.connect(self._refresh_layer_filter)
        project.layersRemoved.connect(self._refresh_layer_filter)

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def direction(self) -> Direction:
        return Direction(self.direction_combo.currentData())

    def set_direction(self, direction: Direction) -> None:
        self.direction_combo.setCurrentIndex(self.direction_combo.findData(direction.value))

    def _direction_changed(self) -> None:
        self.input_box.refresh_models(self.direction)
        self._show_direction_rows()
        self._refresh_layer_filter()
        self._extent_mode_changed()
        self.refresh_model_info()

    def _show_direction_rows(self) -> None:
        """Rows of imagery input (bands, image values, land-cover extras) or of land-cover input (terrain, sun,
        seed), never both."""
        rgb_input = self.direction is Direction.RGB_TO_LANDCOVER
        for widget in (self.bands_label, self.bands_row, self.confidence_check, self.radiometry_label,
                       self.radiometry_combo, self.polygons_check, self.all_classes_check):
            set_shown(widget, rgb_input)
        for widget in (self.terrain_box, *(w for pair in self.sun_spins for w in pair)):
            set_shown(widget, not rgb_input)
        self._polygons_changed()

    def _polygons_changed(self, *_args: object) -> None:
        shown = self.direction is Direction.RGB_TO_LANDCOVER and self.polygons_check.isChecked()
        set_shown(self.min_area_label, shown)
        set_shown(self.min_area_spin, shown)

    def _refresh_layer_filter(self, *_args: object) -> None:
        self.input_box.refresh_filter(self.direction)
        self._layer_changed(self.layer_combo.currentLayer())

    def _layer_changed(self, layer: Any) -> None:
        self.bands_row.set_layer(layer)
        if isinstance(layer, QgsRasterLayer) and not has_native_grid(layer.dataProvider()) and \
                self.extent_combo.currentData() == EXTENT_WHOLE:  # a web tile service has no "whole layer"
            self.extent_combo.setCurrentIndex(self.extent_combo.findData(EXTENT_CANVAS))

    def _extent_mode_changed(self, *_args: object) -> None:
        features = self.extent_combo.currentData() == EXTENT_FEATURES
        for widget in (self.polygons_label, self.polygon_combo, self.selected_only):
            widget.setVisible(features)

    def chosen_model_path(self) -> str | None:
        """The model file chosen, else the adapted (or bundled with relief) model picked, else None (bundled)."""
        chosen = self.model_widget.filePath() or self.model_combo.currentData() or None
        return self.terrain_box.model_path(chosen, self.direction)

    def refresh_model_info(self, *_args: object) -> None:
        """Describe the chosen model (or the bundled one) and where it would run; say whether it needs elevation."""
        contract = self.info_box.show_model(self.chosen_model_path(), self.direction, self.device_combo.currentData())
        self.install_button.setVisible(self.info_box.runtime_missing)
        self.terrain_box.show_needs(contract)

    def open_installer(self, status: DependencyStatus | None = None) -> InstallDialog:
        """The installer dialog for ``status`` (default: what onnxruntime lacks); once installed, the model box
        (onnxruntime) or the OpenVINO line is refreshed."""
        status = status or check_runtime()
        dialog = InstallDialog(status, self)
        refresh = self.options_box.refresh_openvino if is_openvino(status.missing) else self.refresh_model_info
        dialog.installed.connect(lambda _activation: refresh())
        dialog.show()
        self._installer = dialog
        return dialog

    def install_openvino(self, *_args: object) -> InstallDialog:
        """The Install OpenVINO button: the same installer, for the optional backend."""
        return self.open_installer(check_openvino())

    # -- run -----------------------------------------------------------------------------------------------
    def _area_wkt(self, layer: QgsRasterLayer) -> str | None:
        mode = self.extent_combo.currentData()
        if mode == EXTENT_CANVAS:
            canvas = self.iface.mapCanvas()
            return extent_wkt(canvas.extent(), canvas.mapSettings().destinationCrs(), layer)
        if mode == EXTENT_FEATURES:
            return features_wkt(self.polygon_combo.currentLayer(), layer, self.selected_only.isChecked())
        return None

    def result_name(self, layer_name: str) -> str:
        """The result layer's name for the current choices (``"nlcd2011 -> RGB (terrain, seed 0)"``)."""
        seed = self.seed_spin.value() if self.direction is Direction.LANDCOVER_TO_RGB else None
        return result_layer_name(layer_name, self.direction, self.chosen_model_path(), seed)

    def build_request(self) -> tuple[TranslationRequest, ProviderReader]:
        """The request and a reader (over a provider clone) for the current choices.

        Raises:
            LcganError: a choice that cannot work (no layer, a layer that does not fit, an empty area...).
        """
        layer = self.layer_combo.currentLayer()
        direction = self.direction
        misfit = direction_misfit(layer, direction)
        if misfit:
            raise InputRasterError(misfit)
        rgb_input = direction is Direction.RGB_TO_LANDCOVER
        aoi_wkt = self._area_wkt(layer)
        fields: dict[str, Any] = {} if rgb_input else self._terrain_fields()
        reader, self._notes = reader_for(layer, aoi_wkt, self.chosen_model_path(), direction)
        output = self.output_box.output_path(self.result_name(layer.name()))
        if rgb_input:
            fields.update(
                bands=self.bands_row.bands(), radiometry_mode=self.radiometry_combo.currentData(),
                confidence_path=_beside(output, "_confidence.tif") if self.confidence_check.isChecked() else None,
                vector_path=_beside(output, "_polygons.gpkg") if self.polygons_check.isChecked() else None,
                min_polygon_px=self.min_area_spin.value())
        request = translation_request(
            direction, output_path=output, model_path=self.chosen_model_path(), aoi_wkt=aoi_wkt,
            device=self.device_combo.currentData(), precision=self.precision_combo.currentData(),
            backend=self.backend_combo.currentData(), cache_dir=openvino_cache_dir(),
            overlap_px=None if self.overlap_spin.value() < 0 else self.overlap_spin.value(),
            batch_size=self.batch_spin.value(), check_gsd=self.check_gsd.isChecked(), input_path=layer_file(layer),
            **fields)
        return request, reader

    def _terrain_fields(self) -> dict[str, Any]:
        """Elevation, sun and seed; a model with relief and no elevation is refused here, before a task."""
        path = self.terrain_box.elevation_path(self.info_box.contract, self.chosen_model_path() or "(bundled)")
        azimuth, elevation = (spin.value() for _label, spin in self.sun_spins)
        return {"elevation_path": path, "sun_azimuth_deg": azimuth if azimuth >= 0 else None,
                "sun_elevation_deg": elevation if elevation >= 0 else None, "seed": self.seed_spin.value()}

    def run(self) -> TranslateTask | None:
        """Start a translation task for the current choices (the Run button)."""
        if self.task is not None:
            self._message("A translation is already running; cancel it first.", Qgis.MessageLevel.Warning)
            return None
        try:
            request, reader = self.build_request()
        except LcganError as exc:
            self._message(str(exc), Qgis.MessageLevel.Critical)
            return None
        except ImportError as exc:
            self._message(f"onnxruntime is not installed ({exc}); use Install in the lcgan panel.",
                          Qgis.MessageLevel.Critical)
            return None
        self._result_name = self.result_name(self.layer_combo.currentLayer().name())
        self.task = TranslateTask(request, reader, self._task_done)
        self.task.progressChanged.connect(lambda value: self.progress_bar.setValue(int(value)))
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel(self) -> None:
        """Stop the running task within the current tile batch; nothing is written or added."""
        if self.task is not None:
            self.cancel_button.setEnabled(False)
            self.task.cancel()

    def _task_done(self, outcome: TaskOutcome) -> None:
        self.task = None
        self.last_outcome = outcome
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress_bar.reset()  # (a finished run shows no stale "100%")
        self.progress_bar.setVisible(False)
        if outcome.canceled:
            self._message("Canceled: nothing was written.", Qgis.MessageLevel.Info)
            return
        if outcome.job is None:
            self._message(outcome.error, Qgis.MessageLevel.Critical)
            return
        job, direction = outcome.job, outcome.request.model.direction
        result, name = job.result, self._result_name
        present = None if self.all_classes_check.isChecked() or job.class_counts is None else sorted(job.class_counts)
        try:
            layers = [add_result_layer(result.output_path, name, direction, job.contract.scheme, job.tags, present)]
            if result.confidence_path:
                layers.append(add_result_layer(result.confidence_path, f"{outcome.input_name} -> confidence", None,
                                               None, job.tags))
            if job.vector_path:
                layers.append(add_polygon_layer(job.vector_path, f"{outcome.input_name} -> polygons",
                                                job.contract.scheme))
        except LcganError as exc:
            self._message(str(exc), Qgis.MessageLevel.Critical)
            return
        self.result_layers.extend(layers)
        device = result.provider.replace("ExecutionProvider", "")
        self._message(f"'{name}' added ({result.tiles} tiles, {result.seconds:.1f} s, {result.backend} "
                      f"{result.precision} on {device}); saved as {result.output_path}.", Qgis.MessageLevel.Success)

    def _message(self, text: str, level: Qgis.MessageLevel) -> None:
        messages.push(self.iface.messageBar() if self.iface is not None else None, text, level)

    def closeEvent(self, event: Any) -> None:
        self.cancel()
        super().closeEvent(event)

    def disconnect_project(self) -> None:
        """Stop listening to the project (the plugin calls this on unload)."""
        project = QgsProject.instance()
        for signal in (project.layersAdded, project.layersRemoved):
            with contextlib.suppress(TypeError):  # not connected
                signal.disconnect(self._refresh_layer_filter)


def _beside(output: str, suffix: str) -> str:
    """``lc.tif`` -> ``lc_confidence.tif`` (``suffix`` replaces the GeoTIFF extension)."""
    return re.sub(r"(\.tiff?)?$", suffix, output, count=1, flags=re.IGNORECASE)
