"""The lcgan dock panel: choose a layer, a direction and a model, set options, run in the background.

The panel only gathers parameters: it builds a :class:`~lcgan_qgis.job.TranslationRequest` and a reader over a
clone of the layer's provider, starts a :class:`~lcgan_qgis.tasks.TranslateTask`, and when the task is done adds the
styled result to the project. It never loads a model for inference or tiles a raster itself.

(About 480 lines, past the 400 a module should keep to, since the OpenVINO and terrain options joined: one widget
per run choice, each a few lines; the options group is the part to move into its own widget when it grows again.)
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
    QgsDoubleSpinBox,
    QgsFileWidget,
    QgsMapLayerComboBox,
    QgsRasterBandComboBox,
    QgsSpinBox,
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

from ...core.choices import (
    BACKEND_LABELS,
    BACKENDS,
    DEVICE_LABELS,
    DEVICES,
    PRECISION_LABELS,
    PRECISIONS,
    RADIOMETRY_CHOICES,
    RADIOMETRY_LABELS,
)
from ...core.contract import Direction
from ...core.elevation import missing_elevation_message
from ...core.errors import InputRasterError, LcganError
from ...core.job import TranslationRequest
from ...core.precision import MIN_CLASS_AGREEMENT, MIN_PSNR_DB
from ...core.resampling import GSD_TOLERANCE
from ...core.resources import bundled_terrain_model_path
from ..layers import direction_misfit, elevation_file, fits_direction, layer_file
from ..qgis_reader import ProviderReader
from ..settings import openvino_cache_dir
from ..styling import add_confidence_layer, add_result_layer, result_layer_name
from ..tasks import TaskOutcome, TranslateTask
from .area import extent_wkt, features_wkt
from .model_info import ModelInfoBox

EXTENT_WHOLE, EXTENT_CANVAS, EXTENT_FEATURES = "layer", "canvas", "features"
EXTENTS = (("Whole layer", EXTENT_WHOLE), ("Map canvas extent", EXTENT_CANVAS),
           ("Features of a polygon layer", EXTENT_FEATURES))
MESSAGE_SECONDS = 8
#: Bundled land cover -> RGB models the user picks from when no model file is chosen.
BUNDLED_MAP_ONLY, BUNDLED_TERRAIN = "map", "terrain"


class LcganDock(QgsDockWidget):
    """The panel. ``iface`` needs ``mapCanvas()`` and ``messageBar()``."""

    def __init__(self, iface: Any, parent: QWidget | None = None) -> None:
        super().__init__("lcgan: land cover ↔ imagery", parent)
        self.setObjectName("LcganDock")
        self.iface = iface
        self.task: TranslateTask | None = None
        self.last_outcome: TaskOutcome | None = None
        self.result_layers: list[QgsRasterLayer] = []
        self.install_dialog: Any = None  # the OpenVINO installer while it runs
        self._build()
        self._connect()
        self._direction_changed()

    # -- layout --------------------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        form = QFormLayout()
        self.direction_combo = QComboBox()
        self.direction_combo.addItem("Land cover → synthetic RGB", Direction.LANDCOVER_TO_RGB.value)
        self.direction_combo.addItem("RGB imagery → land cover", Direction.RGB_TO_LANDCOVER.value)
        form.addRow("Direction", self.direction_combo)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        form.addRow("Input layer", self.layer_combo)
        self.band_combos = [QgsRasterBandComboBox() for _ in range(3)]
        bands_row = QWidget()
        bands_layout = QHBoxLayout(bands_row)
        bands_layout.setContentsMargins(0, 0, 0, 0)
        for label, combo in zip("RGB", self.band_combos, strict=True):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
            bands_layout.addWidget(QLabel(label))
            bands_layout.addWidget(combo, 1)
        self.bands_label = QLabel("Bands")
        form.addRow(self.bands_label, bands_row)
        self.bands_row = bands_row
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter("lcgan ONNX models (*.onnx)")
        self.model_widget.lineEdit().setPlaceholderText("bundled model")
        form.addRow("Model", self.model_widget)
        self.bundled_combo = QComboBox()
        self.bundled_combo.addItem("map only", BUNDLED_MAP_ONLY)
        self.bundled_combo.addItem("terrain-aware (needs elevation)", BUNDLED_TERRAIN)
        self.bundled_combo.setToolTip("Which bundled land cover -> RGB model runs when no model file is chosen. The "
                                      "terrain-aware one paints relief from an elevation raster (DEM).")
        self.bundled_label = QLabel("Bundled model")
        form.addRow(self.bundled_label, self.bundled_combo)
        self.elevation_combo = QgsMapLayerComboBox()
        self.elevation_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.elevation_combo.setAllowEmptyLayer(True)
        self.elevation_combo.setLayer(None)
        self.elevation_combo.setToolTip("A DEM (any CRS and pixel size; resampled onto the land cover's grid) for "
                                        "terrain-aware models. Map-only models ignore it.")
        self.elevation_label = QLabel("Elevation")
        form.addRow(self.elevation_label, self.elevation_combo)
        self.elevation_hint = QLabel("")
        self.elevation_hint.setWordWrap(True)
        form.addRow("", self.elevation_hint)
        layout.addLayout(form)
        self.info_box = ModelInfoBox()
        layout.addWidget(self.info_box)

        self.options_box = QgsCollapsibleGroupBox("Options")
        self.options_box.setCollapsed(True)
        options = QFormLayout(self.options_box)
        self.overlap_spin = QgsSpinBox()
        self.overlap_spin.setRange(-1, 4096)
        self.overlap_spin.setSpecialValueText("model default")
        self.overlap_spin.setClearValue(-1)
        self.overlap_spin.setValue(-1)
        self.overlap_spin.setSuffix(" px")
        options.addRow("Tile overlap", self.overlap_spin)
        self.batch_spin = QgsSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setClearValue(1)
        options.addRow("Tiles per batch", self.batch_spin)
        self.device_combo = QComboBox()
        for device in DEVICES:
            self.device_combo.addItem(DEVICE_LABELS[device], device)
        options.addRow("Device", self.device_combo)
        self.precision_combo = QComboBox()
        for value in PRECISIONS:
            self.precision_combo.addItem(PRECISION_LABELS[value], value)
        self.precision_combo.setToolTip(
            f"auto: the fastest path (OpenVINO int8 or bf16, onnxruntime int8) that keeps >= {MIN_CLASS_AGREEMENT:.0%} "
            f"of land-cover pixels (>= {MIN_PSNR_DB:g} dB for imagery) against fp32 on the model's calibration "
            "windows, else fp32."
        )
        options.addRow("Precision", self.precision_combo)
        self.backend_combo = QComboBox()
        for value in BACKENDS:
            self.backend_combo.addItem(BACKEND_LABELS[value], value)
        options.addRow("Backend", self.backend_combo)
        self.openvino_label = QLabel()
        self.openvino_label.setWordWrap(True)
        self.openvino_button = QPushButton("Install OpenVINO (optional)")
        self.openvino_button.setVisible(False)
        options.addRow(self.openvino_label)
        options.addRow("", self.openvino_button)
        self.sun_spins = []
        for label, high, tip in (("Sun azimuth", 359.9, "clockwise from north"), ("Sun elevation", 90.0,
                                                                                 "above the horizon")):
            spin = QgsDoubleSpinBox()
            spin.setRange(-1.0, high)
            spin.setDecimals(1)
            spin.setSpecialValueText("model default")
            spin.setClearValue(-1.0)
            spin.setValue(-1.0)
            spin.setSuffix(" °")
            spin.setToolTip(f"The sun for the hillshade of terrain-aware models, degrees {tip} (model default: its "
                            "training imagery's sun).")
            options.addRow(label, spin)
            self.sun_spins.append((options.labelForField(spin), spin))
        self.radiometry_combo = QComboBox()
        for mode in RADIOMETRY_CHOICES:
            self.radiometry_combo.addItem(RADIOMETRY_LABELS[mode], mode)
        self.radiometry_combo.setToolTip(
            "How image values map to the model's range. Percentile: this raster's own 2-98 % range (8-bit imagery, "
            "other sensors, lcgan's synthetic RGB). Fixed: the training imagery's values (e.g. Landsat digital "
            "numbers). Model default: the mode stored in the model."
        )
        self.radiometry_label = QLabel("Radiometry")
        options.addRow(self.radiometry_label, self.radiometry_combo)
        self.extent_combo = QComboBox()
        for text, value in EXTENTS:
            self.extent_combo.addItem(text, value)
        options.addRow("Area", self.extent_combo)
        self.polygon_combo = QgsMapLayerComboBox()
        self.polygon_combo.setFilters(QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.selected_only = QCheckBox("Selected features only")
        options.addRow("Polygons", self.polygon_combo)
        options.addRow("", self.selected_only)
        self.check_gsd = QCheckBox("Resample to the model's resolution")
        self.check_gsd.setToolTip(f"When the layer's pixel size differs from the model's by more than "
                                  f"{GSD_TOLERANCE * 100:g} %, translate "
                                  "at the model's resolution and resample the result back to the layer's grid. "
                                  "Layers in degrees are refused unless this is off.")
        self.check_gsd.setChecked(True)
        options.addRow("", self.check_gsd)
        self.confidence_check = QCheckBox("Also write the confidence")
        self.confidence_check.setToolTip("A second GeoTIFF with the winning class's probability (0-1) per pixel.")
        options.addRow("", self.confidence_check)
        layout.addWidget(self.options_box)

        out_form = QFormLayout()
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif *.tiff)")
        self.output_widget.lineEdit().setPlaceholderText("temporary file")
        out_form.addRow("Output", self.output_widget)
        layout.addLayout(out_form)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        layout.addWidget(self.progress_bar)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)

    def _connect(self) -> None:
        self.direction_combo.currentIndexChanged.connect(self._direction_changed)
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.model_widget.fileChanged.connect(self.refresh_model_info)
        self.bundled_combo.currentIndexChanged.connect(self.refresh_model_info)
        self.device_combo.currentIndexChanged.connect(self.refresh_model_info)
        self.options_box.collapsedStateChanged.connect(self._options_toggled)
        self.openvino_button.clicked.connect(self.install_openvino)
        self.extent_combo.currentIndexChanged.connect(self._extent_mode_changed)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
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
        self.bands_label.setVisible(rgb_input)
        self.bands_row.setVisible(rgb_input)
        self.confidence_check.setVisible(rgb_input)
        self.radiometry_label.setVisible(rgb_input)
        self.radiometry_combo.setVisible(rgb_input)
        for widget in (self.bundled_label, self.bundled_combo, self.elevation_label, self.elevation_combo,
                       self.elevation_hint, *(w for pair in self.sun_spins for w in pair)):
            widget.setVisible(not rgb_input)
        self._refresh_layer_filter()
        self._extent_mode_changed()
        self.refresh_model_info()

    def _refresh_layer_filter(self, *_args: object) -> None:
        """Offer only layers that fit the direction (single band for land cover, >= 3 bands for imagery)."""
        layers = QgsProject.instance().mapLayers().values()
        direction = self.direction
        excluded = [lyr for lyr in layers if isinstance(lyr, QgsRasterLayer) and not fits_direction(lyr, direction)]
        self.layer_combo.setExceptedLayerList(excluded)
        self._layer_changed(self.layer_combo.currentLayer())

    def _layer_changed(self, layer: Any) -> None:
        for band, combo in enumerate(self.band_combos, start=1):
            combo.setLayer(layer if isinstance(layer, QgsRasterLayer) else None)
            if isinstance(layer, QgsRasterLayer) and band <= layer.bandCount():
                combo.setBand(band)

    def _extent_mode_changed(self, *_args: object) -> None:
        features = self.extent_combo.currentData() == EXTENT_FEATURES
        self.polygon_combo.setEnabled(features)
        self.selected_only.setEnabled(features)

    def chosen_model_path(self) -> str | None:
        """The model file chosen, else the bundled terrain-aware model when picked, else None (the bundled one)."""
        if self.model_widget.filePath():
            return self.model_widget.filePath()
        if self.direction is Direction.LANDCOVER_TO_RGB and self.bundled_combo.currentData() == BUNDLED_TERRAIN:
            return str(bundled_terrain_model_path())
        return None

    def refresh_model_info(self, *_args: object) -> None:
        """Describe the chosen model (or the bundled one) and the provider that would run it; say whether it needs
        elevation."""
        self.bundled_combo.setEnabled(not self.model_widget.filePath())
        contract = self.info_box.show_model(self.chosen_model_path(), self.direction, self.device_combo.currentData())
        if contract is None or contract.direction is not Direction.LANDCOVER_TO_RGB:
            self.elevation_hint.setText("")
        elif contract.terrain is not None:
            self.elevation_hint.setText("<b>Needed</b>: this model is terrain-aware (it reads "
                                        f"{', '.join(contract.terrain.channels)} derived from the elevation).")
        else:
            self.elevation_hint.setText("Not used: this model is map only.")

    def _options_toggled(self, collapsed: bool) -> None:
        if not collapsed and not self.openvino_label.text():
            self.refresh_openvino()

    def refresh_openvino(self) -> None:
        """Say whether the optional OpenVINO backend runs here, with an Install button when it does not."""
        from ...core.deps import check_openvino

        status = check_openvino()
        self.openvino_label.setText(status.summary)
        self.openvino_button.setVisible(not status.installed and bool(status.requirements))

    def install_openvino(self) -> None:
        """The Install OpenVINO button: pip in a dialog (pinned, into the plugin's folder)."""
        from .deps_dialog import install_openvino

        self.install_dialog = install_openvino(self)
        if self.install_dialog is not None:
            self.install_dialog.process.finished.connect(lambda *_args: self.refresh_openvino())

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
        confidence = None
        if rgb_input and self.confidence_check.isChecked():
            confidence = re.sub(r"(\.tiff?)?$", "_confidence.tif", output, count=1, flags=re.IGNORECASE)
        terrain = {} if rgb_input else self._terrain_request()
        request = TranslationRequest(
            direction=direction,
            output_path=output,
            model_path=self.chosen_model_path(),
            device=self.device_combo.currentData(),
            overlap_px=None if self.overlap_spin.value() < 0 else self.overlap_spin.value(),
            batch_size=self.batch_spin.value(),
            bands=tuple(c.currentBand() for c in self.band_combos) if rgb_input else None,
            aoi_wkt=self._area_wkt(layer),
            confidence_path=confidence,
            radiometry_mode=self.radiometry_combo.currentData() if rgb_input else None,
            check_gsd=self.check_gsd.isChecked(),
            input_path=layer_file(layer),
            precision=self.precision_combo.currentData(),
            backend=self.backend_combo.currentData(),
            cache_dir=openvino_cache_dir(),
            **terrain,
        )
        return request, ProviderReader.from_layer(layer)

    def _terrain_request(self) -> dict[str, Any]:
        """The request's elevation fields; a terrain-aware model without elevation is refused here, before a task."""
        layer = self.elevation_combo.currentLayer()
        path = elevation_file(layer) if isinstance(layer, QgsRasterLayer) else None
        contract = self.info_box.contract
        if path is None and contract is not None and contract.terrain is not None:
            raise InputRasterError(missing_elevation_message(contract, self.chosen_model_path() or "(bundled)"))
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
        self.task = TranslateTask(request, reader, self._task_done)
        self.task.progressChanged.connect(lambda value: self.progress_bar.setValue(int(value)))
        self.progress_bar.setValue(0)
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
        if outcome.canceled:
            self.progress_bar.setValue(0)
            self._message("Canceled: nothing was written.", Qgis.MessageLevel.Info)
            return
        if outcome.job is None:
            self.progress_bar.setValue(0)
            self._message(outcome.error, Qgis.MessageLevel.Critical)
            return
        result, direction = outcome.job.result, outcome.request.direction
        name = result_layer_name(outcome.input_name, direction)
        try:
            layers = [add_result_layer(result.output_path, name, direction, outcome.job.contract.scheme)]
            if result.confidence_path:
                layers.append(add_confidence_layer(result.confidence_path, f"{outcome.input_name} -> confidence"))
        except LcganError as exc:
            self._message(str(exc), Qgis.MessageLevel.Critical)
            return
        self.result_layers.extend(layers)
        self.progress_bar.setValue(100)
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
