"""The lcgan dock panel: choose a layer, a direction and a model, set options, run in the background.

The panel only gathers parameters: it builds a :class:`~lcgan_qgis.job.TranslationRequest` and a reader over a
clone of the layer's provider, starts a :class:`~lcgan_qgis.tasks.TranslateTask`, and when the task is done adds the
styled result to the project. It never loads a model for inference or tiles a raster itself.

(About 460 lines, past the 400 a module should keep to: one small builder per part, the Options and the terrain
rows already in their own widgets (:mod:`.options`, :mod:`.terrain_box`); what is left is wiring and the request.)
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapLayerProxyModel,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import (
    QgsCollapsibleGroupBox,
    QgsDockWidget,
    QgsFileWidget,
    QgsMapLayerComboBox,
    QgsRasterBandComboBox,
)
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

from ...core.choices import DIRECTION_LABELS
from ...core.errors import InputRasterError, LcganError
from ...core.model.contract import Direction
from ...core.run.job import TranslationRequest
from ...installer.plan import is_openvino
from ...installer.status import DependencyStatus, check_openvino, check_runtime
from ..layers import direction_misfit, fits_direction, layer_file, reader_for
from ..qgis_reader import ProviderReader, has_native_grid
from ..settings import openvino_cache_dir
from ..styling import add_polygon_layer, add_result_layer, result_layer_name
from ..tasks import TaskOutcome, TranslateTask
from .area import extent_wkt, features_wkt
from .deps_dialog import InstallDialog, copy_diagnostics
from .model_info import ModelInfoBox
from .options import OptionsBox
from .terrain_box import TerrainBox

EXTENT_WHOLE, EXTENT_CANVAS, EXTENT_FEATURES = "layer", "canvas", "features"
EXTENTS = (("Whole layer", EXTENT_WHOLE), ("Visible map extent", EXTENT_CANVAS),
           ("Polygon features", EXTENT_FEATURES))
MESSAGE_SECONDS = 8
MIN_COMBO_CHARS = 8  # what a combo box shows at the least (its popup shows items whole)
MAX_NAMED_LAYERS = 3  # layers named in the "Not listed" note (the tooltip names them all)


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
        self._connect()
        self._direction_changed()

    # -- layout: one small builder per part, so a new field is one method ------------------------------------
    def _build(self) -> None:
        body = QWidget()
        self.body = body
        layout = QVBoxLayout(body)
        layout.addLayout(self._build_input())
        layout.addWidget(self._build_terrain())
        layout.addWidget(self._build_model())
        layout.addLayout(self._build_area())
        layout.addWidget(self._build_options())
        layout.addLayout(self._build_output())
        layout.addLayout(self._build_run())
        layout.addStretch(1)
        for combo in body.findChildren(QComboBox):  # (a combo box as wide as its longest item clips the panel)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(min(combo.minimumContentsLength() or MIN_COMBO_CHARS, MIN_COMBO_CHARS))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)

    @staticmethod
    def _form(labels_above: bool = True) -> QFormLayout:
        """A form whose labels sit above their fields (the fields get the panel's whole width), or beside them
        while they fit."""
        form = QFormLayout()
        policy = QFormLayout.RowWrapPolicy
        form.setRowWrapPolicy(policy.WrapAllRows if labels_above else policy.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        return form

    @staticmethod
    def _note() -> QLabel:
        note = QLabel()
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(mid)")
        note.setVisible(False)
        return note

    def _build_input(self) -> QFormLayout:
        form = self._form()
        self.direction_combo = QComboBox()
        for direction in Direction:
            self.direction_combo.addItem(DIRECTION_LABELS[direction], direction.value)
        form.addRow("Direction", self.direction_combo)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        form.addRow("Input layer", self.layer_combo)
        self.hidden_layers_note = self._note()
        form.addRow(self.hidden_layers_note)
        self.band_combos = [QgsRasterBandComboBox() for _ in range(3)]
        bands_row = QWidget()
        bands_layout = self._form(labels_above=False)
        bands_layout.setContentsMargins(0, 0, 0, 0)
        bands_row.setLayout(bands_layout)
        for label, combo in zip(("Red", "Green", "Blue"), self.band_combos, strict=True):
            bands_layout.addRow(label, combo)
        self.bands_label = QLabel("Bands")
        form.addRow(self.bands_label, bands_row)
        self.bands_row = bands_row
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter("lcgan ONNX models (*.onnx)")
        self.model_widget.lineEdit().setPlaceholderText("bundled model")
        form.addRow("Model", self.model_widget)
        return form

    def _build_terrain(self) -> TerrainBox:
        self.terrain_box = TerrainBox(self._form())
        for name in TerrainBox.FIELDS:  # (the dock reads them as its own: one place builds them)
            setattr(self, name, getattr(self.terrain_box, name))
        return self.terrain_box

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
        form = self._form()
        self.extent_combo = QComboBox()
        for text, value in EXTENTS:
            self.extent_combo.addItem(text, value)
        form.addRow("Area", self.extent_combo)
        self.polygon_combo = QgsMapLayerComboBox()
        self.polygon_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.selected_only = QCheckBox("Selected features only")
        self.polygons_label = QLabel("Polygons")
        form.addRow(self.polygons_label, self.polygon_combo)
        form.addRow("", self.selected_only)
        return form

    def _build_options(self) -> QgsCollapsibleGroupBox:
        self.options_box = OptionsBox(self._form(labels_above=False))
        for name in OptionsBox.FIELDS:  # (the dock reads them as its own: one place builds them)
            setattr(self, name, getattr(self.options_box, name))
        return self.options_box

    def _build_output(self) -> QFormLayout:
        form = self._form()
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif *.tiff)")
        self.output_widget.lineEdit().setPlaceholderText("temporary file")
        form.addRow("Output", self.output_widget)
        return form

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
        self.bundled_combo.currentIndexChanged.connect(self.refresh_model_info)
        self.device_combo.currentIndexChanged.connect(self.refresh_model_info)
        self.openvino_button.clicked.connect(self.install_openvino)
        self.extent_combo.currentIndexChanged.connect(self._extent_mode_changed)
        self.polygons_check.toggled.connect(self._polygons_changed)
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
        rgb_input = self.direction is Direction.RGB_TO_LANDCOVER
        for widget in (self.bands_label, self.bands_row, self.confidence_check, self.radiometry_label,
                       self.radiometry_combo, self.polygons_check, self.all_classes_check):
            widget.setVisible(rgb_input)
        for widget in (self.terrain_box, *(w for pair in self.sun_spins for w in pair)):
            widget.setVisible(not rgb_input)
        self._polygons_changed()
        self._refresh_layer_filter()
        self._extent_mode_changed()
        self.refresh_model_info()

    def _polygons_changed(self, *_args: object) -> None:
        shown = self.direction is Direction.RGB_TO_LANDCOVER and self.polygons_check.isChecked()
        self.min_area_label.setVisible(shown)
        self.min_area_spin.setVisible(shown)

    def _refresh_layer_filter(self, *_args: object) -> None:
        """Offer only layers that fit the direction, and say which others are not listed and why."""
        layers = QgsProject.instance().mapLayers().values()
        direction = self.direction
        excluded = [lyr for lyr in layers if isinstance(lyr, QgsRasterLayer) and not fits_direction(lyr, direction)]
        self.layer_combo.setExceptedLayerList(excluded)
        if excluded:
            kind = "one band of class codes" if direction is Direction.LANDCOVER_TO_RGB else "red, green, blue bands"
            other = DIRECTION_LABELS[Direction.RGB_TO_LANDCOVER if direction is Direction.LANDCOVER_TO_RGB
                                     else Direction.LANDCOVER_TO_RGB]
            names = ", ".join(f"'{lyr.name()}'" for lyr in excluded[:MAX_NAMED_LAYERS])
            more = f" and {len(excluded) - MAX_NAMED_LAYERS} more" if len(excluded) > MAX_NAMED_LAYERS else ""
            self.hidden_layers_note.setText(f"Not listed: {names}{more}. This direction needs {kind}; they fit "
                                            f"'{other}'.")
            self.hidden_layers_note.setToolTip("\n".join(direction_misfit(lyr, direction) or "" for lyr in excluded))
        self.hidden_layers_note.setVisible(bool(excluded))
        self._layer_changed(self.layer_combo.currentLayer())

    def _layer_changed(self, layer: Any) -> None:
        for band, combo in enumerate(self.band_combos, start=1):
            combo.setLayer(layer if isinstance(layer, QgsRasterLayer) else None)
            if isinstance(layer, QgsRasterLayer) and band <= layer.bandCount():
                combo.setBand(band)
        if isinstance(layer, QgsRasterLayer) and not has_native_grid(layer.dataProvider()) and \
                self.extent_combo.currentData() == EXTENT_WHOLE:  # a web tile service has no "whole layer"
            self.extent_combo.setCurrentIndex(self.extent_combo.findData(EXTENT_CANVAS))

    def _extent_mode_changed(self, *_args: object) -> None:
        features = self.extent_combo.currentData() == EXTENT_FEATURES
        for widget in (self.polygons_label, self.polygon_combo, self.selected_only):
            widget.setVisible(features)

    def chosen_model_path(self) -> str | None:
        """The model file chosen, else the bundled terrain-aware model when picked, else None (the bundled one)."""
        return self.terrain_box.model_path(self.model_widget.filePath() or None, self.direction)

    def refresh_model_info(self, *_args: object) -> None:
        """Describe the chosen model (or the bundled one) and the provider that would run it; say whether it needs
        elevation."""
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
        output = self.output_widget.filePath() or QgsProcessingUtils.generateTempFilename(
            _safe_name(f"{layer.name()}_{direction.value}") + ".tif"
        )
        confidence = vector = None
        if rgb_input and self.confidence_check.isChecked():
            confidence = re.sub(r"(\.tiff?)?$", "_confidence.tif", output, count=1, flags=re.IGNORECASE)
        if rgb_input and self.polygons_check.isChecked():
            vector = re.sub(r"(\.tiff?)?$", "_polygons.gpkg", output, count=1, flags=re.IGNORECASE)
        aoi_wkt = self._area_wkt(layer)
        terrain = {} if rgb_input else self._terrain_request()
        reader, self._notes = reader_for(layer, aoi_wkt, self.chosen_model_path(), direction)
        request = TranslationRequest(
            direction=direction,
            output_path=output,
            model_path=self.chosen_model_path(),
            device=self.device_combo.currentData(),
            overlap_px=None if self.overlap_spin.value() < 0 else self.overlap_spin.value(),
            batch_size=self.batch_spin.value(),
            bands=tuple(c.currentBand() for c in self.band_combos) if rgb_input else None,
            aoi_wkt=aoi_wkt,
            confidence_path=confidence,
            radiometry_mode=self.radiometry_combo.currentData() if rgb_input else None,
            check_gsd=self.check_gsd.isChecked(),
            input_path=layer_file(layer),
            vector_path=vector,
            min_polygon_px=self.min_area_spin.value(),
            precision=self.precision_combo.currentData(),
            backend=self.backend_combo.currentData(),
            cache_dir=openvino_cache_dir(),
            **terrain,
        )
        return request, reader

    def _terrain_request(self) -> dict[str, Any]:
        """The request's elevation and sun; a terrain-aware model without elevation is refused here, before a task."""
        path = self.terrain_box.elevation_path(self.info_box.contract, self.chosen_model_path() or "(bundled)")
        azimuth, elevation = (spin.value() for _label, spin in self.sun_spins)
        return {"elevation_path": path, "sun_azimuth_deg": azimuth if azimuth >= 0 else None,
                "sun_elevation_deg": elevation if elevation >= 0 else None}

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
        job, direction = outcome.job, outcome.request.direction
        result = job.result
        name = result_layer_name(outcome.input_name, direction)
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
                      f"{result.precision} on {device}).",
                      Qgis.MessageLevel.Success)

    def _message(self, text: str, level: Qgis.MessageLevel) -> None:
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is not None:
            bar.pushMessage("lcgan", text, level, MESSAGE_SECONDS if level != Qgis.MessageLevel.Critical else 0)

    def closeEvent(self, event: Any) -> None:
        self.cancel()
        super().closeEvent(event)

    def disconnect_project(self) -> None:
        """Stop listening to the project (the plugin calls this on unload)."""
        project = QgsProject.instance()
        for signal in (project.layersAdded, project.layersRemoved):
            with contextlib.suppress(TypeError):  # not connected
                signal.disconnect(self._refresh_layer_filter)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "lcgan"
